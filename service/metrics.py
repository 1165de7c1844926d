"""Prometheus metrics: requests by route and status with latency, answers by verdict, store
points, the model queue's calls and the vector cache, the ingest jobs. One registry per
application (tests build many apps in one process)."""

from __future__ import annotations

import time
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core.errors import StoreError
from core.jobs import ENDED_STATES
from core.store import VectorStore
from service.jobs import JobManager
from service.model_queue import EmbeddingQueue, VectorCache
from service.models import AnswerResponse

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class _StorePoints(Collector):
    """``litrag_store_points``: read from the store at scrape time (absent while it is closed)."""

    def __init__(self, store: Callable[[], VectorStore | None]) -> None:
        self._store = store

    def collect(self) -> list[GaugeMetricFamily]:
        store = self._store()
        if store is None:
            return []
        try:
            count = store.count()
        except StoreError:
            return []
        family = GaugeMetricFamily("litrag_store_points", "Points (chunks) in the collection")
        family.add_metric([], count)
        return [family]


class _ModelQueue(Collector):
    """The model queue's calls and texts (texts per call > 1: concurrent queries merged) and the
    vector cache's hits, read at scrape time (absent without a queue)."""

    def __init__(
        self, queue: Callable[[], tuple[EmbeddingQueue | None, VectorCache | None]]
    ) -> None:
        self._queue = queue

    def collect(self) -> list[CounterMetricFamily | GaugeMetricFamily]:
        queue, cache = self._queue()
        if queue is None:
            return []
        out: list[CounterMetricFamily | GaugeMetricFamily] = [
            CounterMetricFamily("litrag_embed_calls", "Embedding model calls", value=queue.calls),
            CounterMetricFamily(
                "litrag_embed_texts", "Texts embedded by the model", value=queue.texts
            ),
            GaugeMetricFamily(
                "litrag_embed_queued_texts", "Texts waiting for the model", value=queue.pending()
            ),
        ]
        if cache is not None:
            lookups = CounterMetricFamily(
                "litrag_embed_cache_lookups", "Vector cache lookups by result", labels=["result"]
            )
            lookups.add_metric(["hit"], cache.hits)
            lookups.add_metric(["miss"], cache.misses)
            out.append(lookups)
        return out


class _Jobs(Collector):
    """The ingest jobs (``POST /v1/documents``), read at scrape time (absent without a job
    queue): queued and running now, ended since the service started by final state, and the
    documents and chunks they stored (counted while a job runs, cancelled jobs' too)."""

    def __init__(self, jobs: Callable[[], JobManager | None]) -> None:
        self._jobs = jobs

    def collect(self) -> list[CounterMetricFamily | GaugeMetricFamily]:
        jobs = self._jobs()
        if jobs is None:
            return []
        stats = jobs.stats()
        now = GaugeMetricFamily(
            "litrag_jobs", "Ingest jobs queued or running now", labels=["state"]
        )
        now.add_metric(["queued"], stats.queued)
        now.add_metric(["running"], stats.running)
        ended = CounterMetricFamily(
            "litrag_jobs_ended",
            "Ingest jobs that ended since the service started, by final state",
            labels=["state"],
        )
        for state in ENDED_STATES:
            ended.add_metric([state], stats.ended.get(state, 0))
        documents = CounterMetricFamily(
            "litrag_jobs_documents",
            "Documents stored by ingest jobs since the service started, by source type",
            labels=["source_type"],
        )
        for source_type, n in sorted(stats.documents.items()):
            documents.add_metric([source_type], n)
        return [
            now,
            ended,
            documents,
            CounterMetricFamily(
                "litrag_jobs_chunks",
                "Chunks stored by ingest jobs since the service started",
                value=stats.chunks,
            ),
            GaugeMetricFamily(
                "litrag_jobs_queue_length", "Ingest jobs waiting to run", value=stats.queued
            ),
            GaugeMetricFamily(
                "litrag_jobs_queue_limit",
                "Most ingest jobs that may wait (LITRAG_SERVICE__MAX_QUEUED_JOBS; more: 429)",
                value=stats.queue_limit,
            ),
        ]


class Metrics:
    """The application's metrics and their registry."""

    def __init__(
        self,
        store: Callable[[], VectorStore | None],
        queue: Callable[[], tuple[EmbeddingQueue | None, VectorCache | None]],
        jobs: Callable[[], JobManager | None],
    ) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "litrag_http_requests",
            "HTTP requests by route template, method and status",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "litrag_http_request_duration_seconds",
            "Time to the end of the response body, by route template and method",
            ["route", "method"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
            registry=self.registry,
        )
        self.sentences = Counter(
            "litrag_answer_sentences",
            "Answer and report sentences by verification verdict",
            ["mode", "verdict"],
            registry=self.registry,
        )
        self.answers = Counter(
            "litrag_answers",
            "Answers and reports by generator and whether every kept sentence is supported",
            ["mode", "generator", "all_supported"],
            registry=self.registry,
        )
        self.registry.register(_StorePoints(store))
        self.registry.register(_ModelQueue(queue))
        self.registry.register(_Jobs(jobs))

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric."""
        return generate_latest(self.registry)


class MetricsMiddleware:
    """Counts and times every HTTP request by its route template (``/v1/documents/{doc_id}``,
    not the path: ids in paths would make a series per document)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def record(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, record)
        finally:
            route = scope.get("route")
            template = str(getattr(route, "path", "")) or "unmatched"
            method = str(scope.get("method", ""))
            self.metrics.requests.labels(template, method, str(status)).inc()
            self.metrics.latency.labels(template, method).observe(time.perf_counter() - start)


def observe_answer(metrics: Metrics, response: AnswerResponse) -> None:
    """Count one finished answer and its sentences' verdicts."""
    v = response.verification
    metrics.answers.labels(response.mode, response.generator, str(v.all_supported).lower()).inc()
    for verdict, n in (
        ("supported", v.supported),
        ("contradicted", v.contradicted),
        ("not_supported", v.not_supported),
    ):
        metrics.sentences.labels(response.mode, verdict).inc(n)
