"""The service's resources (settings, embedder, store, answer engine, LLM client) and their
opening and closing. Routes reach them through ``service.deps``; nothing here imports a route."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field

from core.config import Settings
from core.embedding import Embedder, load_embedder
from core.errors import LitragError, StoreError
from core.jobs import load_runner
from core.retrieval import Retriever, fusion_from
from core.sparse import SparseEncoder
from core.store import VectorStore, meta_for, open_store
from core.verify import make_verifier
from service.answer.engine import AnswerEngine
from service.answer.llm import LLMClient
from service.jobs import JobFolder, JobManager, JobResources
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
    sparse: SparseEncoder | None = None
    #: the ingest job queue (POST /v1/documents); ``jobs_error`` says why there is none
    jobs: JobManager | None = None
    jobs_error: str | None = None
    _store_lock: threading.Lock = field(default_factory=threading.Lock)
    #: set first by close(): nothing opens the store again after it (a job or an upload late
    #: in shutdown would reopen it and hold its lock past the process's end)
    _closed: bool = False

    def open(self) -> None:
        """Load the models, connect the LLM client, open the store and build the engine.

        A store that cannot open leaves the service up (readiness 503, ``store_error`` set); a
        missing or broken verifier model raises: it would fail every answer.
        """
        settings = self.settings
        self.embedder = load_embedder(settings.embedding)
        passages: Embedder = self.embedder
        if settings.service.model_queue:
            self.queue = EmbeddingQueue.from_settings(self.embedder, settings.service)
            self.cache = VectorCache(settings.service.embed_cache)
            passages = self.cache.wrap(self.queue.lane("bulk"))
        make_verifier(settings.answer, passages)
        self.sparse = SparseEncoder(settings.sparse)
        if settings.llm.base_url:
            self.llm = LLMClient(settings.llm)
        try:
            self._open_store(create=False)
        except LitragError as exc:
            self.store_error = str(exc)
            log.error("store unavailable: %s", exc)
        self._start_jobs()

    def _open_store(self, *, create: bool) -> VectorStore:
        """Open (``create``: or create) the collection and build the engine on it."""
        assert self.embedder is not None
        assert self.sparse is not None
        settings = self.settings
        with self._store_lock:
            if self._closed:
                raise StoreError("the service is stopping")
            if self.store is not None:
                return self.store
            store = open_store(
                settings.store,
                meta_for(settings, self.embedder.name, self.embedder.dim, self.sparse.name),
                create=create,
            )
            queries: Embedder = self.embedder
            passages: Embedder = self.embedder
            if self.queue is not None and self.cache is not None:
                queries = self.cache.wrap(self.queue.lane("query"))
                passages = self.cache.wrap(self.queue.lane("bulk"))
            retriever = Retriever(store, queries, self.sparse, fusion_from(settings.retrieval))
            self.engine = AnswerEngine(settings, retriever, passages, self.llm)
            self.store, self.store_error = store, None
            return store

    def _start_jobs(self) -> None:
        """The ingest job queue, with its records under service.jobs_dir (default
        <store.path>/jobs); unfinished jobs of a previous run are queued again."""
        settings = self.settings
        try:
            runner = load_runner()
            folder = JobFolder(settings.service.jobs_dir or settings.store.path / "jobs")
        except (LitragError, OSError) as exc:
            self.jobs_error = f"ingest jobs unavailable: {exc}"
            log.error("%s", self.jobs_error)
            return
        jobs = JobManager(settings, folder, runner, self.job_resources)
        try:
            jobs.start()
        except OSError as exc:  # the jobs folder cannot be read or written: searches go on
            self.jobs_error = f"ingest jobs unavailable: {exc}"
            log.error("%s", self.jobs_error)
            return
        self.jobs = jobs

    def ensure_store(self) -> VectorStore:
        """The open store; when none is open, open it, creating the collection when it does not
        exist yet (the first upload creates it). StoreError says why it cannot."""
        if self._closed:
            raise StoreError("the service is stopping")
        if self.store is not None:
            return self.store
        if self.embedder is None:
            raise StoreError("the service is starting or stopping")
        try:
            return self._open_store(create=True)
        except LitragError as exc:
            self.store_error = str(exc)
            raise StoreError(str(exc)) from exc

    def job_resources(self) -> JobResources:
        """The store, embedder and sparse encoder an ingest job uses. Its texts go through the
        model queue's bulk lane (search queries first) and skip the vector cache (chunks are
        embedded once; they would push the answers' sentences out)."""
        store = self.ensure_store()
        assert self.embedder is not None
        assert self.sparse is not None
        embedder = self.queue.lane("bulk") if self.queue is not None else self.embedder
        return JobResources(store, embedder, self.sparse)

    def close(self) -> None:
        """Stop the job worker, release the model threads, the store and the LLM client; safe to
        call twice. A running ingest job stops at its next embedding call and runs again at the
        next start. Once called, the store is never opened again (ensure_store refuses)."""
        self._closed = True
        if self.jobs is not None:
            self.jobs.stop()
        if self.queue is not None:
            self.queue.close()  # a running job's waiting embedding call fails now
            self.queue = None
        if self.jobs is not None:
            self.jobs.join(timeout=60)
            self.jobs = None
        with self._store_lock:  # an open in progress has finished: its store is closed here
            store, self.store = self.store, None
        if store is not None:
            try:
                store.close()
            except StoreError as exc:  # e.g. already closed: shutdown must still release the rest
                log.warning("closing the store failed: %s", exc)
        if self.llm is not None:
            self.llm.close()
            self.llm = None
        self.engine = None
