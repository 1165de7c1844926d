"""The service's embedding calls, run by a bounded set of model threads, queries first.

Before this every request thread called the model itself: 16 concurrent searches ran 16 model
calls at once on the same cores (each with the model's own intra-op threads), and a search waited
behind every answer's sentence embedding (docs/benchmarks.md, "Query latency and concurrency").
Here:

- at most ``workers`` model calls run at once (default 1: every call of the model uses all cores,
  torch with its intra-op threads, the ONNX backend with texts run in parallel);
- lane ``query`` (search queries) goes before lane ``bulk`` (answer sentences, claims): a bulk
  job is embedded in slices of at most ``max_batch`` texts, and after each slice the queries that
  arrived meanwhile are served, so a search waits for one slice, never for a whole answer; a
  waiting bulk slice is served after each query batch, so neither lane starves;
- queries that arrive while the model is busy (or within ``window_ms`` of the first, default 0)
  share one model call ("merge"), when the model's vectors do not depend on their batch-mates.

Batch invariance. An int8 ONNX model quantises its activations per tensor at run time, so a
text's vector changes with the texts it is batched (and padded) with: MiniLM query vectors
embedded 16 at a time differ from the same queries embedded alone by up to 0.03 per component
(cosine down to 0.987), enough to reorder the top 10 of most queries. Merging concurrent queries
would make a search's results depend on what other clients asked at the same moment. So the
queue embeds probe texts alone and together when it starts (``embed_merge="auto"``): when the
vectors agree within :data:`INVARIANT_ATOL` it merges, otherwise it embeds every text alone
("solo"; on the CPU as fast per text as padded batches). Either way a text's vector does not
depend on other requests, which is what makes :class:`VectorCache` sound.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from core.config import ServiceSettings
from core.embedding import Embedder, Matrix, WrappedEmbedder
from core.errors import EmbeddingError

log = logging.getLogger("litrag.service")

Lane = Literal["query", "bulk"]

#: Largest difference (per vector component) between a text embedded alone and in a batch for
#: which the model counts as batch-invariant: float32 models differ by ~2e-7 (MiniLM on torch,
#: CPU); int8 ONNX by ~1e-2.
INVARIANT_ATOL = 1e-4

#: Texts of very different lengths: batched together, the short one is padded to the long one.
_PROBES = (
    "mRNA vaccine",
    "Messenger RNA cancer vaccines encode tumour antigens that antigen-presenting cells translate "
    "and present to T cells; lipid nanoparticles protect the RNA and carry it into the cells, and "
    "early clinical trials combine the vaccines with checkpoint inhibitors such as pembrolizumab.",
    "Propionic acidemia is a rare inherited disorder of metabolism.",
)


def batch_invariant(model: Embedder) -> bool:
    """Whether ``model`` gives each probe text the same vector in a batch as alone."""
    together = model.embed(list(_PROBES))
    alone = np.stack([model.embed([p])[0] for p in _PROBES])
    diff = float(np.abs(together - alone).max())
    log.info("embedding model batch difference %.2g (merge when <= %.0g)", diff, INVARIANT_ATOL)
    return diff <= INVARIANT_ATOL


@dataclass(eq=False)
class _Job:
    """One ``embed`` call waiting for its vectors."""

    texts: list[str]
    lane: Lane
    out: Matrix
    #: positions by text length (slices of similar lengths pad little); ``taken`` of them are
    #: handed to a model call, ``done`` have their vectors
    order: list[int]
    future: Future[Matrix] = field(default_factory=Future)
    taken: int = 0
    done: int = 0

    @property
    def left(self) -> int:
        return len(self.order) - self.taken


_Slice = tuple[_Job, list[int]]


class EmbeddingQueue:
    """Runs every embedding call of the service on ``workers`` model threads (see the module
    docstring); :meth:`lane` gives an :class:`~core.embedding.Embedder` for one lane."""

    def __init__(
        self,
        model: Embedder,
        *,
        workers: int = 1,
        window_ms: float = 0.0,
        max_batch: int = 16,
        merge: bool | None = None,
    ) -> None:
        self.model = model
        self.window_s = window_ms / 1000
        self.max_batch = max_batch
        #: True: concurrent texts share model calls; False: every text is embedded alone
        self.merge = batch_invariant(model) if merge is None else merge
        self.calls = 0  # model calls made
        self.texts = 0  # texts embedded
        self._cond = threading.Condition()
        self._lanes: dict[Lane, deque[_Job]] = {"query": deque(), "bulk": deque()}
        self._last: Lane = "bulk"
        self._closed = False
        self._threads = [
            threading.Thread(target=self._work, name=f"litrag-model-{i}", daemon=True)
            for i in range(workers)
        ]
        for thread in self._threads:
            thread.start()

    @classmethod
    def from_settings(cls, model: Embedder, service: ServiceSettings) -> EmbeddingQueue:
        """The queue ``service`` configures."""
        merge = None if service.embed_merge == "auto" else service.embed_merge == "on"
        return cls(
            model,
            workers=service.model_workers,
            window_ms=service.embed_window_ms,
            max_batch=service.embed_max_batch,
            merge=merge,
        )

    def lane(self, lane: Lane) -> Embedder:
        """An embedder whose calls go through this queue in ``lane``."""
        return _LaneEmbedder(self, lane)

    def submit(self, texts: Sequence[str], lane: Lane) -> Future[Matrix]:
        """Queue ``texts``; the future holds their vectors (one row per text, in order)."""
        texts = list(texts)
        job = _Job(
            texts,
            lane,
            np.zeros((len(texts), self.model.dim), dtype=np.float32),
            sorted(range(len(texts)), key=lambda i: len(texts[i])),
        )
        if not texts:
            job.future.set_result(job.out)
            return job.future
        with self._cond:
            if self._closed:
                raise EmbeddingError("the embedding queue is closed (the service is stopping)")
            self._lanes[lane].append(job)
            self._cond.notify()
        return job.future

    def pending(self) -> int:
        """Texts queued and not yet handed to the model."""
        with self._cond:
            return sum(job.left for jobs in self._lanes.values() for job in jobs)

    def close(self) -> None:
        """Stop the model threads once their current call returns; queued calls fail with
        EmbeddingError. Safe to call twice."""
        with self._cond:
            self._closed = True
            jobs = [job for jobs in self._lanes.values() for job in jobs]
            for lane in self._lanes.values():
                lane.clear()
            self._cond.notify_all()
        for job in jobs:
            _fail(job, EmbeddingError("the service stopped before these texts were embedded"))
        for thread in self._threads:
            if thread is not threading.current_thread():
                thread.join(timeout=30)

    # -- the model threads ---------------------------------------------------------------------
    def _work(self) -> None:
        while True:
            work = self._next()
            if work is None:
                return
            self._run(work)

    def _next(self) -> list[_Slice] | None:
        """The next model call's texts, by lane priority; None once closed."""
        with self._cond:
            while True:
                if self._closed:
                    return None
                queries, bulk = self._lanes["query"], self._lanes["bulk"]
                if bulk and (not queries or self._last == "query"):
                    self._last = "bulk"
                    return self._take(bulk, across_jobs=False)
                if queries:
                    self._last = "query"
                    if self.merge and self.window_s > 0:
                        self._gather(queries)
                    if queries:  # another model thread may have taken them meanwhile
                        return self._take(queries, across_jobs=True)
                    continue
                self._cond.wait()

    def _gather(self, queries: deque[_Job]) -> None:
        """Wait up to the window for more queries (lock held; ``wait`` releases it)."""
        deadline = time.monotonic() + self.window_s
        while not self._closed and sum(j.left for j in queries) < self.max_batch:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            self._cond.wait(remaining)

    def _take(self, jobs: deque[_Job], *, across_jobs: bool) -> list[_Slice]:
        """Up to ``max_batch`` texts (1 when not merging) from the head job, or from several
        jobs when ``across_jobs`` (a job with texts left then goes to the back: one client's
        many claims do not hold up the others' queries). A job leaves its lane when all its
        texts are taken."""
        room = self.max_batch if self.merge else 1
        work: list[_Slice] = []
        while jobs and room > 0:
            job = jobs[0]
            n = min(room, job.left)
            work.append((job, job.order[job.taken : job.taken + n]))
            job.taken += n
            room -= n
            if job.left == 0:
                jobs.popleft()
            elif across_jobs:
                jobs.rotate(-1)
            if not across_jobs:
                break
        return work

    def _run(self, work: list[_Slice]) -> None:
        texts = [job.texts[i] for job, idx in work for i in idx]
        try:
            vectors = self._embed(texts)
        except Exception as exc:
            if len(work) == 1:
                self._drop(work[0][0], exc)
                return
            for one in work:  # one job's bad input must not fail the others it was batched with
                self._run([one])
            return
        row = 0
        for job, idx in work:
            job.out[idx] = vectors[row : row + len(idx)]
            row += len(idx)
            job.done += len(idx)
            if job.done == len(job.texts) and not job.future.done():
                job.future.set_result(job.out)

    def _embed(self, texts: list[str]) -> Matrix:
        if self.merge:
            vectors = self.model.embed(texts)
        else:
            vectors = np.stack([self.model.embed([t])[0] for t in texts])
        with self._cond:
            self.calls += 1 if self.merge else len(texts)
            self.texts += len(texts)
        return vectors

    def _drop(self, job: _Job, exc: Exception) -> None:
        """Fail ``job`` and take its remaining texts out of its lane."""
        with self._cond:
            lane = self._lanes[job.lane]
            if job in lane:
                lane.remove(job)
        _fail(job, exc)


