"""Checks every entry point shares: the API key, the request limits and the JSON body.

The REST routes (through ``service.deps`` and ``JSONRoute``) and the OpenAI-compatible route call
the same functions; only the shape of the error body differs (see ``service.errors``).
"""

from __future__ import annotations

import hmac
import json
import re
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute
from starlette.datastructures import Headers

from core.config import ServiceSettings
from service.errors import InvalidBody, InvalidRequest, Unauthorized, UnsupportedMediaType

#: Deepest JSON nesting a body may have; request bodies here are a few levels deep.
MAX_JSON_DEPTH = 32
_SURROGATE = re.compile(r"[\ud800-\udfff]")


def check_api_key(service: ServiceSettings, headers: Headers) -> None:
    """Raise Unauthorized unless the configured key is sent as a Bearer token or X-API-Key
    (constant-time comparison); nothing to check when no key is configured."""
    key = service.api_key
    if key is None or not key.get_secret_value():
        return
    auth = headers.get("authorization", "")
    given = auth[7:] if auth.lower().startswith("bearer ") else headers.get("x-api-key", "")
    if not given:
        raise Unauthorized(
            "no API key sent: send it as 'Authorization: Bearer <key>' or 'X-API-Key: <key>'"
        )
    if not hmac.compare_digest(given.encode(), key.get_secret_value().encode()):
        raise Unauthorized("invalid API key")


def has_api_key(service: ServiceSettings, headers: Headers) -> bool:
    """True when no key is configured or the right one is sent."""
    try:
        check_api_key(service, headers)
    except Unauthorized:
        return False
    return True


def check_limits(service: ServiceSettings, text: str, field: str, top_k: int | None) -> None:
    """Raise InvalidRequest when the question/query or ``top_k`` is over the configured limit."""
    if len(text) > service.max_question_chars:
        raise InvalidRequest(
            f"{field}: is {len(text)} characters; the limit is {service.max_question_chars}",
            param=field,
        )
    if top_k is not None and top_k > service.max_top_k:
        raise InvalidRequest(f"top_k: is {top_k}; the limit is {service.max_top_k}", param="top_k")


def _is_json(content_type: str | None) -> bool:
    if content_type is None:  # FastAPI would hand the raw bytes to validation
        return False
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


def _check_value(value: Any) -> None:
    """Reject nesting deeper than MAX_JSON_DEPTH and strings that are not Unicode text."""
    stack: list[tuple[Any, int, str]] = [(value, 1, "body")]
    while stack:
        item, depth, where = stack.pop()
        if depth > MAX_JSON_DEPTH:
            raise InvalidBody(f"the body is nested deeper than {MAX_JSON_DEPTH} levels")
        if isinstance(item, str):
            if _SURROGATE.search(item):
                raise InvalidBody(
                    f"{where}: contains a lone UTF-16 surrogate (\\ud800-\\udfff), which is not "
                    "text",
                    param=where,
                )
        elif isinstance(item, dict):
            for k, v in item.items():
                stack.append((k, depth, where))
                stack.append((v, depth + 1, f"{where}.{k}" if where != "body" else str(k)))
        elif isinstance(item, list):
            stack.extend((v, depth + 1, f"{where}[{i}]") for i, v in enumerate(item))


async def read_json_body(request: Request) -> Any:
    """The request's JSON body, or InvalidBody / UnsupportedMediaType saying what is wrong.

    An empty body is ``None`` (the route's validation then says which fields are required).
    """
    body = await request.body()
    if not body:
        return None
    content_type = request.headers.get("content-type")
    if not _is_json(content_type):
        sent = f"as {content_type!r}" if content_type else "without a Content-Type"
        raise UnsupportedMediaType(
            f"the body was sent {sent}; send JSON with 'Content-Type: application/json'"
        )
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidBody(f"the body is not UTF-8 at byte {exc.start}") from exc
    try:
        value = json.loads(text)
    except RecursionError as exc:
        raise InvalidBody(f"the body is nested deeper than {MAX_JSON_DEPTH} levels") from exc
    except json.JSONDecodeError as exc:
        raise InvalidBody(f"the body is not valid JSON: {exc}") from exc
    _check_value(value)
    return value


class JSONRoute(APIRoute):
    """An APIRoute that reads and checks a JSON body before FastAPI validates it, so a wrong
    content type, bad encoding, deep nesting or lone surrogates are clear 4xx errors."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        """FastAPI's handler, preceded by :func:`read_json_body` on requests with a body."""
        handler = super().get_route_handler()

        async def checked(request: Request) -> Response:
            if self.body_field is not None:
                await read_json_body(request)
            return await handler(request)

        return checked
