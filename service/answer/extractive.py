"""Extractive answers: the retrieved passages' sentences most relevant to the question, each cited
to the chunk it was taken from. Deterministic, so a fresh install answers without any LLM.

Instruction-like sentences (a document's prompt injection, ``safety.is_instruction``) are never
candidates; URLs and markup in the chosen sentences are dealt with where compose renders them."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from core.chunking import split_sentences
from core.embedding import Embedder
from core.schemas import ScoredChunk
from core.verify.terms import SOURCE_REFS
from service.answer.draft import DraftSentence
from service.answer.safety import is_instruction, remove_urls

_MIN_CHARS, _MAX_CHARS = 40, 600
# The source's own reference markers ("[12]", "[1]–[3]", "[4], [5]") would read as citations of
# the answer, whose every [n] must be citations[n-1]: they are taken out of extracted sentences.
NO_EVIDENCE = "Insufficient evidence in the retrieved passages to answer this question."


# "Official title: …", "Study type: Interventional" — record fields, not sentences of prose.
_FIELD = re.compile(r"^[A-Z][A-Za-z /()-]{1,40}:\s")


def _is_prose(s: str) -> bool:
    letters = sum(ch.isalpha() for ch in s)
    return (
        _MIN_CHARS <= len(s) <= _MAX_CHARS
        and letters >= 0.6 * len(s)
        and not s[0].islower()
        and "\n" not in s
        and not _FIELD.match(s)
        and s[-1] in ".!?)\"'”"
    )


_TOKEN = re.compile(r"[a-z0-9][a-z0-9\-]+")
_STOP = frozenset(
    "the a an and or of in on for to with by from what which how are is was were be do does did "
    "can could should would about into than their there this that these those its it as at not "
    "like such".split()
)


def _rare_word_overlap(question: str, sentences: list[str]) -> np.ndarray:
    q = {w for w in _TOKEN.findall(question.lower()) if w not in _STOP}
    if not q:
        return np.zeros(len(sentences), dtype=np.float32)
    bags = [set(_TOKEN.findall(s.lower())) for s in sentences]
    n = len(sentences)
    weight = {w: math.log(1 + n / (1 + sum(w in b for b in bags))) for w in q}
    total = sum(weight.values()) or 1.0
    return np.array([sum(weight[w] for w in q if w in b) / total for b in bags], dtype=np.float32)


@dataclass
class Candidates:
    """The passages' prose sentences scored against a question.

    ``relevance`` is 0.75 cosine(question, header + sentence) + 0.25 rare-word overlap: the scale
    the extraction floor (``min_relevance``) and the report's section floor are set on.
    """

    items: list[tuple[int, str]]  # (hit index, sentence)
    vectors: np.ndarray
    relevance: np.ndarray

    @property
    def best(self) -> float:
        """The most relevant sentence's relevance (-1 when there is none)."""
        return float(self.relevance.max()) if len(self.items) else -1.0


def relevance(
    question: str, contexts: list[str], embedder: Embedder
) -> tuple[np.ndarray, np.ndarray]:
    """(relevance of each context to ``question``, the contexts' vectors)."""
    vecs = embedder.embed([question, *contexts])
    qv, sv = vecs[0], vecs[1:]
    # Cosine alone favours generic sentences ("mRNA vaccines are ..."); the rare query words
    # ("propionic acidemia") must count too: overlap weighted by inverse frequency among the
    # candidates.
    rel = 0.75 * (sv @ qv) + 0.25 * _rare_word_overlap(question, contexts)
    return rel.astype(np.float32), sv


def candidates(
    question: str,
    hits: Sequence[ScoredChunk],
    embedder: Embedder,
    exclude: set[str] | None = None,
) -> Candidates:
    """Every prose sentence of ``hits`` (not in ``exclude``) with its relevance to ``question``."""
    cands: list[tuple[int, str]] = []
    for i, hit in enumerate(hits):
        text = hit.chunk.text
        for a, b in split_sentences(text):
            s = SOURCE_REFS.sub("", text[a:b]).strip()
            # judged as it will be shown: without its URLs ("See https://…" is no sentence)
            shown, _ = remove_urls(s)
            if _is_prose(shown) and (exclude is None or s not in exclude) and not is_instruction(s):
                cands.append((i, s))
    if not cands:
        empty = np.zeros(0, dtype=np.float32)
        return Candidates([], empty.reshape(0, 0), empty)
    # Sentences are scored with their chunk's header (title + section): a trial's "Part 3 will
    # evaluate mRNA-3927 in infants" is about propionic acidemia only through its title.
    rel, sv = relevance(question, [f"{hits[i].chunk.header}: {s}" for i, s in cands], embedder)
    return Candidates(cands, sv, rel)


def extract(
    question: str,
    hits: Sequence[ScoredChunk],
    embedder: Embedder,
    *,
    max_sentences: int,
    min_relevance: float,
    section: str | None = None,
    per_chunk: int = 2,
    exclude: set[str] | None = None,
    scored: Candidates | None = None,
    focus: Callable[[int, str], bool] | None = None,
) -> list[DraftSentence]:
    """Pick up to ``max_sentences`` sentences by relevance with redundancy removed (MMR).

    ``scored``: the candidates already scored for ``question``; ``focus``: when some candidate
    (hit index, sentence) passes it, only those are picked (an answer's subject).
    """
    exclude = exclude if exclude is not None else set()
    scored = scored or candidates(question, hits, embedder, exclude)
    cands, sv, relevance_ = scored.items, scored.vectors, scored.relevance
    if not cands:
        return []
    allowed = [j for j, (i, s) in enumerate(cands) if s not in exclude]
    if focus is not None:
        on_subject = [j for j in allowed if focus(*cands[j])]
        allowed = on_subject or allowed
    # A small prior for the retrieval rank breaks ties toward better-ranked passages.
    prior = np.array([0.02 / (1 + i) for i, _ in cands], dtype=np.float32)
    score = relevance_ + prior
    chosen: list[int] = []
    per_hit: dict[int, int] = {}
    ok = set(allowed)
    order = [int(j) for j in np.argsort(-score, kind="stable") if int(j) in ok]
    while len(chosen) < max_sentences:
        best, best_val = -1, -1e9
        for j in order:
            if j in chosen or relevance_[j] < min_relevance:
                continue
            if per_hit.get(cands[j][0], 0) >= per_chunk:
                continue
            redundancy = max((float(sv[j] @ sv[c]) for c in chosen), default=0.0)
            if redundancy > 0.9:
                continue  # a near-duplicate of a chosen sentence
            val = 0.75 * float(score[j]) - 0.25 * redundancy
            if val > best_val:
                best, best_val = int(j), val
        if best < 0:
            break
        chosen.append(best)
        per_hit[cands[best][0]] = per_hit.get(cands[best][0], 0) + 1
    out = []
    for j in chosen:
        i, s = cands[j]
        exclude.add(s)
        out.append(DraftSentence(s, [hits[i].chunk.chunk_id], section))
    return out
