"""One table from exception to HTTP status and error type, rendered three ways.

Every route, the SSE stream and the OpenAI-compatible route classify an exception with
:func:`problem` and only choose the body's shape: the REST body
``{"error": {"type", "message"[, "param"]}}``, an SSE ``error`` event, or OpenAI's
``{"error": {"message", "type", "param", "code"}}`` (``code`` is the same error type). So a store
outage is 503 ``store_unavailable`` everywhere, and a new error needs one row here.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from core.errors import LitragError, StoreError
from service.answer.llm import LLMError

log = logging.getLogger("litrag.service")


class ApiError(LitragError):
    """An error the service answers on purpose; subclasses fix the status and the type."""

    status = 400
    kind = "bad_request"

    def __init__(self, message: str, *, param: str | None = None, kind: str | None = None) -> None:
        super().__init__(message)
        self.param = param
        if kind is not None:
            self.kind = kind


class InvalidBody(ApiError):
    """The body is not JSON the service can read (syntax, nesting, encoding, shape)."""

    status, kind = 400, "invalid_body"


class UnsupportedMediaType(ApiError):
    """A body sent with a content type other than JSON."""

    status, kind = 415, "unsupported_media_type"


class Unauthorized(ApiError):
    """A missing or wrong API key."""

    status, kind = 401, "invalid_api_key"


class NotFound(ApiError):
    """No such document, chunk or model."""

    status, kind = 404, "not_found"


class InvalidRequest(ApiError):
    """A well-formed request that breaks a rule (a limit, an empty question)."""

    status, kind = 422, "invalid_request"


class GeneratorUnavailable(ApiError):
    """generator='llm' was asked for but no endpoint is configured."""

    status, kind = 422, "llm_not_configured"


class InvalidMultipart(ApiError):
    """An upload body that is not readable multipart/form-data."""

    status, kind = 400, "invalid_multipart"


class UploadTooLarge(ApiError):
    """An upload over a size or count limit."""

    status, kind = 413, "upload_too_large"


class UploadNotStored(ApiError):
    """The service could not write an upload to its jobs folder (disk full, permissions)."""

    status, kind = 503, "upload_not_stored"


class ClientClosed(ApiError):
    """The client went away before its request was read (nginx's 499): no answer reaches it,
    /metrics counts it under 499, not as a 500 of the service, and no traceback is logged."""

    status, kind = 499, "client_closed_request"


class JobQueueFull(ApiError):
    """As many ingest jobs wait as the service allows."""

    status, kind = 429, "job_queue_full"


class JobEnded(ApiError):
    """A job that has already succeeded or failed cannot be cancelled."""

    status, kind = 409, "job_already_ended"


@dataclass(frozen=True)
class Problem:
    """How one exception is answered."""

    status: int
    kind: str
    message: str
    param: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)


def problem(exc: BaseException) -> Problem:
    """The one mapping from exception to status, type and message."""
    if isinstance(exc, Unauthorized):
        return Problem(401, exc.kind, str(exc), exc.param, {"WWW-Authenticate": "Bearer"})
    if isinstance(exc, ApiError):
        return Problem(exc.status, exc.kind, str(exc), exc.param)
    if isinstance(exc, LLMError):
        return Problem(
            exc.status, "llm_timeout" if exc.status == 504 else "llm_unavailable", str(exc)
        )
    if isinstance(exc, StoreError):
        return Problem(503, "store_unavailable", str(exc))
    if isinstance(exc, RequestValidationError):
        msgs = [describe(e) for e in exc.errors()]
        return Problem(422, "invalid_request", "; ".join(msgs) or "invalid request")
    if isinstance(exc, StarletteHTTPException):
        kind = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return Problem(exc.status_code, kind, str(exc.detail), None, dict(exc.headers or {}))
    if isinstance(exc, LitragError):
        return Problem(503, "service_unavailable", str(exc))
    return Problem(500, "internal_error", type(exc).__name__)


def log_unexpected(exc: BaseException, where: str) -> None:
    """Log the traceback of an error nobody raised on purpose (it is answered as a 500)."""
    if not isinstance(exc, LitragError) and problem(exc).status >= 500:
        log.error("unexpected error in %s", where, exc_info=exc)


def describe(error: Mapping[str, Any]) -> str:
    """``field.path: message`` of one pydantic error (never its ``input``: that may be bytes or
    text that JSON cannot carry)."""
    loc: Sequence[Any] = error.get("loc", ())
    where = ".".join(str(p) for p in loc if p != "body")
    return f"{where}: {error.get('msg', 'invalid')}" if where else str(error.get("msg", "invalid"))


def safe_details(errors: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Pydantic errors without ``input``/``ctx``/``url``: only location, message and type."""
    return [
        {"loc": [str(p) for p in e.get("loc", ())], "msg": str(e.get("msg")), "type": e.get("type")}
        for e in errors
    ]


def rest_body(p: Problem) -> dict[str, Any]:
    """``{"error": {"type", "message"[, "param"]}}``."""
    err: dict[str, Any] = {"type": p.kind, "message": p.message}
    if p.param is not None:
        err["param"] = p.param
    return {"error": err}


def rest_response(exc: BaseException) -> JSONResponse:
    """The REST JSON error response of ``exc``."""
    p = problem(exc)
    body = rest_body(p)
    if isinstance(exc, RequestValidationError):
        body["detail"] = safe_details(exc.errors())
    return JSONResponse(status_code=p.status, content=body, headers=dict(p.headers) or None)


def sse_error(exc: BaseException) -> str:
    """An ``error`` event for a stream whose headers are already sent."""
    p = problem(exc)
    data = {"status": p.status, "type": p.kind, "message": p.message}
    return f"event: error\ndata: {json.dumps(data)}\n\n"


def openai_body(p: Problem) -> dict[str, Any]:
    """OpenAI's error shape; ``code`` is the service's error type."""
    kind = "invalid_request_error" if p.status < 500 else "api_error"
    return {"error": {"message": p.message, "type": kind, "param": p.param, "code": p.kind}}


def openai_response(exc: BaseException) -> JSONResponse:
    """The OpenAI-shaped error response of ``exc``."""
    p = problem(exc)
    return JSONResponse(
        status_code=p.status, content=openai_body(p), headers=dict(p.headers) or None
    )


ERROR_STATUSES: dict[int, str] = {
    400: "Body is not readable JSON (syntax, nesting depth, encoding)",
    401: "Missing or invalid API key",
    404: "Not found",
    409: "The ingest job has already ended (succeeded or failed): nothing to cancel",
    413: "Upload over a size or file-count limit",
    415: "Body sent with a content type other than application/json",
    422: "Invalid request or a limit exceeded",
    429: "Too many ingest jobs waiting",
    502: "LLM endpoint unreachable or failed",
    503: "Store unavailable",
    504: "LLM endpoint timed out",
}
"""Every error status a route can answer, for the OpenAPI document."""


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for the error statuses a route can answer."""
    from service.models import ErrorBody

    return {s: {"model": ErrorBody, "description": ERROR_STATUSES[s]} for s in statuses}
