"""Search, answer and report."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter
from fastapi.exceptions import RequestValidationError
from fastapi.responses import StreamingResponse

from core.errors import LitragError, StoreError
from service.answer.llm import LLMError
from service.deps import AuthDep, EngineDep, StateDep
from service.models import (
    EXAMPLE_QUESTION,
    AnswerRequest,
    AnswerResponse,
    ErrorBody,
    Passage,
    SearchRequest,
    SearchResponse,
)

router = APIRouter(prefix="/v1", tags=["query"], dependencies=[AuthDep])

ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "Missing or invalid API key"},
    422: {"model": ErrorBody, "description": "Invalid request or a limit exceeded"},
    502: {"model": ErrorBody, "description": "LLM endpoint unreachable or failed"},
    503: {"model": ErrorBody, "description": "Store unavailable"},
    504: {"model": ErrorBody, "description": "LLM endpoint timed out"},
}


def _limit_error(field: str, message: str) -> RequestValidationError:
    return RequestValidationError(
        [{"type": "value_error", "loc": ("body", field), "msg": message, "input": None}]
    )


def _check_limits(state: StateDep, text: str, field: str, top_k: int | None) -> None:
    s = state.settings.service
    if len(text) > s.max_question_chars:
        raise _limit_error(field, f"is {len(text)} characters; the limit is {s.max_question_chars}")
    if top_k is not None and top_k > s.max_top_k:
        raise _limit_error("top_k", f"is {top_k}; the limit is {s.max_top_k}")


@router.post(
    "/search",
    response_model=SearchResponse,
    responses=ERRORS,
    summary="Ranked passages (dense, sparse or hybrid) with filters",
)
def search(req: SearchRequest, engine: EngineDep, state: StateDep) -> SearchResponse:
    """Retrieve passages; each carries its document metadata, section path, page and offsets."""
    _check_limits(state, req.query, "query", req.top_k)
    res = engine.retriever.search(
        req.query,
        top_k=req.top_k,
        mode=req.mode,
        search_filter=req.filters,
        per_doc_cap=req.per_doc_cap,
    )
    return SearchResponse(
        query=req.query,
        mode=req.mode,
        passages=[Passage.of(i + 1, h) for i, h in enumerate(res.chunks)],
        timings={"embed_ms": round(res.embed_ms, 1), "search_ms": round(res.search_ms, 1)},
    )


def _sse(events: Iterator[tuple[str, dict[str, Any]]]) -> Iterator[str]:
    try:
        for name, data in events:
            yield f"event: {name}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"
    except (LLMError, StoreError, LitragError) as exc:
        status = exc.status if isinstance(exc, LLMError) else 503
        body = {"status": status, "type": type(exc).__name__, "message": str(exc)}
        yield f"event: error\ndata: {json.dumps(body)}\n\n"


def _answer(req: AnswerRequest, engine: EngineDep, state: StateDep) -> Any:
    _check_limits(state, req.question, "question", req.top_k)
    if req.stream:
        return StreamingResponse(
            _sse(engine.events(req)),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )
    return engine.answer(req)


ANSWER_DOC = """Answer with citations tied to retrieved chunks.

Every `[n]` in `answer` is `citations[n-1]`: one retrieved chunk with the supporting quote and its
offsets; `sources` lists only cited documents, rendered from stored metadata; `verification`
reports per sentence whether its cited chunk supports it. With `"stream": true` the response is
server-sent events: `passages`, then `delta` (text as generated), then `final` (this object,
verified — model citations to passages not given are removed there), or `error`.
"""

ANSWER_EXAMPLES = {
    "answer": {"summary": "A question", "value": {"question": "How do mRNA cancer vaccines work?"}},
    "report": {
        "summary": "A sectioned report",
        "value": {"question": EXAMPLE_QUESTION, "mode": "report"},
    },
    "stream": {
        "summary": "Streaming (SSE)",
        "value": {"question": "mRNA vaccines for rare diseases", "stream": True},
    },
}


@router.post(
    "/answer",
    response_model=AnswerResponse,
    responses={**ERRORS, 200: {"content": {"text/event-stream": {}}}},
    summary="Answer or report with verified citations",
    description=ANSWER_DOC,
    openapi_extra={"requestBody": {"content": {"application/json": {"examples": ANSWER_EXAMPLES}}}},
)
def answer(req: AnswerRequest, engine: EngineDep, state: StateDep) -> Any:
    """See the description."""
    return _answer(req, engine, state)


@router.post(
    "/report",
    response_model=AnswerResponse,
    responses=ERRORS,
    summary="Report: /v1/answer with mode=report",
)
def report(req: AnswerRequest, engine: EngineDep, state: StateDep) -> Any:
    """A multi-section report; same body and response as /v1/answer."""
    return _answer(req.model_copy(update={"mode": "report"}), engine, state)
