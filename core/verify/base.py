"""The verdict types and the protocol every verification method implements."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from core.schemas import ScoredChunk


class Verdict(StrEnum):
    """What the cited passages say about a sentence."""

    SUPPORTED = "supported"
    CONTRADICTED = "contradicted"
    NOT_SUPPORTED = "not_supported"  # not enough information in the cited passages


@dataclass(frozen=True, slots=True)
class Support:
    """The verdict for one sentence against the chunks it cites.

    ``chunk_id`` and the quote offsets point at the passage sentence(s) that support or
    contradict the sentence (for ``not_supported``: the closest one).
    """

    verdict: Verdict
    score: float
    reason: str
    chunk_id: str | None
    quote_start: int
    quote_end: int

    @property
    def supported(self) -> bool:
        """True only for the ``supported`` verdict."""
        return self.verdict is Verdict.SUPPORTED


class Verifier(Protocol):
    """Checks sentences against cited chunks."""

    @property
    def method(self) -> str:
        """Method name and version, recorded in every answer's ``verification.method``."""
        ...

    def prepare(self, chunks: Sequence[ScoredChunk]) -> None:
        """Pre-compute what can be shared by several ``check`` calls (batched)."""
        ...

    def check(self, sentence: str, cited: Sequence[ScoredChunk]) -> Support:
        """Verdict for ``sentence`` (citation markers already removed) against ``cited``."""
        ...
