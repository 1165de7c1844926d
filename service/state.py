"""The service's resources (settings, embedder, store, answer engine, LLM client) and their
opening and closing. Routes reach them through ``service.deps``; nothing here imports a route."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from core.config import Settings
from core.embedding import Embedder, load_embedder
from core.errors import LitragError, StoreError
from core.retrieval import Retriever, fusion_from
from core.sparse import SparseEncoder
from core.store import VectorStore, meta_for, open_store
from core.verify import make_verifier
from service.answer.engine import AnswerEngine
from service.answer.llm import LLMClient
from service.model_queue import EmbeddingQueue, VectorCache

log = logging.getLogger("litrag.service")


@dataclass
class State:
    """What the lifespan opened; ``store_error`` says why the store is not available."""

    settings: Settings
    embedder: Embedder | None = None
    #: the model threads every embedding call of the service goes through (model_queue)
    queue: EmbeddingQueue | None = None
    cache: VectorCache | None = None
    store: VectorStore | None = None
    engine: AnswerEngine | None = None
    llm: LLMClient | None = None
    store_error: str | None = None

    def open(self) -> None:
        """Load the models, connect the LLM client, open the store and build the engine.

        A store that cannot open leaves the service up (readiness 503, ``store_error`` set); a
        missing or broken verifier model raises: it would fail every answer.
        """
        settings = self.settings
        self.embedder = load_embedder(settings.embedding)
        queries: Embedder = self.embedder
        passages: Embedder = self.embedder
        if settings.service.model_queue:
            self.queue = EmbeddingQueue.from_settings(self.embedder, settings.service)
            self.cache = VectorCache(settings.service.embed_cache)
            queries = self.cache.wrap(self.queue.lane("query"))
            passages = self.cache.wrap(self.queue.lane("bulk"))
        make_verifier(settings.answer, passages)
        sparse = SparseEncoder(settings.sparse)
        if settings.llm.base_url:
            self.llm = LLMClient(settings.llm)
        try:
            self.store = open_store(
                settings.store,
                meta_for(settings, self.embedder.name, self.embedder.dim, sparse.name),
                create=False,
            )
        except LitragError as exc:
            self.store_error = str(exc)
            log.error("store unavailable: %s", exc)
            return
        retriever = Retriever(self.store, queries, sparse, fusion_from(settings.retrieval))
        self.engine = AnswerEngine(settings, retriever, passages, self.llm)

    def close(self) -> None:
        """Release the store, the LLM client and the model threads; safe to call twice."""
        if self.store is not None:
            try:
                self.store.close()
            except StoreError as exc:  # e.g. already closed: shutdown must still release the rest
                log.warning("closing the store failed: %s", exc)
            self.store = None
        if self.llm is not None:
            self.llm.close()
            self.llm = None
        self.engine = None
        if self.queue is not None:
            self.queue.close()
            self.queue = None
