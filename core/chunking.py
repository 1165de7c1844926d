"""Section-aware, token-bounded chunking with sentence-boundary splits and exact char offsets.

A chunk never crosses a section boundary. Its text is an exact slice of :meth:`Document.text`, so
``doc.text()[chunk.char_start:chunk.char_end] == chunk.text`` always holds. Token counts come from
the embedding model's own tokenizer, so ``header + text`` fits the model input and nothing is
silently truncated when embedding.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from core.config import ChunkingSettings
from core.errors import ConfigError
from core.ids import chunk_id
from core.schemas import Chunk, Document

#: Counts model tokens (no special tokens) of each text in a batch.
TokenCounter = Callable[[Sequence[str]], list[int]]

# Tokens that end with a period but do not end a sentence in scientific prose.
_ABBREVIATIONS = frozenset(
    [
        "e.g",
        "i.e",
        "et",
        "al",
        "fig",
        "figs",
        "eq",
        "eqs",
        "ref",
        "refs",
        "vs",
        "cf",
        "approx",
        "ca",
        "no",
        "nos",
        "vol",
        "suppl",
        "dr",
        "mr",
        "mrs",
        "ms",
        "prof",
        "st",
        "jan",
        "feb",
        "mar",
        "apr",
        "jun",
        "jul",
        "aug",
        "sep",
        "sept",
        "oct",
        "nov",
        "dec",
        "inc",
        "ltd",
        "co",
        "corp",
        "resp",
        "sp",
        "spp",
    ]
)
# A sentence ends at . ! ? (optionally followed by closing quotes/brackets) before whitespace.
_SENT_END = re.compile(r"[.!?][\"'”’)\]]*\s+")  # noqa: RUF001 - typographic quotes are meant
_PARA_BREAK = re.compile(r"\n\s*\n")
_WORD = re.compile(r"\S+")


@dataclass(frozen=True, slots=True)
class Span:
    """A [start, end) character span of a text with its token count."""

    start: int
    end: int
    tokens: int = 0


def split_sentences(text: str) -> list[tuple[int, int]]:
    """Sentence spans (start, end) of ``text``; whitespace between sentences belongs to neither."""
    spans: list[tuple[int, int]] = []
    for para in _iter_nonblank(text, _PARA_BREAK):
        p_start, p_end = para
        start = p_start
        for m in _SENT_END.finditer(text, p_start, p_end):
            end = m.start() + 1
            if not _is_boundary(text, start, end, m.end(), p_end):
                continue
            spans.append(_trim(text, start, m.end()))
            start = m.end()
        if start < p_end:
            spans.append(_trim(text, start, p_end))
    return [s for s in spans if s[1] > s[0]]


def _iter_nonblank(text: str, sep: re.Pattern[str]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    pos = 0
    for m in sep.finditer(text):
        out.append((pos, m.start()))
        pos = m.end()
    out.append((pos, len(text)))
    return [_trim(text, a, b) for a, b in out if text[a:b].strip()]


def _trim(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def _is_boundary(text: str, start: int, end: int, next_start: int, limit: int) -> bool:
    """False for 'e.g.', 'et al.', 'Fig.', decimals and initials, and when lower case follows."""
    if text[end - 1] == ".":
        word_start = end - 1
        while word_start > start and not text[word_start - 1].isspace():
            word_start -= 1
        word = text[word_start : end - 1].lower().lstrip("([")
        if word in _ABBREVIATIONS or (len(word) == 1 and word.isalpha()):
            return False
    if next_start < limit:
        nxt = text[next_start]
        if nxt.islower() or nxt in ",;:":
            return False
    return True


def _split_long(
    text: str, span: tuple[int, int], max_tokens: int, count: TokenCounter
) -> list[Span]:
    """Split a sentence longer than ``max_tokens`` at word boundaries into bounded pieces."""
    words = [(m.start(), m.end()) for m in _WORD.finditer(text, span[0], span[1])]
    word_tokens = count([text[a:b] for a, b in words])
    pieces: list[Span] = []
    cur_start, cur_tokens, cur_end = -1, 0, -1
    for (a, b), n in zip(words, word_tokens, strict=True):
        if n > max_tokens:
            # A single "word" beyond the budget (a sequence, a URL): cut it by characters.
            if cur_start >= 0:
                pieces.append(Span(cur_start, cur_end, cur_tokens))
                cur_start, cur_tokens = -1, 0
            step = max(1, (b - a) * max_tokens // max(n, 1))
            for s in range(a, b, step):
                e = min(b, s + step)
                pieces.append(Span(s, e, count([text[s:e]])[0]))
            continue
        if cur_start >= 0 and cur_tokens + n > max_tokens:
            pieces.append(Span(cur_start, cur_end, cur_tokens))
            cur_start, cur_tokens = -1, 0
        if cur_start < 0:
            cur_start = a
        cur_tokens += n
        cur_end = b
    if cur_start >= 0:
        pieces.append(Span(cur_start, cur_end, cur_tokens))
    return pieces


def sentence_spans(text: str, max_tokens: int, count: TokenCounter) -> list[Span]:
    """Sentences of ``text`` with token counts; sentences over ``max_tokens`` are split further."""
    raw = split_sentences(text)
    counts = count([text[a:b] for a, b in raw]) if raw else []
    out: list[Span] = []
    for (a, b), n in zip(raw, counts, strict=True):
        if n <= max_tokens:
            out.append(Span(a, b, n))
        else:
            out.extend(_split_long(text, (a, b), max_tokens, count))
    return out


def pack_spans(spans: Sequence[Span], settings: ChunkingSettings) -> list[tuple[int, int, int]]:
    """Greedy packing of sentence spans into (start, end, tokens) windows with sentence overlap."""
    windows: list[tuple[int, int, int]] = []
    i = 0
    n = len(spans)
    while i < n:
        tokens = 0
        j = i
        while j < n and (j == i or tokens + spans[j].tokens <= settings.max_tokens):
            tokens += spans[j].tokens
            j += 1
        windows.append((spans[i].start, spans[j - 1].end, tokens))
        if j >= n:
            break
        # Step back over trailing sentences worth at most overlap_tokens, but always advance.
        back, k = 0, j
        while k - 1 > i and back + spans[k - 1].tokens <= settings.overlap_tokens:
            back += spans[k - 1].tokens
            k -= 1
        i = k
    # A small tail joins the previous window when both fit the budget together.
    if len(windows) >= 2 and windows[-1][2] < settings.min_tokens:
        last, prev = windows[-1], windows[-2]
        merged_tokens = _tokens_between(spans, prev[0], last[1])
        if merged_tokens <= settings.max_tokens:
            windows[-2:] = [(prev[0], last[1], merged_tokens)]
    return windows


def _tokens_between(spans: Sequence[Span], start: int, end: int) -> int:
    return sum(s.tokens for s in spans if s.start >= start and s.end <= end)


def make_header(
    title: str, section_path: Sequence[str], max_tokens: int, count: TokenCounter
) -> str:
    """'Title — Section > Sub', cut at a word boundary to at most ``max_tokens`` tokens."""
    if max_tokens == 0:
        return ""
    section = " > ".join(section_path)
    header = f"{title} — {section}" if section else title
    header = " ".join(header.split())
    if count([header])[0] <= max_tokens:
        return header
    words = header.split(" ")
    lo, hi = 0, len(words)
    while lo < hi:  # binary search for the longest prefix that fits
        mid = (lo + hi + 1) // 2
        if count([" ".join(words[:mid]) + " …"])[0] <= max_tokens:
            lo = mid
        else:
            hi = mid - 1
    return " ".join(words[:lo]) + " …" if lo else ""


def check_budget(settings: ChunkingSettings, max_seq: int) -> None:
    """Refuse chunking settings whose header + text would be truncated by the model."""
    need = settings.max_tokens + settings.header_max_tokens + 3  # [CLS], [SEP], header newline
    if need > max_seq:
        raise ConfigError(
            f"chunking.max_tokens ({settings.max_tokens}) + header_max_tokens "
            f"({settings.header_max_tokens}) + 3 special tokens = {need} exceeds the model input "
            f"of {max_seq} tokens; chunks would be truncated"
        )


def chunk_document(doc: Document, settings: ChunkingSettings, count: TokenCounter) -> list[Chunk]:
    """Chunks of ``doc`` in reading order, with ids ``uuid5(doc_id#ordinal)``."""
    chunks: list[Chunk] = []
    offset = 0
    header_cache: dict[tuple[str, ...], tuple[str, int]] = {}
    for section in doc.sections:
        text = section.text
        if section.path not in header_cache:
            header = make_header(doc.title, section.path, settings.header_max_tokens, count)
            header_cache[section.path] = (header, count([header])[0] if header else 0)
        header, header_tokens = header_cache[section.path]
        spans = sentence_spans(text, settings.max_tokens, count)
        for start, end, tokens in pack_spans(spans, settings):
            ordinal = len(chunks)
            chunks.append(
                Chunk(
                    chunk_id=chunk_id(doc.doc_id, ordinal),
                    doc_id=doc.doc_id,
                    ordinal=ordinal,
                    text=text[start:end],
                    header=header,
                    section_path=section.path,
                    page=section.page,
                    char_start=offset + start,
                    char_end=offset + end,
                    n_tokens=tokens + header_tokens,
                )
            )
        offset += len(text) + 2  # the "\n\n" that Document.text() puts between sections
    return chunks
