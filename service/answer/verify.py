"""Does the cited chunk support the sentence? A deterministic check, the same for every generator.

Method ``minilm-cosine+lexical+key-terms/v1``:
1. key terms: tokens that carry identity — numbers, NCT ids, drug/gene codes with digits or
   capitals (``mRNA-4157``, ``PD-L1``, ``BNT162b2``, ``44%``) — must all occur in a cited chunk;
   one missing term makes the sentence unsupported (this is what catches "mRNA-4157 targets PD-L1"
   cited to a passage that never mentions PD-L1, or an invented trial number);
2. semantic: the best cosine between the sentence and one sentence of the cited chunk, or the
   whole chunk for claims that combine its sentences (the same MiniLM as retrieval), which also
   yields the supporting quote and its offsets;
3. lexical: the share of the sentence's content words found in the cited chunk.
``score = max(cosine, 0.5 * cosine + 0.5 * lexical)``; supported when no key term is missing and
``score >= support_threshold``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from core.chunking import split_sentences
from core.embedding import Embedder
from core.schemas import ScoredChunk

METHOD = "minilm-cosine+lexical+key-terms/v1"

_WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9\-/.%]*[A-Za-z0-9%]|[A-Za-z0-9]")
_STOP = frozenset(
    (
        "the a an and or of in on for to with by from at as is are was were be been being this "
        "that these those it its their there which who whom whose what when where how than then "
        "also such may might can could would should will shall has have had not no but into "
        "about over under between among within during after before more most less least very "
        "other both each all any some including include includes included using used use based "
        "via per study studies trial trials patients results showed shown show"
    ).split()
)


def _norm(word: str) -> str:
    w = word.lower().strip(".-/")
    return w[:-1] if len(w) > 4 and w.endswith("s") and not w.endswith("ss") else w


def _content_words(text: str) -> set[str]:
    return {_norm(w) for w in _WORD.findall(text) if _norm(w) not in _STOP and len(w) > 2}


def key_terms(text: str) -> list[str]:
    """Identity-bearing tokens: numbers, ids, codes with digits, acronyms of 2+ capitals."""
    terms: list[str] = []
    for raw in _WORD.findall(text):
        w = raw.strip(".")
        has_digit = any(ch.isdigit() for ch in w)
        caps = sum(ch.isupper() for ch in w)
        if has_digit or (caps >= 2 and len(w) >= 2):
            # reference markers like "2" in "[2]" are removed before verification
            terms.append(w)
    return terms


def _term_in(term: str, text_lower: str, squashed: str) -> bool:
    t = term.lower()
    if t in text_lower:
        return True
    # tolerate hyphen/space variants: "PD-L1" ~ "PDL1" ~ "PD L1"
    return re.sub(r"[\s\-]", "", t) in squashed


_ABSTAIN = re.compile(
    r"\b(insufficient evidence|no (retrieved )?passages?|not (enough|sufficient) evidence)\b", re.I
)


def is_abstention(sentence: str) -> bool:
    """True for 'Insufficient evidence ...'-style sentences that make no claim."""
    return bool(_ABSTAIN.search(sentence))


def _windows(text: str) -> list[tuple[int, int]]:
    spans = split_sentences(text) or [(0, len(text))]
    return spans if len(spans) == 1 else [*spans, (spans[0][0], spans[-1][1])]


@dataclass(frozen=True, slots=True)
class Support:
    """The verdict for one sentence against the chunks it cites."""

    supported: bool
    score: float
    reason: str
    chunk_id: str | None
    quote_start: int
    quote_end: int


class Verifier:
    """Checks sentences against cited chunks; embeddings of chunk sentences are cached."""

    def __init__(self, embedder: Embedder, threshold: float) -> None:
        self.embedder = embedder
        self.threshold = threshold
        self._windows: dict[str, tuple[list[tuple[int, int]], np.ndarray]] = {}

    def _chunk_windows(self, chunk: ScoredChunk) -> tuple[list[tuple[int, int]], np.ndarray]:
        self.prepare([chunk])
        return self._windows[chunk.chunk.chunk_id]

    def prepare(self, chunks: Sequence[ScoredChunk]) -> None:
        """Embed the windows of several chunks in one batch (faster than one by one)."""
        todo = [c for c in chunks if c.chunk.chunk_id not in self._windows]
        if not todo:
            return
        all_windows: list[tuple[str, list[tuple[int, int]]]] = []
        texts: list[str] = []
        for c in todo:
            text = c.chunk.text
            windows = _windows(text)
            all_windows.append((c.chunk.chunk_id, windows))
            texts += [text[a:b] for a, b in windows]
        vecs = self.embedder.embed(texts)
        i = 0
        for cid, windows in all_windows:
            self._windows[cid] = (windows, vecs[i : i + len(windows)])
            i += len(windows)

    def check(self, sentence: str, cited: Sequence[ScoredChunk]) -> Support:
        """Verdict for ``sentence`` (citation markers already removed) against ``cited``."""
        if not cited:
            if is_abstention(sentence):
                return Support(
                    True, 1.0, "states insufficient evidence: no claim to support", None, 0, 0
                )
            return Support(False, 0.0, "no citation", None, 0, 0)
        self.prepare(cited)
        svec = self.embedder.embed([sentence])[0]
        best: tuple[float, ScoredChunk, tuple[int, int]] | None = None
        for chunk in cited:
            windows, vecs = self._chunk_windows(chunk)
            sims = vecs @ svec
            j = int(np.argmax(sims))
            if best is None or float(sims[j]) > best[0]:
                best = (float(sims[j]), chunk, windows[j])
        assert best is not None
        cosine, chunk, (qs, qe) = best
        cited_text = " ".join(c.chunk.text for c in cited)
        lower = cited_text.lower()
        squashed = re.sub(r"[\s\-]", "", lower)
        missing = [t for t in key_terms(sentence) if not _term_in(t, lower, squashed)]
        words = _content_words(sentence)
        lexical = len(words & _content_words(cited_text)) / len(words) if words else 0.0
        score = max(cosine, 0.5 * cosine + 0.5 * lexical)
        score = float(min(max(score, 0.0), 1.0))
        if missing:
            uniq = list(dict.fromkeys(missing))
            reason = f"not in the cited passage: {', '.join(uniq[:6])}"
            return Support(False, score, reason, chunk.chunk.chunk_id, qs, qe)
        if score < self.threshold:
            reason = f"low support (cosine {cosine:.2f}, word overlap {lexical:.2f})"
            return Support(False, score, reason, chunk.chunk.chunk_id, qs, qe)
        reason = f"supported (cosine {cosine:.2f}, word overlap {lexical:.2f})"
        return Support(True, score, reason, chunk.chunk.chunk_id, qs, qe)
