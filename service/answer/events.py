"""What the answer engine takes and what it yields: a domain question and typed events.

The routes only render these (REST JSON, SSE, OpenAI chunks); the final event carries the typed
response, so nothing is dumped to a dict and validated again on the way out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from core.schemas import SearchFilter
from service.models import AnswerResponse, Passage, RetrievalMode


@dataclass(frozen=True)
class Question:
    """One question to answer or report on, whichever route it came through."""

    text: str
    mode: Literal["answer", "report"] = "answer"
    top_k: int | None = None
    retrieval_mode: RetrievalMode = "hybrid"
    filters: SearchFilter | None = None
    generator: Literal["auto", "extractive", "llm"] = "auto"
    unsupported: Literal["flag", "drop"] | None = None


@dataclass(frozen=True)
class Passages:
    """The retrieved passages, before any text is generated."""

    passages: list[Passage]


@dataclass(frozen=True)
class Delta:
    """A piece of draft text as it is generated (not yet verified)."""

    text: str


@dataclass(frozen=True)
class Final:
    """The verified answer; always the last event."""

    response: AnswerResponse


Event = Passages | Delta | Final
