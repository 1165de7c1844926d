"""A run that ends early (an embedding error: what a cancelled or shutting-down job raises) stops
its parse thread instead of leaving it blocked on the full queue with the documents it holds.
Real pipeline, real Edge store, real legacy trial records; the embedder is the real one, made to
fail at its third call."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from core.config import IngestSettings, Settings, StoreSettings
from core.embedding import Embedder, Matrix, WrappedEmbedder
from core.errors import EmbeddingError
from core.sparse import SparseEncoder
from core.store import meta_for, open_store
from ingest.pipeline import Pipeline

PIPELINE_THREADS = ("litrag-ingest-parse", "litrag-ingest-write", "litrag-ingest-discard")


class _FailsAtCall(WrappedEmbedder):
    def __init__(self, inner: Embedder, call: int) -> None:
        super().__init__(inner)
        self.calls, self.fail_at = 0, call

    def embed(self, texts: Sequence[str]) -> Matrix:
        self.calls += 1
        if self.calls >= self.fail_at:
            raise EmbeddingError("stopped by the test")
        return self._inner.embed(texts)


def _alive() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name in PIPELINE_THREADS]


def test_an_early_end_leaves_no_pipeline_thread_behind(
    tmp_path: Path,
    corpus: Path,
    embedder,  # type: ignore[no-untyped-def]
) -> None:
    files = sorted((corpus / "ctgov-legacy-xml").iterdir())[:120]
    settings = Settings(
        store=StoreSettings(backend="edge", path=tmp_path / "store"),
        ingest=IngestSettings(batch_size=8),  # a queue of 32 documents: 120 files fill it
    )
    sparse = SparseEncoder(settings.sparse)
    store = open_store(settings.store, meta_for(settings, embedder.name, embedder.dim, sparse.name))
    assert not _alive()
    failing = _FailsAtCall(embedder, call=3)
    try:
        with pytest.raises(EmbeddingError, match="stopped by the test"):
            Pipeline(settings, store, failing, sparse).run(files)
        deadline = time.monotonic() + 10
        while _alive():
            assert time.monotonic() < deadline, f"still running: {_alive()}"
            time.sleep(0.05)
        assert failing.calls == 3  # it ended early: most files were never embedded
        # the two batches written before the error are whole documents, as the crash rule says
        assert store.count() > 0
    finally:
        store.close()
