"""The FastAPI application: ``create_app`` + a lifespan that opens and closes the resources in
``service.state``. Nothing is built at import time."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core.config import Settings, get_settings
from core.errors import LitragError
from service.errors import log_unexpected, rest_response
from service.metrics import Metrics, MetricsMiddleware
from service.routes import check, docs, documents, health, jobs, openai_compat, query, web
from service.state import State

DESCRIPTION = """
Answers questions about biomedical literature (PMC full text, PubMed abstracts, PDFs,
ClinicalTrials.gov) with citations that are **verified against retrieved passages**:
every `[n]` maps to one retrieved chunk, every source URL is built from stored identifiers,
and every sentence's support is reported in `verification`.

Authentication: when `LITRAG_SERVICE__API_KEY` is set, send `Authorization: Bearer <key>`
(or `X-API-Key: <key>`).

Errors are JSON `{"error": {"type", "message"}}` (OpenAI's error shape on
`/v1/chat/completions` and `/v1/models`); request bodies are JSON
(`Content-Type: application/json`), except uploads to `POST /v1/documents`
(`multipart/form-data`), which start ingest jobs followed at `GET /v1/jobs/{id}`.
"""


class BodyLimit:
    """Refuse request bodies over ``limit`` bytes (Content-Length or counted while streaming).

    ``exempt`` paths (uploads) read their bodies themselves, under their own limits.
    """

    def __init__(self, app: ASGIApp, limit: int, exempt: frozenset[str] = frozenset()) -> None:
        self.app = app
        self.limit = limit
        self.exempt = exempt

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path") in self.exempt:
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await self._refuse(send)
            return
        seen = 0
        too_large = started = refused = False

        async def counted() -> Message:
            nonlocal seen, too_large
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    too_large = True
                    raise _TooLarge
            return message

        async def guarded(message: Message) -> None:
            # FastAPI turns an exception raised while it reads the body into its own 400
            # response: once the limit is hit, that response is replaced by the refusal.
            nonlocal started, refused
            if too_large and not started:
                if not refused:
                    refused = True
                    await self._refuse(send)
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, guarded)
        except _TooLarge:
            if not (started or refused):
                await self._refuse(send)

    async def _refuse(self, send: Send) -> None:
        body = JSONResponse(
            status_code=422,
            content={
                "error": {
                    "type": "request_too_large",
                    "message": f"request body exceeds the limit of {self.limit} bytes",
                }
            },
        )
        await send({"type": "http.response.start", "status": 422, "headers": body.raw_headers})
        await send({"type": "http.response.body", "body": body.body})


class _TooLarge(Exception):
    pass


def _openapi(app: FastAPI, settings: Settings) -> dict[str, Any]:
    """The generated document, with the configured limits as schema bounds (so clients and
    property-based tests see the limits the routes enforce)."""
    if app.openapi_schema is None:
        schema = get_openapi(
            title=app.title,
            version=app.version,
            summary=app.summary,
            description=app.description,
            routes=app.routes,
        )
        components = schema["components"]["schemas"]
        # the chat route reads its body itself (OpenAI-shaped errors): document the model here
        chat = openai_compat.ChatRequest.model_json_schema(
            ref_template="#/components/schemas/{model}"
        )
        for name, definition in chat.pop("$defs", {}).items():
            components.setdefault(name, definition)
        components["ChatRequest"] = chat
        s = settings.service
        for name in ("SearchRequest", "AnswerRequest", "ChatRequest"):
            props = components.get(name, {}).get("properties", {})
            for field in ("query", "question"):
                if field in props:
                    props[field]["maxLength"] = s.max_question_chars
            top_k = props.get("top_k")
            if top_k is not None:
                for option in top_k.get("anyOf", [top_k]):
                    if option.get("type") == "integer":
                        option["maximum"] = s.max_top_k
        if not settings.llm.base_url:
            # what this service can do: generator "llm" is refused (422) without an endpoint
            generator = components["AnswerRequest"]["properties"]["generator"]
            generator["enum"] = [g for g in generator["enum"] if g != "llm"]
            generator["description"] += " ('llm' only when an LLM endpoint is configured)"
        _bounds_as_json_schema(schema)
        app.openapi_schema = schema
    return app.openapi_schema


def _bounds_as_json_schema(node: Any) -> None:
    """Pydantic writes the bounds of an optional ``JsonInt`` (an int with a BeforeValidator) as
    ``ge``/``le``, which JSON Schema ignores: rename them to ``minimum``/``maximum``."""
    if isinstance(node, dict):
        if node.get("type") == "integer":
            for short, name in (("ge", "minimum"), ("le", "maximum")):
                if short in node:
                    node.setdefault(name, node.pop(short))
        for value in node.values():
            _bounds_as_json_schema(value)
    elif isinstance(node, list):
        for value in node:
            _bounds_as_json_schema(value)


def create_app(settings: Settings | None = None) -> FastAPI:
    """A new application; the store and models open in its lifespan."""
    settings = settings or get_settings()
    state = State(settings=settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state.open()
        try:
            yield
        finally:
            state.close()

    app = FastAPI(
        title="litrag",
        version="0.1.0",
        summary="Biomedical literature answers whose every citation is a verified retrieved chunk",
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,  # served by routes/docs.py from packaged assets (no CDN)
        redoc_url=None,
    )
    metrics = Metrics(lambda: state.store, lambda: (state.queue, state.cache), lambda: state.jobs)
    app.state.litrag = state
    app.state.metrics = metrics
    app.add_middleware(
        BodyLimit,
        limit=settings.service.max_body_bytes,
        exempt=frozenset({jobs.UPLOAD_PATH}),
    )
    app.add_middleware(MetricsMiddleware, metrics=metrics)

    async def _error(request: Request, exc: Exception) -> JSONResponse:
        log_unexpected(exc, request.url.path)
        return rest_response(exc)

    for kind in (LitragError, StarletteHTTPException, RequestValidationError, Exception):
        app.add_exception_handler(kind, _error)

    for router in (
        health.router,
        query.router,
        check.router,
        documents.router,
        jobs.router,
        openai_compat.router,
        web.router,
        docs.router,
    ):
        app.include_router(router)
    app.mount("/static", web.static_files(), name="static")
    app.mount("/docs-assets", docs.assets(), name="docs-assets")
    app.openapi = lambda: _openapi(app, settings)  # type: ignore[method-assign]
    return app
