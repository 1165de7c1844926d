"""Search, answer and report: parse the request, call the retriever or the engine, render."""

from __future__ import annotations

import json
from collections.abc import Iterator
from itertools import chain
from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response, StreamingResponse

from service.answer.events import Delta, Event, Final, Passages, Question
from service.deps import AuthDep, EngineDep, MetricsDep, StateDep
from service.errors import error_responses, log_unexpected, sse_error
from service.guards import JSONRoute, check_limits
from service.metrics import Metrics, observe_answer
from service.models import (
    EXAMPLE_QUESTION,
    AnswerRequest,
    AnswerResponse,
    Passage,
    SearchRequest,
    SearchResponse,
)

router = APIRouter(prefix="/v1", tags=["query"], dependencies=[AuthDep], route_class=JSONRoute)

SEARCH_ERRORS = error_responses(400, 401, 415, 422, 503)
ANSWER_ERRORS = error_responses(400, 401, 415, 422, 502, 503, 504)


@router.post(
    "/search",
    response_model=SearchResponse,
    responses=SEARCH_ERRORS,
    summary="Ranked passages (dense, sparse or hybrid) with filters",
)
def search(req: SearchRequest, engine: EngineDep, state: StateDep) -> SearchResponse:
    """Retrieve passages; each carries its document metadata, section path, page and offsets."""
    check_limits(state.settings.service, req.query, "query", req.top_k)
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


def question_of(req: AnswerRequest) -> Question:
    """The engine's question for an API request."""
    return Question(
        text=req.question,
        mode=req.mode,
        top_k=req.top_k,
        retrieval_mode=req.retrieval_mode,
        filters=req.filters,
        generator=req.generator,
        unsupported=req.unsupported,
    )


def sse_event(event: Event) -> str:
    """One server-sent event: ``passages``, ``delta`` or ``final``."""
    data: dict[str, Any]
    if isinstance(event, Passages):
        name, data = "passages", {"passages": [p.model_dump(mode="json") for p in event.passages]}
    elif isinstance(event, Delta):
        name, data = "delta", {"text": event.text}
    else:
        name, data = "final", event.response.model_dump(mode="json")
    return f"event: {name}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


def _sse(first: Event, events: Iterator[Event], metrics: Metrics) -> Iterator[str]:
    try:
        for event in chain([first], events):
            if isinstance(event, Final):
                observe_answer(metrics, event.response)
            yield sse_event(event)
    except Exception as exc:  # the headers are sent: the error can only travel in the stream
        log_unexpected(exc, "answer stream")
        yield sse_error(exc)


def _answer(req: AnswerRequest, engine: EngineDep, state: StateDep, metrics: Metrics) -> Response:
    check_limits(state.settings.service, req.question, "question", req.top_k)
    question = question_of(req)
    if not req.stream:
        response = engine.answer(question)
        observe_answer(metrics, response)
        # serialised once, from the typed response (FastAPI would validate it again)
        return Response(response.model_dump_json(), media_type="application/json")
    # What fails before the first event (no LLM configured, retrieval) is still an HTTP status.
    engine.check(question)
    events = engine.events(question)
    first = next(events)
    return StreamingResponse(
        _sse(first, events, metrics),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


ANSWER_DOC = """Answer with citations tied to retrieved chunks.

Every `[n]` in `answer` is `citations[n-1]`: one retrieved chunk with the supporting quote and its
offsets; `sources` lists only cited documents, rendered from stored metadata; `verification`
reports per sentence whether its cited chunk supports it. With `"stream": true` the response is
server-sent events (`text/event-stream`): `passages`, then `delta` (text as generated), then
`final` (this object, verified — model citations to passages not given are removed there), or
`error` (`{"status", "type", "message"}`).
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

SSE_DOC = {
    "text/event-stream": {
        # one server-sent event; ``data`` is the JSON of the event's object
        "schema": {
            "type": "object",
            "properties": {
                "event": {"enum": ["passages", "delta", "final", "error"]},
                "data": {"type": "string"},
            },
            "required": ["event", "data"],
        },
        "example": 'event: passages\ndata: {"passages": [...]}\n\nevent: final\ndata: {...}\n\n',
    }
}


@router.post(
    "/answer",
    response_model=AnswerResponse,
    responses={**ANSWER_ERRORS, 200: {"content": SSE_DOC}},
    summary="Answer or report with verified citations",
    description=ANSWER_DOC,
    openapi_extra={"requestBody": {"content": {"application/json": {"examples": ANSWER_EXAMPLES}}}},
)
def answer(req: AnswerRequest, engine: EngineDep, state: StateDep, metrics: MetricsDep) -> Response:
    """See the description."""
    return _answer(req, engine, state, metrics)


@router.post(
    "/report",
    response_model=AnswerResponse,
    responses={**ANSWER_ERRORS, 200: {"content": SSE_DOC}},
    summary="Report: /v1/answer with mode=report",
)
def report(req: AnswerRequest, engine: EngineDep, state: StateDep, metrics: MetricsDep) -> Response:
    """A multi-section report; same body and response as /v1/answer."""
    return _answer(req.model_copy(update={"mode": "report"}), engine, state, metrics)