def _fail(job: _Job, exc: Exception) -> None:
    if not job.future.done():
        job.future.set_exception(exc)


class _LaneEmbedder(WrappedEmbedder):
    """:class:`~core.embedding.Embedder` whose ``embed`` waits for the queue's model thread."""

    def __init__(self, queue: EmbeddingQueue, lane: Lane) -> None:
        super().__init__(queue.model)
        self._queue = queue
        self._lane: Lane = lane

    def embed(self, texts: Sequence[str]) -> Matrix:
        return self._queue.submit(texts, self._lane).result()


class VectorCache:
    """Vectors of the last ``capacity`` texts embedded, shared by every request (LRU by text).

    Answers embed every sentence of their passages; popular passages come back in other answers
    (and the web page asks the same question for an answer and a report). Sound only for an
    embedder whose vectors do not depend on the batch (an :class:`EmbeddingQueue` lane).
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.hits = 0
        self.misses = 0
        self._vectors: OrderedDict[str, Matrix] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._vectors)

    def wrap(self, embedder: Embedder) -> Embedder:
        """``embedder`` reading and filling this cache (``embedder`` itself when capacity is 0)."""
        return _CachedEmbedder(self, embedder) if self.capacity > 0 else embedder

    def lookup(self, texts: Sequence[str]) -> dict[str, Matrix]:
        """The cached vectors of ``texts`` (each a most recent use now)."""
        found: dict[str, Matrix] = {}
        with self._lock:
            for text in texts:
                vec = self._vectors.get(text)
                if vec is not None:
                    self._vectors.move_to_end(text)
                    found[text] = vec
            self.hits += len(found)
            self.misses += len(set(texts)) - len(found)
        return found

    def store(self, texts: Sequence[str], vectors: Matrix) -> None:
        """Remember ``vectors`` (rows of ``texts``), dropping the least recently used."""
        with self._lock:
            for text, vec in zip(texts, vectors, strict=True):
                self._vectors[text] = vec
                self._vectors.move_to_end(text)
            while len(self._vectors) > self.capacity:
                self._vectors.popitem(last=False)


class _CachedEmbedder(WrappedEmbedder):
    def __init__(self, cache: VectorCache, inner: Embedder) -> None:
        super().__init__(inner)
        self._cache = cache

    def embed(self, texts: Sequence[str]) -> Matrix:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        found = self._cache.lookup(texts)
        missing = list(dict.fromkeys(t for t in texts if t not in found))
        if missing:
            vectors = self._inner.embed(missing)
            self._cache.store(missing, vectors)
            found.update(zip(missing, vectors, strict=True))
        return np.stack([found[t] for t in texts])
