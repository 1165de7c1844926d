"""OpenAI-compatible chat: ``POST /v1/chat/completions`` and ``GET /v1/models``.

The official ``openai`` client, pointed at ``http://host:port/v1``, gets cited answers. The last
user message is the question; model ``litrag`` answers, ``litrag-report`` writes a sectioned
report. The message content is the verified answer with ``[n]`` markers and the verdict marks
(``(⚠ contradicted by [n])``, ``(⚠ not supported by [n])``); the structured citations, sources and
per-sentence verification (verdict, deciding quote, repair) ride along under the extra field
``litrag`` (``completion.model_extra["litrag"]`` with the official client). Streaming sends the
*verified* text in pieces once it is computed, so the assembled stream equals the non-streaming
content, marks included.

Errors are OpenAI-shaped (``{"error": {"message", "type", "param", "code"}}``), including a
missing or wrong API key (checked here, not by the service's generic dependency).
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Iterator
from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, StrictBool, ValidationError
from starlette.concurrency import run_in_threadpool

from core.errors import LitragError
from core.schemas import JsonInt, SearchFilter
from service.answer.events import Event, Final, Question
from service.deps import engine_of, get_metrics, get_state
from service.errors import (
    InvalidBody,
    InvalidRequest,
    NotFound,
    error_responses,
    log_unexpected,
    openai_body,
    openai_response,
    problem,
)
from service.guards import check_api_key, check_limits, read_json_body
from service.metrics import observe_answer
from service.models import AnswerResponse

router = APIRouter(prefix="/v1", tags=["openai"])

MODELS: dict[str, Literal["answer", "report"]] = {"litrag": "answer", "litrag-report": "report"}
CREATED = 1_700_000_000  # fixed "created" of the listed models
PIECE = re.compile(r"\S+\s*|\s+")  # streamed pieces: one word and the space after it


#: What ``messages`` must contain: a user message with text (a string or a text part).
USER_MESSAGE: dict[str, Any] = {
    "type": "object",
    "properties": {
        "role": {"const": "user"},
        "content": {
            "anyOf": [
                {"type": "string", "pattern": r"\S"},
                {
                    "type": "array",
                    "contains": {
                        "type": "object",
                        "properties": {
                            "type": {"const": "text"},
                            "text": {"type": "string", "pattern": r"\S"},
                        },
                        "required": ["type", "text"],
                    },
                },
            ]
        },
    },
    "required": ["role", "content"],
}


class ChatMessage(BaseModel):
    """One message of the conversation; content may be a string or OpenAI content parts."""

    model_config = ConfigDict(extra="allow")

    role: str
    content: str | list[dict[str, Any]] | None = None

    def text(self) -> str:
        """The message's text (text parts joined; other parts ignored)."""
        if isinstance(self.content, str):
            return self.content
        if not self.content:
            return ""
        return "\n".join(
            str(p.get("text", "")) for p in self.content if p.get("type") in ("text", "input_text")
        )


class ChatRequest(BaseModel):
    """The OpenAI chat body; sampling options are accepted and ignored (answers are verified)."""

    model_config = ConfigDict(extra="allow")

    model: Literal["litrag", "litrag-report"] = Field(
        description="litrag (answer) or litrag-report (sectioned report)"
    )
    messages: list[ChatMessage] = Field(
        min_length=1,
        description="The last user message with text is the question",
        json_schema_extra={"contains": USER_MESSAGE},
    )
    stream: StrictBool = False
    # litrag extensions, sent with the client's ``extra_body``
    filters: SearchFilter | None = None
    top_k: JsonInt | None = Field(None, ge=1, description="At most service.max_top_k")


def _model_card(model_id: str) -> dict[str, Any]:
    return {"id": model_id, "object": "model", "created": CREATED, "owned_by": "litrag"}


MODEL_ERRORS = error_responses(401, 404)
CHAT_ERRORS = error_responses(400, 401, 404, 415, 422, 502, 503, 504)


def _authorized(request: Request) -> None:
    check_api_key(get_state(request).settings.service, request.headers)


@router.get("/models", summary="Models for the OpenAI-compatible endpoint", responses=MODEL_ERRORS)
def list_models(request: Request) -> JSONResponse:
    """``litrag`` (answer) and ``litrag-report`` (sectioned report)."""
    try:
        _authorized(request)
    except Exception as exc:
        return openai_response(exc)
    return JSONResponse({"object": "list", "data": [_model_card(m) for m in MODELS]})


@router.get(
    "/models/{model_id}",
    summary="One model of the OpenAI-compatible endpoint",
    responses=MODEL_ERRORS,
)
def get_model(model_id: str, request: Request) -> JSONResponse:
    """The model card, or 404 ``model_not_found``."""
    try:
        _authorized(request)
        if model_id not in MODELS:
            raise _unknown_model(model_id)
    except Exception as exc:
        return openai_response(exc)
    return JSONResponse(_model_card(model_id))


