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

import hmac
import json
import logging
import re
import time
import uuid
from collections.abc import Iterator
from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.concurrency import run_in_threadpool

from core.errors import LitragError, StoreError
from core.schemas import SearchFilter
from service.answer.engine import AnswerEngine, Event, GeneratorUnavailable
from service.answer.llm import LLMError
from service.app import State
from service.models import AnswerRequest

log = logging.getLogger("litrag.service")
router = APIRouter(prefix="/v1", tags=["openai"])

MODELS: dict[str, Literal["answer", "report"]] = {"litrag": "answer", "litrag-report": "report"}
CREATED = 1_700_000_000  # fixed "created" of the listed models
PIECE = re.compile(r"\S+\s*|\s+")  # streamed pieces: one word and the space after it


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

    model: str
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool = False
    # litrag extensions, sent with the client's ``extra_body``
    filters: SearchFilter | None = None
    top_k: int | None = Field(None, ge=1)


class OpenAIError(Exception):
    """An error answered with OpenAI's body shape."""

    def __init__(
        self,
        status: int,
        message: str,
        kind: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.body = {"error": {"message": message, "type": kind, "param": param, "code": code}}

    def response(self) -> JSONResponse:
        """The JSON response (401 also says how to authenticate)."""
        headers = {"WWW-Authenticate": "Bearer"} if self.status == 401 else None
        return JSONResponse(status_code=self.status, content=self.body, headers=headers)


def _from_litrag(exc: Exception) -> OpenAIError:
    """Store, LLM and engine errors as OpenAI errors with the service's usual statuses."""
    if isinstance(exc, LLMError):
        code = "llm_timeout" if exc.status == 504 else "llm_unavailable"
        return OpenAIError(exc.status, str(exc), "api_error", None, code)
    if isinstance(exc, GeneratorUnavailable):
        return OpenAIError(422, str(exc), "invalid_request_error", None, "llm_not_configured")
    if isinstance(exc, StoreError):
        return OpenAIError(503, str(exc), "api_error", None, "store_unavailable")
    return OpenAIError(503, str(exc), "api_error", None, "service_unavailable")


def _state(request: Request) -> State:
    state: State = request.app.state.litrag
    return state


def _check_key(request: Request, state: State) -> None:
    key = state.settings.service.api_key
    if key is None or not key.get_secret_value():
        return
    auth = request.headers.get("authorization", "")
    given = auth[7:] if auth.lower().startswith("bearer ") else request.headers.get("x-api-key", "")
    if not given:
        raise OpenAIError(
            401,
            "You didn't provide an API key: send it as 'Authorization: Bearer <key>'.",
            code="invalid_api_key",
        )
    if not hmac.compare_digest(given.encode(), key.get_secret_value().encode()):
        raise OpenAIError(401, "Incorrect API key provided.", code="invalid_api_key")


def _engine(state: State) -> AnswerEngine:
    if state.engine is None:
        reason = state.store_error or "the store is not open"
        raise OpenAIError(503, reason, "api_error", None, "store_unavailable")
    return state.engine


def _model_card(model_id: str) -> dict[str, Any]:
    return {"id": model_id, "object": "model", "created": CREATED, "owned_by": "litrag"}


@router.get("/models", summary="Models for the OpenAI-compatible endpoint")
def list_models(request: Request) -> JSONResponse:
    """``litrag`` (answer) and ``litrag-report`` (sectioned report)."""
    try:
        _check_key(request, _state(request))
    except OpenAIError as err:
        return err.response()
    return JSONResponse({"object": "list", "data": [_model_card(m) for m in MODELS]})


@router.get("/models/{model_id}", summary="One model of the OpenAI-compatible endpoint")
def get_model(model_id: str, request: Request) -> JSONResponse:
    """The model card, or 404 ``model_not_found``."""
    try:
        _check_key(request, _state(request))
        if model_id not in MODELS:
            raise _unknown_model(model_id)
    except OpenAIError as err:
        return err.response()
    return JSONResponse(_model_card(model_id))


def _unknown_model(model: str) -> OpenAIError:
    return OpenAIError(
        404,
        f"The model '{model}' does not exist; use one of: {', '.join(MODELS)}",
        param="model",
        code="model_not_found",
    )


async def _parse(request: Request) -> ChatRequest:
    try:
        raw = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise OpenAIError(400, f"The body is not valid JSON: {exc}") from exc
    if not isinstance(raw, dict):
        raise OpenAIError(400, "The body must be a JSON object.")
    if "model" in raw and isinstance(raw["model"], str) and raw["model"] not in MODELS:
        raise _unknown_model(raw["model"])
    try:
        return ChatRequest.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        param = ".".join(str(p) for p in first["loc"]) or None
        raise OpenAIError(400, f"{param}: {first['msg']}", param=param) from exc


def _answer_request(chat: ChatRequest, state: State) -> AnswerRequest:
    if chat.model not in MODELS:
        raise _unknown_model(chat.model)
    users = [m for m in chat.messages if m.role == "user" and m.text().strip()]
    if not users:
        raise OpenAIError(
            400, "No user message: the last user message is the question.", param="messages"
        )
    question = users[-1].text().strip()
    limits = state.settings.service
    if len(question) > limits.max_question_chars:
        raise OpenAIError(
            400,
            f"The question is {len(question)} characters; the limit is "
            f"{limits.max_question_chars}.",
            param="messages",
            code="context_length_exceeded",
        )
    if chat.top_k is not None and chat.top_k > limits.max_top_k:
        raise OpenAIError(
            400, f"top_k is {chat.top_k}; the limit is {limits.max_top_k}.", param="top_k"
        )
    return AnswerRequest(
        question=question, mode=MODELS[chat.model], top_k=chat.top_k, filters=chat.filters
    )


def _extra(final: dict[str, Any]) -> dict[str, Any]:
    """The structured part of a final answer, under ``litrag``."""
    keys = ("mode", "citations", "sources", "verification", "sections", "trials", "generator")
    return {k: final.get(k) for k in (*keys, "degraded")}


@router.post("/chat/completions", summary="OpenAI-compatible chat completion with citations")
async def chat_completions(request: Request) -> Any:
    """The last user message is answered (model ``litrag``) or reported on (``litrag-report``).

    The content carries ``[n]`` markers; ``litrag.citations[n-1]`` is the chunk behind each.
    ``stream: true`` answers with ``chat.completion.chunk`` server-sent events and ``[DONE]``.
    """
    state = _state(request)
    try:
        _check_key(request, state)
        chat = await _parse(request)
        req = _answer_request(chat, state)
        engine = _engine(state)
        events = engine.events(req, stream_deltas=False)
        # Retrieval runs before the first event: its failure is still an HTTP status.
        first = await run_in_threadpool(_next, events)
        if not chat.stream:
            final = first if first[0] == "final" else await run_in_threadpool(_last, events)
            return JSONResponse(_completion(chat.model, final[1]))
    except OpenAIError as err:
        return err.response()
    except LitragError as exc:  # LLMError and StoreError included
        return _from_litrag(exc).response()
    return StreamingResponse(
        _stream(chat.model, first, events),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


def _next(events: Iterator[Event]) -> Event:
    return next(events)


def _last(events: Iterator[Event]) -> Event:
    last: Event | None = None
    for last in events:  # noqa: B007 - the last event is the final response
        pass
    if last is None or last[0] != "final":
        raise LitragError("the answer engine ended without a final answer")
    return last


def _completion(model: str, final: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "system_fingerprint": None,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": final["answer"], "refusal": None},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        # Answers are retrieved and verified, not sampled: there is no token count to report.
        "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
        "litrag": _extra(final),
    }


def _stream(model: str, first: Event, events: Iterator[Event]) -> Iterator[str]:
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
        final = first if first[0] == "final" else _last(events)
    except LitragError as exc:  # LLMError and StoreError included
        yield f"data: {json.dumps(_from_litrag(exc).body)}\n\n"
        return
    except Exception as exc:  # headers are sent: the error can only travel in the stream
        log.exception("chat completion stream failed")
        err = OpenAIError(500, type(exc).__name__, "api_error", None, "internal_error")
        yield f"data: {json.dumps(err.body)}\n\n"
        return
    for piece in PIECE.findall(final[1]["answer"]):
        yield chunk({"content": piece})
    yield chunk({}, "stop", litrag=_extra(final[1]))
    yield "data: [DONE]\n\n"
