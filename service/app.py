"""The FastAPI application: ``create_app`` + a lifespan that opens and closes the store, the
embedder and the LLM client. Nothing is built at import time."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core.config import Settings, get_settings
from core.embedding import Embedder, load_embedder
from core.errors import LitragError, StoreError
from core.retrieval import Retriever, fusion_from
from core.sparse import SparseEncoder
from core.store import VectorStore, meta_for, open_store
from core.verify import make_verifier
from service.answer.engine import AnswerEngine, GeneratorUnavailable
from service.answer.llm import LLMClient, LLMError

log = logging.getLogger("litrag.service")

DESCRIPTION = """
Answers questions about biomedical literature (PMC full text, PubMed abstracts, PDFs,
ClinicalTrials.gov) with citations that are **verified against retrieved passages**:
every `[n]` maps to one retrieved chunk, every source URL is built from stored identifiers,
and every sentence's support is reported in `verification`.

Authentication: when `LITRAG_SERVICE__API_KEY` is set, send `Authorization: Bearer <key>`
(or `X-API-Key: <key>`).
"""


@dataclass
class State:
    """What the lifespan opened; ``store_error`` says why the store is not available."""

    settings: Settings
    embedder: Embedder | None = None
    store: VectorStore | None = None
    engine: AnswerEngine | None = None
    llm: LLMClient | None = None
    store_error: str | None = None


def _open(state: State) -> None:
    settings = state.settings
    state.embedder = load_embedder(settings.embedding)
    # the citation verifier loads now: a missing or broken model fails the start, not an answer
    make_verifier(settings.answer, state.embedder)
    sparse = SparseEncoder(settings.sparse)
    if settings.llm.base_url:
        state.llm = LLMClient(settings.llm)
    try:
        state.store = open_store(
            settings.store,
            meta_for(settings, state.embedder.name, state.embedder.dim, sparse.name),
            create=False,
        )
    except LitragError as exc:
        state.store_error = str(exc)
        log.error("store unavailable: %s", exc)
        return
    retriever = Retriever(state.store, state.embedder, sparse, fusion_from(settings.retrieval))
    state.engine = AnswerEngine(settings, retriever, state.embedder, state.llm)


def _close(state: State) -> None:
    if state.store is not None:
        try:
            state.store.close()
        except StoreError as exc:  # e.g. already closed: shutdown must still release the rest
            log.warning("closing the store failed: %s", exc)
        state.store = None
    if state.llm is not None:
        state.llm.close()
    state.engine = None


class BodyLimit:
    """Refuse request bodies over ``limit`` bytes (Content-Length or counted while streaming)."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
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


def error_body(kind: str, message: str) -> dict[str, Any]:
    """The JSON error shape every handler returns."""
    return {"error": {"type": kind, "message": message}}


def create_app(settings: Settings | None = None) -> FastAPI:
    """A new application; the store and models open in its lifespan."""
    settings = settings or get_settings()
    state = State(settings=settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        _open(state)
        try:
            yield
        finally:
            _close(state)

    app = FastAPI(
        title="litrag",
        version="0.1.0",
        summary="Biomedical literature answers whose every citation is a verified retrieved chunk",
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.litrag = state
    app.add_middleware(BodyLimit, limit=settings.service.max_body_bytes)

    @app.exception_handler(StoreError)
    async def _store_error(request: Request, exc: StoreError) -> JSONResponse:
        return JSONResponse(status_code=503, content=error_body("store_unavailable", str(exc)))

    @app.exception_handler(LLMError)
    async def _llm_error(request: Request, exc: LLMError) -> JSONResponse:
        kind = "llm_timeout" if exc.status == 504 else "llm_unavailable"
        return JSONResponse(status_code=exc.status, content=error_body(kind, str(exc)))

    @app.exception_handler(GeneratorUnavailable)
    async def _no_llm(request: Request, exc: GeneratorUnavailable) -> JSONResponse:
        return JSONResponse(status_code=422, content=error_body("llm_not_configured", str(exc)))

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        # 401 (API key) and 404 (document, chunk) in the documented ErrorBody shape
        kind = {401: "unauthorized", 404: "not_found"}.get(exc.status_code, "http_error")
        return JSONResponse(
            status_code=exc.status_code,
            content=error_body(kind, str(exc.detail)),
            headers=exc.headers,
        )

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        msgs = [
            f"{'.'.join(str(p) for p in e['loc'] if p != 'body')}: {e['msg']}" for e in exc.errors()
        ]
        return JSONResponse(
            status_code=422,
            content={**error_body("invalid_request", "; ".join(msgs)), "detail": exc.errors()},
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s", request.url.path)
        return JSONResponse(
            status_code=500, content=error_body("internal_error", f"{type(exc).__name__}")
        )

    from service.routes import documents, health, openai_compat, query, web

    app.include_router(health.router)
    app.include_router(query.router)
    app.include_router(documents.router)
    app.include_router(openai_compat.router)
    app.include_router(web.router)
    app.mount("/static", web.static_files(), name="static")
    return app


Handler = Callable[[Request], Awaitable[Any]]
