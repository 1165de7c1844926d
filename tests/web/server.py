"""A real litrag service for end-to-end tests: the sample trials and PubMed record ingested into
an Edge store with the real pipeline, served by a real uvicorn on 127.0.0.1 (ephemeral port).

Shared by tests/web and tests/openai_api: one store and one server per test session, started by
whichever suite asks first (ingestion is the slow part). The service requires ``API_KEY``.
"""

from __future__ import annotations

import shutil
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import uvicorn

from core.config import (
    AnswerSettings,
    ChunkingSettings,
    EmbeddingSettings,
    IngestSettings,
    LLMSettings,
    ServiceSettings,
    Settings,
    SparseSettings,
    StoreSettings,
)

REPO = Path(__file__).resolve().parents[2]
SAMPLES = [
    REPO / "samples" / "ctgov" / "mrna-trials.json",
    REPO / "samples" / "pubmed" / "pubmed-29768149.xml",
]
API_KEY = "litrag-test-key-0123456789"


@dataclass
class Live:
    """The running service."""

    base_url: str
    api_key: str
    settings: Settings
    spare_store: Path  # a copy of the ingested store, for a second service


_live: Live | None = None
_lock = threading.Lock()


def settings_for(store: Path, llm: LLMSettings | None = None) -> Settings:
    """Every section explicit: nothing from LITRAG_* variables or a .env (no LLM: extractive)."""
    return Settings(
        store=StoreSettings(backend="edge", path=store),
        embedding=EmbeddingSettings(),
        chunking=ChunkingSettings(),
        sparse=SparseSettings(),
        ingest=IngestSettings(),
        llm=llm or LLMSettings(),
        answer=AnswerSettings(),
        service=ServiceSettings(api_key=API_KEY),
    )


def _ingest(settings: Settings) -> None:
    from core.embedding import load_embedder
    from core.sparse import SparseEncoder
    from core.store import meta_for, open_store
    from ingest.pipeline import Pipeline

    embedder = load_embedder(settings.embedding)
    sparse = SparseEncoder(settings.sparse)
    store = open_store(settings.store, meta_for(settings, embedder.name, embedder.dim, sparse.name))
    try:
        stats = Pipeline(settings, store, embedder, sparse).run(SAMPLES)
    finally:
        store.close()
    assert stats.failures == 0, stats
    assert stats.documents["trial"] > 0 and stats.documents["abstract"] == 1, stats


def serve(settings: Settings, request: pytest.FixtureRequest, ready: bool = True) -> str:
    """Start uvicorn in a thread (stopped at the end of the session); wait for /readyz = 200, or
    for /healthz when ``ready`` is False (a service whose store cannot open)."""
    from service.app import create_app

    config = uvicorn.Config(
        create_app(settings), host="127.0.0.1", port=0, log_level="warning", lifespan="on"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="litrag-uvicorn", daemon=True)
    thread.start()

    def stop() -> None:
        server.should_exit = True
        thread.join(timeout=30)

    request.session.config.add_cleanup(stop)
    deadline = time.monotonic() + 120
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            pytest.fail("uvicorn did not start")
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    last = "no answer"
    while True:
        try:
            r = httpx.get(f"{base}/{'readyz' if ready else 'healthz'}", timeout=5)
            if r.status_code == 200:
                return base
            last = f"HTTP {r.status_code}: {r.text}"
        except httpx.HTTPError as exc:
            last = repr(exc)
        if time.monotonic() > deadline:
            pytest.fail(f"service not ready: {last}")
        time.sleep(0.1)


def live_service(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Live:
    """The session's service, built and started on first use."""
    global _live
    with _lock:
        if _live is None:
            root = tmp_path_factory.mktemp("live-store")
            settings = settings_for(root / "store")
            _ingest(settings)
            # an embedded Edge store is opened by one service at a time: a copy for another
            shutil.copytree(root / "store", root / "spare")
            _live = Live(serve(settings, request), API_KEY, settings, root / "spare")
        return _live
