"""Links through the real ingestion pipeline into a real Qdrant Edge store: found at ingest and
counted, resolved whichever side is ingested first, and written into a store made before links
existed without embedding anything again.

The paper is PubMed 29768149 (SYGMA 1, its DataBankList names NCT02149199); its trial is the real
legacy record NCT00001909 given that NCT number (the corpus has no real pair, docs/links.md).
"""

from __future__ import annotations

from pathlib import Path

from core.config import Settings, StoreSettings
from core.embedding import Embedder
from core.sparse import SparseEncoder
from core.store import VectorStore, meta_for, open_store
from core.store.links import links_of
from ingest.pipeline import Pipeline
from ingest.stats import IngestStats, ReportEntry
from tests.core.test_links_store import SYGMA_NCT, relabelled_trial

PAPER = "pubmed/pubmed-29768149.xml"


def _files(tmp_path: Path, corpus: Path) -> tuple[Path, Path]:
    trial = tmp_path / "trial.xml"
    trial.write_bytes(relabelled_trial(corpus, "NCT00001909", SYGMA_NCT))
    return trial, corpus / PAPER


def _run(
    settings: Settings, embedder: Embedder, paths: list[Path]
) -> tuple[IngestStats, VectorStore]:
    sparse = SparseEncoder(settings.sparse)
    store = open_store(settings.store, meta_for(settings, embedder.name, embedder.dim, sparse.name))
    entries: list[ReportEntry] = []
    stats = Pipeline(settings, store, embedder, sparse, on_report=entries.append).run(paths)
    assert not entries, entries
    return stats, store


def _linked(store: VectorStore, doc_id: str) -> list[tuple[str, list[str]]]:
    (chunk0, *_) = store.doc_chunks(doc_id)
    return [(x.doc_id, list(x.stated_by)) for x in links_of(store, chunk0.doc)]


def test_trial_first_then_paper_and_the_other_way(
    tmp_path: Path, corpus: Path, embedder: Embedder
) -> None:
    trial, paper = _files(tmp_path, corpus)
    for name, order in (("trial-first", [trial, paper]), ("paper-first", [paper, trial])):
        settings = Settings(store=StoreSettings(backend="edge", path=tmp_path / name))
        first, store = _run(settings, embedder, order[:1])
        store.close()
        second, store = _run(settings, embedder, order[1:])
        try:
            assert _linked(store, "pmid:29768149") == [(f"nct:{SYGMA_NCT}", ["paper"])]
            assert _linked(store, f"nct:{SYGMA_NCT}") == [("pmid:29768149", ["paper"])]
        finally:
            store.close()
        paper_stats = first if order[0] == paper else second
        assert paper_stats.docs_with_links == 1
        assert dict(paper_stats.link_mentions) == {"medline-databank": 1}
        assert dict(paper_stats.link_relations) == {"registration": 1}


def test_reingesting_a_store_without_links_writes_them_without_embedding(
    tmp_path: Path, corpus: Path, embedder: Embedder
) -> None:
    trial, paper = _files(tmp_path, corpus)
    settings = Settings(store=StoreSettings(backend="edge", path=tmp_path / "store"))
    stats, store = _run(settings, embedder, [trial, paper])
    try:
        assert stats.stored_documents == 2 and stats.relinked == 0
        # as a litrag without links wrote it: no links in the payload, no link fields
        (chunk0, *_) = store.doc_chunks("pmid:29768149")
        store.set_doc_meta(chunk0.doc.model_copy(update={"links": []}))
        assert _linked(store, f"nct:{SYGMA_NCT}") == []
        n_points = store.count()
    finally:
        store.close()
    again, store = _run(settings, embedder, [trial, paper])
    try:
        # both unchanged (nothing embedded), the paper's links rewritten in place
        assert again.unchanged == 2 and again.stored_documents == 0 and again.chunks == 0
        assert again.relinked == 1 and again.embed_seconds == 0.0
        assert _linked(store, f"nct:{SYGMA_NCT}") == [("pmid:29768149", ["paper"])]
        assert store.count() == n_points
    finally:
        store.close()
    third, store = _run(settings, embedder, [trial, paper])
    store.close()
    assert third.unchanged == 2 and third.relinked == 0
