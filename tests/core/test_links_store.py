"""Trial ↔ paper links resolved by the store, on Qdrant Edge and qdrant-client ``:memory:``.

Real records from ../shared/data/corpus. The corpus holds no trial whose own publication is in it
too (docs/links.md), so pairs are made from real records by changing one identifier:

- paper P: PubMed 29768149 (SYGMA 1) as published; its DataBankList names NCT02149199;
- trial T1: the real legacy record NCT00001909 (an asthma trial) given the NCT number
  NCT02149199 (its ``<nct_id>``), so P names it;
- trial T2: the real legacy record NCT00739791 as published; a ``<results_reference>`` names
  PMID 18799354;
- paper Q: the first citation of the real MEDLINE file medline16n0902 given PMID 18799354;
- trial T3: the real legacy record NCT05482711, whose BACKGROUND references name PMID 23604473,
  and paper R: the second citation of medline16n0902 given that PMID (must not link).

Vectors are the real model's (``embedder``); only the links are under test.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from core.chunking import chunk_document
from core.config import Settings
from core.embedding import Embedder
from core.schemas import Document, DocumentMeta, Identifiers
from core.sparse import SparseEncoder
from core.store import PointData, StoreMeta, VectorStore, open_store
from core.store.base import INDEXED_FIELDS
from core.store.links import links_of, resolve_links
from ingest.parsers.base import Source
from ingest.parsers.ctgov import parse_ctgov_xml
from ingest.parsers.medline import parse_medline

LEGACY = "ctgov-legacy-xml"
SYGMA_NCT = "NCT02149199"


def relabelled_trial(corpus: Path, nct: str, new_nct: str, extra: str = "") -> bytes:
    """The real legacy record ``nct`` with another NCT number (and ``extra`` XML before its
    closing tag)."""
    data = (corpus / LEGACY / f"{nct}.xml").read_bytes()
    data = data.replace(f"<nct_id>{nct}</nct_id>".encode(), f"<nct_id>{new_nct}</nct_id>".encode())
    return data.replace(b"</clinical_study>", extra.encode() + b"</clinical_study>")


def results_reference(pmid: str) -> str:
    """A legacy ``<results_reference>`` naming ``pmid``."""
    return (
        f"<results_reference><citation>Results.</citation><PMID>{pmid}</PMID></results_reference>"
    )


def trial_doc(name: str, data: bytes) -> Document:
    (doc,) = list(parse_ctgov_xml(Source(name, data)))
    assert isinstance(doc, Document)
    return doc


def medline_docs(path: Path) -> list[Document]:
    docs = [
        d for d in parse_medline(Source(str(path), path.read_bytes())) if isinstance(d, Document)
    ]
    assert docs
    return docs


def with_pmid(doc: Document, pmid: str) -> Document:
    """``doc`` as if PubMed had given it ``pmid`` (and no other identifier)."""
    return doc.model_copy(update={"doc_id": f"pmid:{pmid}", "identifiers": Identifiers(pmid=pmid)})


@pytest.fixture(scope="module")
def docs(corpus: Path) -> dict[str, Document]:
    medline = medline_docs(corpus / "pubmed" / "medline16n0902.xml.gz")
    no_trial = [d for d in medline if not d.links]
    (paper,) = medline_docs(corpus / "pubmed" / "pubmed-29768149.xml")
    return {
        "P": paper,
        "T1": trial_doc("T1", relabelled_trial(corpus, "NCT00001909", SYGMA_NCT)),
        "T2": trial_doc("T2", (corpus / LEGACY / "NCT00739791.xml").read_bytes()),
        "Q": with_pmid(no_trial[0], "18799354"),
        "T3": trial_doc("T3", (corpus / LEGACY / "NCT05482711.xml").read_bytes()),
        "R": with_pmid(no_trial[1], "23604473"),
    }


def test_the_records_state_what_the_pairs_rely_on(docs: dict[str, Document]) -> None:
    assert [(m.value, m.relation, m.source) for m in docs["P"].links] == [
        (SYGMA_NCT, "registration", "medline-databank")
    ]
    assert docs["T1"].links == [] and docs["T1"].doc_id == f"nct:{SYGMA_NCT}"
    t2 = {(m.kind, m.value, m.relation) for m in docs["T2"].links}
    assert ("pmid", "18799354", "RESULT") in t2
    assert ("pmid", "23604473", "BACKGROUND") in {
        (m.kind, m.value, m.relation) for m in docs["T3"].links
    }
    assert docs["Q"].links == [] and docs["R"].links == []


@pytest.fixture(scope="module")
def points(docs: dict[str, Document], embedder: Embedder) -> dict[str, list[PointData]]:
    settings = Settings()
    sparse = SparseEncoder(settings.sparse)
    out = {}
    for key, doc in docs.items():
        chunks = chunk_document(doc, settings.chunking, embedder.count_tokens)
        meta = DocumentMeta.of(doc, len(chunks))
        texts = [c.embed_text for c in chunks]
        dense = embedder.embed(texts).tolist()
        out[key] = [
            PointData(c, meta, d, s)
            for c, d, s in zip(chunks, dense, sparse.embed_documents(texts), strict=True)
        ]
    return out


def _store_meta(embedder: Embedder, settings: Settings) -> StoreMeta:
    return StoreMeta(
        embedding_model=embedder.name,
        dim=embedder.dim,
        chunking=settings.chunking.model_dump(),
        sparse=SparseEncoder(settings.sparse).name,
    )


@pytest.fixture
def store(settings: Settings, embedder: Embedder) -> Iterator[VectorStore]:
    s = open_store(settings.store, _store_meta(embedder, settings))
    yield s
    s.close()


def _meta(points: dict[str, list[PointData]], key: str) -> DocumentMeta:
    return points[key][0].doc


def _linked(store: VectorStore, points: dict[str, list[PointData]], key: str) -> list[str]:
    return [link.doc_id for link in links_of(store, _meta(points, key))]


def test_links_both_ways_whichever_side_arrives_first(
    store: VectorStore, points: dict[str, list[PointData]]
) -> None:
    # first arrivals: the paper naming a trial that is not there yet, a trial naming a paper
    # that is not there yet
    store.upsert(points["P"] + points["T2"])
    assert _linked(store, points, "P") == [] and _linked(store, points, "T2") == []
    # later arrivals: their trial and their paper
    store.upsert(points["T1"] + points["Q"] + points["T3"] + points["R"])
    (to_trial,) = links_of(store, _meta(points, "P"))
    assert to_trial.doc_id == f"nct:{SYGMA_NCT}"
    assert to_trial.stated_by == ["paper"] and to_trial.paper_relation == "registration"
    assert to_trial.url == f"https://clinicaltrials.gov/study/{SYGMA_NCT}"
    assert to_trial.own_publication and to_trial.where == ["paper: DataBankList"]
    (to_paper,) = links_of(store, _meta(points, "T1"))
    assert to_paper.doc_id == "pmid:29768149" and to_paper.stated_by == ["paper"]
    assert to_paper.url == "https://pubmed.ncbi.nlm.nih.gov/29768149/"
    # stated by the trial only (a RESULT reference)
    (pub,) = links_of(store, _meta(points, "T2"))
    assert (pub.doc_id, pub.stated_by, pub.trial_relation) == ("pmid:18799354", ["trial"], "RESULT")
    assert _linked(store, points, "Q") == ["nct:NCT00739791"]
    # a BACKGROUND reference is literature the trial cites: no link either way
    assert _linked(store, points, "T3") == [] and _linked(store, points, "R") == []
    # several documents in one query, as reports ask
    many = resolve_links(store, [_meta(points, k) for k in ("P", "T1", "T2", "T3")])
    assert {k: [x.doc_id for x in v] for k, v in many.items()} == {
        "pmid:29768149": [f"nct:{SYGMA_NCT}"],
        f"nct:{SYGMA_NCT}": ["pmid:29768149"],
        "nct:NCT00739791": ["pmid:18799354"],
        "nct:NCT05482711": [],
    }


def test_a_deleted_document_leaves_no_link(
    store: VectorStore, points: dict[str, list[PointData]]
) -> None:
    store.upsert(points["P"] + points["T1"])
    assert _linked(store, points, "T1") == ["pmid:29768149"]
    store.delete_doc_chunks("pmid:29768149")
    assert _linked(store, points, "T1") == []


def test_set_doc_meta_rewrites_links_without_touching_vectors(
    store: VectorStore, points: dict[str, list[PointData]]
) -> None:
    """A store written before links existed: the paper's chunks carry no links until
    ``set_doc_meta`` writes them (what a reingest does for an unchanged document)."""
    bare = _meta(points, "P").model_copy(update={"links": []})
    store.upsert([PointData(p.chunk, bare, p.dense, p.sparse) for p in points["P"]] + points["T1"])
    assert _linked(store, points, "T1") == []
    ids = [p.chunk.chunk_id for p in points["P"]]
    before = store.retrieve_raw(ids)
    store.set_doc_meta(_meta(points, "P"))
    assert _linked(store, points, "T1") == ["pmid:29768149"]
    after = store.retrieve_raw(ids)
    assert [a.dense for a in after] == [b.dense for b in before]
    assert all(a.payload["chunk"] == b.payload["chunk"] for a, b in zip(after, before, strict=True))
    assert all(a.payload["link_nct"] == [SYGMA_NCT] for a in after)
    assert [s.doc.links for s in store.retrieve(ids)] == [_meta(points, "P").links] * len(ids)


def test_an_older_edge_store_gets_the_link_indexes_on_open(
    tmp_path: Path, embedder: Embedder, points: dict[str, list[PointData]]
) -> None:
    from qdrant_edge import UpdateOperation

    from core.config import StoreSettings

    settings = Settings(store=StoreSettings(backend="edge", path=tmp_path))
    store = open_store(settings.store, _store_meta(embedder, settings))
    store.upsert(points["P"])
    shard = store._shard  # type: ignore[attr-defined]
    for name in ("link_nct", "link_pmid", "link_doi"):
        shard.update(UpdateOperation.delete_field_index(name))
    assert "link_nct" not in shard.info().payload_schema
    store.close()
    store = open_store(settings.store, _store_meta(embedder, settings), create=False)
    try:
        assert set(INDEXED_FIELDS) <= set(store._shard.info().payload_schema)  # type: ignore[attr-defined]
    finally:
        store.close()
