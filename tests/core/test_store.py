"""The same store behaviour on Qdrant Edge and on qdrant-client :memory: (``backend`` fixture)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from core.chunking import chunk_document
from core.config import Settings
from core.errors import StoreError, StoreLockedError, StoreMismatchError
from core.schemas import Document, DocumentMeta, SearchFilter, SourceType
from core.sparse import SparseEncoder
from core.store import PointData, StoreMeta, VectorStore, open_store
from ingest.parsers.base import Source
from ingest.parsers.ctgov import parse_ctgov_json
from ingest.parsers.jats import parse_jats


def _meta(embedder, settings: Settings, sparse: SparseEncoder) -> StoreMeta:  # type: ignore[no-untyped-def]
    return StoreMeta(
        embedding_model=embedder.name,
        dim=embedder.dim,
        chunking=settings.chunking.model_dump(),
        sparse=sparse.name,
    )


def _points(doc: Document, settings: Settings, embedder, sparse: SparseEncoder) -> list[PointData]:  # type: ignore[no-untyped-def]
    chunks = chunk_document(doc, settings.chunking, embedder.count_tokens)
    meta = DocumentMeta.of(doc, len(chunks))
    texts = [c.embed_text for c in chunks]
    dense = embedder.embed(texts)
    return [
        PointData(c, meta, d, s)
        for c, d, s in zip(chunks, dense.tolist(), sparse.embed_documents(texts), strict=True)
    ]


@pytest.fixture(scope="module")
def docs(corpus: Path) -> dict[str, Document]:
    """A real trial with results and a real eLife article."""
    trial_path = corpus / "ctgov" / "NCT04267848.json"
    (trial,) = list(parse_ctgov_json(Source(str(trial_path), trial_path.read_bytes())))
    art_path = corpus / "jats" / "elife" / "elife00005.xml"
    (article,) = list(parse_jats(Source(str(art_path), art_path.read_bytes())))
    assert isinstance(trial, Document) and isinstance(article, Document)
    return {"trial": trial, "article": article}


@pytest.fixture(scope="module")
def points(embedder, docs: dict[str, Document]) -> list[PointData]:  # type: ignore[no-untyped-def]
    """Embedded once per module: the backends, not the model, are under test here."""
    settings = Settings()
    sparse = SparseEncoder(settings.sparse)
    return [p for doc in docs.values() for p in _points(doc, settings, embedder, sparse)]


@pytest.fixture
def loaded(settings: Settings, embedder, points: list[PointData]) -> VectorStore:  # type: ignore[no-untyped-def]
    sparse = SparseEncoder(settings.sparse)
    store = open_store(settings.store, _meta(embedder, settings, sparse))
    store.upsert(points)
    store.optimize()
    yield store
    store.close()


def test_counts_filters_and_retrieve(loaded: VectorStore, docs: dict[str, Document]) -> None:
    trial, article = docs["trial"], docs["article"]
    n_trial = len(loaded.doc_chunks(trial.doc_id))
    n_article = len(loaded.doc_chunks(article.doc_id))
    assert n_trial > 3 and n_article > 10
    assert loaded.count() == n_trial + n_article
    assert loaded.count(SearchFilter(source_types=["trial"])) == n_trial
    assert trial.trial is not None and trial.trial.has_results is False  # NCT04267848: none posted
    assert loaded.count(SearchFilter(has_results=False)) == n_trial
    assert loaded.count(SearchFilter(has_results=True)) == 0
    assert loaded.count(SearchFilter(statuses=[trial.trial.overall_status.lower()])) == n_trial  # type: ignore[union-attr]
    assert loaded.count(SearchFilter(conditions=[trial.trial.conditions[0].upper()])) == n_trial  # type: ignore[union-attr]
    assert loaded.count(SearchFilter(year_from=article.year, year_to=article.year)) == n_article
    assert loaded.count(SearchFilter(doc_ids=[article.doc_id])) == n_article
    chunks = loaded.doc_chunks(article.doc_id)
    assert [c.chunk.ordinal for c in chunks] == list(range(n_article))
    got = loaded.retrieve([chunks[3].chunk.chunk_id, "00000000-0000-0000-0000-000000000000"])
    assert [g.chunk for g in got] == [chunks[3].chunk]
    assert got[0].doc.title == article.title
    assert loaded.find_docs("nct_id", trial.identifiers.nct_id or "") == {trial.doc_id}


@pytest.mark.parametrize("mode", ["dense", "sparse", "hybrid"])
def test_query_modes_find_the_trial(loaded: VectorStore, embedder, docs, mode: str) -> None:  # type: ignore[no-untyped-def]
    q = "pembrolizumab after chemotherapy for stage II non-small cell lung cancer"  # NCT04267848
    sparse = SparseEncoder(Settings().sparse)
    dense = embedder.embed([q])[0].tolist() if mode != "sparse" else None
    sp = sparse.embed_query(q) if mode != "dense" else None
    hits = loaded.query(dense=dense, sparse=sp, limit=5)
    assert hits and all(h.score > 0 for h in hits)
    assert hits[0].doc.doc_id == docs["trial"].doc_id
    hits_f = loaded.query(
        dense=dense, sparse=sp, limit=5, search_filter=SearchFilter(source_types=["article"])
    )
    assert all(h.doc.source_type is SourceType.ARTICLE for h in hits_f)


def test_replace_removes_stale_tail(
    loaded: VectorStore, settings: Settings, embedder, docs
) -> None:  # type: ignore[no-untyped-def]
    article: Document = docs["article"]
    shorter = article.model_copy(update={"sections": article.sections[:2]})
    sparse = SparseEncoder(settings.sparse)
    pts = _points(shorter, settings, embedder, sparse)
    loaded.upsert(pts)
    loaded.delete_doc_chunks(article.doc_id, from_ordinal=len(pts))
    stored = loaded.doc_chunks(article.doc_id)
    assert len(stored) == len(pts)
    assert stored[0].doc.content_hash == shorter.content_hash() != article.content_hash()


def test_other_model_is_refused(settings: Settings, embedder, loaded: VectorStore) -> None:  # type: ignore[no-untyped-def]
    other = loaded.meta.model_copy(update={"embedding_model": "all-mpnet-base-v2", "dim": 768})
    if settings.store.backend == "edge":
        loaded.close()  # Edge is single-process and single-open
        with pytest.raises(StoreMismatchError, match="dim: 384 != 768"):
            open_store(settings.store, other, collection=loaded.collection)
    else:
        # the :memory: client is private to its instance: check through the same client
        from core.store.client import ClientStore

        assert isinstance(loaded, ClientStore)
        with pytest.raises(StoreMismatchError, match="embedding_model"):
            ClientStore(settings.store, loaded.collection, other, client=loaded._client)


def test_open_missing_collection_without_create(settings: Settings, embedder) -> None:  # type: ignore[no-untyped-def]
    meta = _meta(embedder, settings, SparseEncoder(settings.sparse))
    with pytest.raises(StoreError, match="run `litrag ingest` first"):
        open_store(settings.store, meta, collection="nothing_here", create=False)


def test_edge_second_process_gets_clear_message(tmp_path: Path, embedder) -> None:  # type: ignore[no-untyped-def]
    settings = Settings.model_validate({"store": {"backend": "edge", "path": str(tmp_path)}})
    meta = _meta(embedder, settings, SparseEncoder(settings.sparse))
    store = open_store(settings.store, meta)
    try:
        code = textwrap.dedent(
            f"""
            from pathlib import Path
            from core.config import StoreSettings
            from core.store import open_store, StoreMeta
            meta = StoreMeta.model_validate_json({meta.model_dump_json()!r})
            try:
                open_store(StoreSettings(backend="edge", path=Path({str(tmp_path)!r})), meta)
            except Exception as exc:
                print(type(exc).__name__, exc)
            """
        )
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        )
        assert out.stdout.startswith("StoreLockedError")
        assert "open in another process (pid " in out.stdout
    finally:
        store.close()
    # released: the same folder opens again
    open_store(settings.store, meta).close()
    assert StoreLockedError
