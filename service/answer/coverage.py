"""Whether a report section's passages are on its facet.

Two tests, both chosen on BioASQ (``scripts/choose_section_floor.py``, docs/eval.md "Report
section floor"): the best sentence's relevance to the section query reaches
``answer.section_floor``, and the facet *raises* the similarity of the most relevant sentences —
the mean over the top three of cos(section query, s) − cos(core topic, s) reaches
``answer.facet_contrast``. The second matters because a section query is "<facet> <core topic>":
every passage on the core topic ("mRNA vaccine technology") scores well on the first test whether
or not it says anything about "rare diseases".
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.config import AnswerSettings
from core.embedding import Embedder
from service.answer.extractive import Candidates

TOP = 3


def facet_contrast(section_query: str, core: str, scored: Candidates, embedder: Embedder) -> float:
    """Mean over the ``TOP`` most relevant sentences of cos(section query, s) − cos(core, s)."""
    if not scored.items:
        return -1.0
    vecs = embedder.embed([section_query, core])
    top = np.argsort(-scored.relevance, kind="stable")[:TOP]
    return float(np.mean(scored.vectors[top] @ (vecs[0] - vecs[1])))


@dataclass(frozen=True)
class Coverage:
    """How a report section's best sentences relate to its facet."""

    relevance: float  # the best sentence's relevance to the section query (-1: no sentence)
    contrast: float | None  # facet contrast (None for the overview)
    evidence: bool


def assess(
    section_query: str, core: str, scored: Candidates, embedder: Embedder, a: AnswerSettings
) -> Coverage:
    """Both tests (the overview, whose query is the core topic, needs only the first)."""
    if section_query.strip().lower() == core.strip().lower():
        return Coverage(round(scored.best, 4), None, scored.best >= a.section_floor)
    contrast = facet_contrast(section_query, core, scored, embedder)
    evidence = scored.best >= a.section_floor and contrast >= a.facet_contrast
    return Coverage(round(scored.best, 4), round(contrast, 4), evidence)
