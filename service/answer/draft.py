"""A draft answer: sentences with the chunk ids they cite, before verification and numbering.

Every generator produces a draft; :func:`service.answer.compose.compose` turns it into the
response, so numbering, sources and verification are done once, the same way for all of them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from core.chunking import split_sentences
from service.answer.safety import is_instruction, remove_urls
from service.models import RemovedCitation

# [3], [1, 2], [1-3], [1–3], [2][4]
_MARKER = re.compile(r"\[(\d+(?:\s*(?:,|-|–)\s*\d+)*)\]")
_MAX_RANGE = 20


@dataclass
class DraftSentence:
    """One sentence, its cited chunk ids and the section it belongs to (reports)."""

    text: str
    chunk_ids: list[str]
    section: str | None = None
    #: (field label, value) pairs of a sentence built from a record: checked field by field
    facts: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class Draft:
    """Sentences plus what was removed from the generator's text on the way."""

    sentences: list[DraftSentence] = field(default_factory=list)
    removed_citations: list[RemovedCitation] = field(default_factory=list)
    removed_urls: list[str] = field(default_factory=list)
    #: instruction-like sentences of the model's text (a passage's injection it repeated)
    skipped_instructions: list[str] = field(default_factory=list)


def _expand(spec: str) -> list[int]:
    out: list[int] = []
    for part in re.split(r"\s*,\s*", spec):
        bounds = re.split(r"\s*[-–]\s*", part)
        if len(bounds) == 2 and bounds[0].isdigit() and bounds[1].isdigit():
            lo, hi = int(bounds[0]), int(bounds[1])
            out += list(range(lo, hi + 1)) if 0 < hi - lo <= _MAX_RANGE else [lo, hi]
        elif part.isdigit():
            out.append(int(part))
    return out


def parse_cited_text(
    text: str, passage_ids: list[str], section: str | None = None, draft: Draft | None = None
) -> Draft:
    """Split model text into sentences; map ``[n]`` to ``passage_ids[n-1]``.

    Markers naming passages that were not given are removed and reported; URLs in the text are
    removed and reported (source URLs come only from stored metadata); instruction-like sentences
    (``safety.is_instruction``: the model repeating a passage's prompt injection) are dropped and
    reported. Escaping is left to compose, which renders the text.
    """
    draft = draft or Draft()
    clean, urls = remove_urls(text)
    draft.removed_urls += urls
    # A marker that opens a line or follows a sentence end belongs to the previous sentence.
    clean = re.sub(r"([.!?])\s+((?:\[\d[\d,\s\-–]*\]\s*)+)", r" \2\1 ", clean)
    for start, end in split_sentences(clean):
        raw = clean[start:end]
        sentence = _MARKER.sub("", raw)
        sentence = re.sub(r"\s+([.,;:!?])", r"\1", sentence)
        sentence = re.sub(r"\(\s*\)", "", re.sub(r"\s{2,}", " ", sentence)).strip()
        if is_instruction(sentence):
            draft.skipped_instructions.append(sentence)
            continue
        ids: list[str] = []
        for m in _MARKER.finditer(raw):
            for n in _expand(m.group(1)):
                if 1 <= n <= len(passage_ids):
                    if passage_ids[n - 1] not in ids:
                        ids.append(passage_ids[n - 1])
                else:
                    draft.removed_citations.append(
                        RemovedCitation(
                            marker=f"[{n}]",
                            sentence=len(draft.sentences),
                            reason=f"cites passage {n}, but only 1–{len(passage_ids)} were "
                            "retrieved",
                        )
                    )
        if sentence.strip(" .,;:-"):
            draft.sentences.append(DraftSentence(sentence, ids, section))
    return draft
