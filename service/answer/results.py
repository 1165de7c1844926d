"""What an answer or report run ends with: the response, its timings, and small helpers the
answer and report flows share."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Literal

from core.schemas import ScoredChunk, SearchFilter, SourceType
from core.verify import Verifier
from service.answer.compose import Composed, check_all
from service.answer.events import Question
from service.models import AnswerResponse, TrialRow


def supported_by_any(verifier: Verifier) -> Callable[[str, Sequence[ScoredChunk]], bool]:
    """Whether the verifier finds a claim supported by one of the passages (each on its own)."""

    def supported(claim: str, passages: Sequence[ScoredChunk]) -> bool:
        return any(s.supported for s in check_all(verifier, [(claim, [h]) for h in passages]))

    return supported


def final_response(
    req: Question,
    mode: Literal["answer", "report"],
    composed: Composed,
    generator: Literal["extractive", "llm"],
    degraded: bool,
    timings: dict[str, float],
    trials: list[TrialRow] | None,
) -> AnswerResponse:
    """The verified response the ``Final`` event carries."""
    answer, sections, citations, sources, passages, verification = composed
    return AnswerResponse(
        question=req.text,
        mode=mode,
        answer=answer,
        sections=sections,
        trials=trials,
        citations=citations,
        sources=sources,
        passages=passages,
        verification=verification,
        generator=generator,
        degraded=degraded,
        timings=timings,
    )


def timings_ms(t0: float, t1: float, t2: float, t3: float, retrieve_ms: float) -> dict[str, float]:
    """Milliseconds per stage from the stage boundaries t0..t3 (perf_counter seconds)."""
    return {
        "retrieve_ms": round(retrieve_ms, 1),
        "generate_ms": round((t2 - t1) * 1000, 1),
        "verify_ms": round((t3 - t2) * 1000, 1),
        "total_ms": round((t3 - t0) * 1000, 1),
    }


def unique_hits(hits: Iterator[ScoredChunk] | list[ScoredChunk]) -> list[ScoredChunk]:
    """``hits`` without repeated chunks, first occurrence kept."""
    seen: set[str] = set()
    out = []
    for h in hits:
        if h.chunk.chunk_id not in seen:
            seen.add(h.chunk.chunk_id)
            out.append(h)
    return out


def with_trials(flt: SearchFilter | None) -> SearchFilter:
    """``flt`` narrowed to trial records."""
    base = flt.model_copy() if flt else SearchFilter()
    return base.model_copy(update={"source_types": [SourceType.TRIAL]})