def _unknown_model(model: str) -> NotFound:
    return NotFound(
        f"The model {model!r} does not exist; use one of: {', '.join(MODELS)}",
        param="model",
        kind="model_not_found",
    )


async def _parse(request: Request) -> ChatRequest:
    raw = await read_json_body(request)
    if not isinstance(raw, dict):
        raise InvalidBody("The body must be a JSON object.")
    if isinstance(raw.get("model"), str) and raw["model"] not in MODELS:
        raise _unknown_model(raw["model"])
    try:
        return ChatRequest.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        param = ".".join(str(p) for p in first["loc"]) or None
        raise InvalidBody(f"{param}: {first['msg']}", param=param) from exc


def _question(chat: ChatRequest, request: Request) -> Question:
    users = [m for m in chat.messages if m.role == "user" and m.text().strip()]
    if not users:
        raise InvalidBody(
            "No user message: the last user message is the question.", param="messages"
        )
    text = users[-1].text().strip()
    try:
        check_limits(get_state(request).settings.service, text, "messages", chat.top_k)
    except InvalidRequest as exc:
        # OpenAI clients expect 400 for a request over a limit
        kind = "context_length_exceeded" if exc.param == "messages" else "invalid_request"
        raise InvalidBody(str(exc), param=exc.param, kind=kind) from exc
    return Question(text=text, mode=MODELS[chat.model], top_k=chat.top_k, filters=chat.filters)


def _extra(final: AnswerResponse) -> dict[str, Any]:
    """The structured part of a final answer, under ``litrag``."""
    keys = {"mode", "citations", "sources", "verification", "sections", "trials", "generator"}
    return final.model_dump(mode="json", include=keys | {"degraded"})


CHAT_SCHEMA = {"$ref": "#/components/schemas/ChatRequest"}


@router.post(
    "/chat/completions",
    summary="OpenAI-compatible chat completion with citations",
    responses={
        **CHAT_ERRORS,
        200: {
            "description": "A chat.completion, or with stream=true chat.completion.chunk events",
            "content": {
                "application/json": {},
                # one event: ``data`` is a chat.completion.chunk's JSON, or "[DONE]"
                "text/event-stream": {
                    "schema": {
                        "type": "object",
                        "properties": {"data": {"type": "string"}},
                        "required": ["data"],
                    }
                },
            },
        },
    },
    openapi_extra={
        "requestBody": {"required": True, "content": {"application/json": {"schema": CHAT_SCHEMA}}}
    },
)
async def chat_completions(request: Request) -> Any:
    """The last user message is answered (model ``litrag``) or reported on (``litrag-report``).

    The content carries ``[n]`` markers; ``litrag.citations[n-1]`` is the chunk behind each.
    ``stream: true`` answers with ``chat.completion.chunk`` server-sent events and ``[DONE]``.
    """
    try:
        _authorized(request)
        chat = await _parse(request)
        question = _question(chat, request)
        engine = engine_of(get_state(request))
        engine.check(question)
        events = engine.events(question, stream_deltas=False)
        # Retrieval runs before the first event: its failure is still an HTTP status.
        first = await run_in_threadpool(next, events)
        if not chat.stream:
            final = await run_in_threadpool(_final, first, events)
            observe_answer(get_metrics(request), final)
            return JSONResponse(_completion(chat.model, final))
    except Exception as exc:
        log_unexpected(exc, "chat completion")
        return openai_response(exc)
    return StreamingResponse(
        _stream(chat.model, first, events, request),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


def _final(first: Event, events: Iterator[Event]) -> AnswerResponse:
    """The answer of the ``Final`` event (the last one)."""
    event = first
    for event in events:  # noqa: B007 - the last event is the final response
        pass
    if not isinstance(event, Final):
        raise LitragError("the answer engine ended without a final answer")
    return event.response


def _completion(model: str, final: AnswerResponse) -> dict[str, Any]:
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "system_fingerprint": None,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": final.answer, "refusal": None},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        # Answers are retrieved and verified, not sampled: there is no token count to report.
        "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
        "litrag": _extra(final),
    }


def _stream(model: str, first: Event, events: Iterator[Event], request: Request) -> Iterator[str]:
    """Role chunk, the verified text in word pieces, a last chunk with ``litrag``, ``[DONE]``."""
    cid, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())

    def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> str:
        body = {
            "id": cid,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "system_fingerprint": None,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
            **extra,
        }
        return f"data: {json.dumps(body, ensure_ascii=False)}\n\n"

    yield chunk({"role": "assistant", "content": ""})
    try:
        final = _final(first, events)
    except Exception as exc:  # headers are sent: the error can only travel in the stream
        log_unexpected(exc, "chat completion stream")
        yield f"data: {json.dumps(openai_body(problem(exc)))}\n\n"
        return
    observe_answer(get_metrics(request), final)
    for piece in PIECE.findall(final.answer):
        yield chunk({"content": piece})
    yield chunk({}, "stop", litrag=_extra(final))
    yield "data: [DONE]\n\n"
