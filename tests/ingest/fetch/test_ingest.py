"""`litrag fetch … --ingest`: the fetched files go through the real pipeline into a real embedded
Qdrant Edge store at tmp_path (the real ONNX embedding model; nothing mocked)."""

from __future__ import annotations

from core.config import Settings
from core.sparse import SparseEncoder
from core.store import meta_for, open_store
from tests.ingest.fetch.conftest import Fetch
from tests.ingest.fetch.replay import Replay

PMIDS = ["12091962", "9997", "11748933", "11700088", "1234567", "22351513", "29915538"]


def test_fetch_then_ingest_into_an_edge_store(fetch: Fetch, replay: Replay, embedder) -> None:  # type: ignore[no-untyped-def]
    result = fetch("pubmed", "--query", "cancer", "--ingest")
    assert result.exit_code == 0, result.output
    assert "--ingest: 7 new or changed files" in result.output

    settings = Settings()
    sparse = SparseEncoder(settings.sparse)
    store = open_store(settings.store, meta_for(settings, embedder.name, embedder.dim, sparse.name))
    try:
        for pmid in PMIDS:
            assert store.doc_chunks(f"pmid:{pmid}"), pmid
    finally:
        store.close()

    result = fetch("pubmed", "--query", "cancer", "--ingest")
    assert result.exit_code == 0, result.output
    assert "--ingest: no new or changed files to ingest" in result.output
