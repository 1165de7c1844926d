"""The same ingestion into Qdrant Edge and into qdrant-client gives the same rankings.

Real documents (an eLife JATS article, the full NCT04267848 record and 20 studies of the mRNA
sample page) are parsed, chunked and embedded once; the points go into an Edge store and into
qdrant-client ``:memory:`` (and, with ``QDRANT_URL`` set, a real server: marker ``server``). Ten
real queries in dense, sparse and hybrid mode, each without and with a payload filter, must give
the same top-10 chunk ids through :class:`core.retrieval.Retriever` (which breaks score ties by
chunk id) and the same scores.

What makes them agree (read in qdrant-client's local-mode source and measured here):
- RRF ``k``: local mode's default is 2 (``hybrid/fusion.py``), Edge's and a server's is 60; both
  compute ``1 / (k + rank)``, so ``k`` is always sent explicitly.
- Sparse IDF: local mode uses Qdrant's ``ln((n - df + 0.5) / (df + 0.5) + 1)`` over the live
  points holding the vector, like Edge (which, like a server, may count deleted points until its
  segments are optimized: no deletions here). Scores agree to ~1e-7 relative (float32 vs float64).
- Ties: BM25 scores often tie exactly (same term counts and length). Qdrant's own RRF ranks tied
  hits by internal offsets, which differ between backends (and with insertion order), so the
  fused top-10 differed (4 of 20 hybrid queries here, swaps at ranks 7-9). The stores therefore
  fuse themselves, giving tied hits a shared rank (``core.fusion.tie_ranks``/``rrf_fuse``).
  Weighted fusion (min-max normalised scores) rounds fused scores to 6 decimals so float noise
  between backends ties and falls back to the chunk id.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.chunking import chunk_document
from core.config import IngestSettings, Settings, StoreSettings
from core.embedding import Embedder
from core.fusion import Fusion, fuse, rrf_fuse, tie_ranks, weighted_fuse
from core.retrieval import Retriever
from core.schemas import Document, DocumentMeta, ScoredChunk, SearchFilter
from core.sparse import SparseEncoder
from core.store import PointData, StoreMeta, meta_for
from core.store.base import Mode
from core.store.client import ClientStore
from core.store.edge import EdgeStore
from ingest.formats import Source, parse_source

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / "samples"
#: Relative tolerance of scores: Edge computes in float32, local mode partly in float64.
SCORE_RTOL = 1e-4

QUERIES = [
    "personalized neoantigen mRNA cancer vaccine",
    "pembrolizumab after chemotherapy for stage II non-small cell lung cancer",
    "mRNA vaccine against COVID-19 in healthy adults: safety and immunogenicity",
    "cytomegalovirus vaccine efficacy",
    "dendritic cell immunotherapy with chemotherapy for pancreatic cancer",
    "checkpoint inhibitor nivolumab relatlimab in uveal melanoma",
    "unfolded protein response Ire1 clusters HAC1 mRNA splicing in yeast",
    "dose escalation in patients with advanced solid tumors",
    "Epstein-Barr virus related malignant tumors",
    "Huntington disease oral splicing modifier",
]
FILTERS = [
    SearchFilter(source_types=["trial"]),
    SearchFilter(statuses=["recruiting"]),
    SearchFilter(phases=["phase1"]),
    SearchFilter(year_from=2022, year_to=2024),
    SearchFilter(source_types=["article"]),
    SearchFilter(conditions=["pancreatic cancer"]),
    SearchFilter(has_results=False, year_from=2020),
    SearchFilter(phases=["phase2", "phase3"], statuses=["active_not_recruiting"]),
    SearchFilter(source_types=["trial"], year_to=2021),
    SearchFilter(interventions=["pembrolizumab"]),
]
MODES: list[tuple[Mode, Fusion]] = [
    ("dense", Fusion()),
    ("sparse", Fusion()),
    ("hybrid", Fusion()),
    ("hybrid", Fusion("weighted", dense_weight=0.5)),
]


def _documents() -> list[Document]:
    limits = IngestSettings()
    page = json.loads((SAMPLES / "ctgov" / "mrna-trials.json").read_bytes())
    # every 6th study: personalized, oncology, rare-disease and other mRNA trials alike
    subset = json.dumps({"studies": page["studies"][::6]}).encode()
    sources = [
        Source("samples/jats/elife05031.xml", (SAMPLES / "jats" / "elife05031.xml").read_bytes()),
        Source(
            "samples/ctgov/NCT04267848.json", (SAMPLES / "ctgov" / "NCT04267848.json").read_bytes()
        ),
        Source("samples/ctgov/mrna-trials.json[::6]", subset),
    ]
    docs = [d for s in sources for d in parse_source(s, limits) if isinstance(d, Document)]
    assert len(docs) == 22
    return docs


@pytest.fixture(scope="module")
def points(embedder) -> list[PointData]:  # type: ignore[no-untyped-def]
    """Chunked and embedded once for the module."""
    settings = Settings()
    sparse = SparseEncoder(settings.sparse)
    out: list[PointData] = []
    for doc in _documents():
        chunks = chunk_document(doc, settings.chunking, embedder.count_tokens)
        meta = DocumentMeta.of(doc, len(chunks))
        texts = [c.embed_text for c in chunks]
        dense = embedder.embed(texts).tolist()
        out += [
            PointData(c, meta, d, s)
            for c, d, s in zip(chunks, dense, sparse.embed_documents(texts), strict=True)
        ]
    return out


@pytest.fixture(scope="module")
def store_meta(embedder) -> StoreMeta:  # type: ignore[no-untyped-def]
    settings = Settings()
    return meta_for(settings, embedder.name, embedder.dim, SparseEncoder(settings.sparse).name)


@pytest.fixture(scope="module")
def edge(
    tmp_path_factory: pytest.TempPathFactory, points: list[PointData], store_meta: StoreMeta
) -> Iterator[EdgeStore]:
    store = EdgeStore(tmp_path_factory.mktemp("edge"), "congruence", store_meta)
    store.upsert(points)
    store.optimize()
    yield store
    store.close()


def _server_params() -> list[object]:
    reason = "set QDRANT_URL (and QDRANT_API_KEY) to compare against a real Qdrant server"
    return [
        "memory",
        "memory-reversed",  # inserted in reverse order: tied hits then come in another order
        pytest.param(
            "server",
            marks=[
                pytest.mark.server,
                pytest.mark.skipif(not os.environ.get("QDRANT_URL"), reason=reason),
            ],
        ),
    ]


@pytest.fixture(scope="module", params=_server_params())
def client_store(
    request: pytest.FixtureRequest, points: list[PointData], store_meta: StoreMeta
) -> Iterator[ClientStore]:
    """qdrant-client :memory:, or a fresh collection on QDRANT_URL (deleted afterwards)."""
    if request.param.startswith("memory"):
        store = ClientStore(StoreSettings(url=":memory:"), "congruence", store_meta)
    else:
        settings = StoreSettings(
            url=os.environ["QDRANT_URL"],
            api_key=os.environ.get("QDRANT_API_KEY") or None,
            write_ordering="strong",
        )
        store = ClientStore(settings, f"litrag_congruence_{uuid.uuid4().hex[:12]}", store_meta)
    try:
        store.upsert(points[::-1] if request.param == "memory-reversed" else points)
        yield store
    finally:
        if request.param == "server":
            store.delete_collection()
        store.close()


def test_same_points(edge: EdgeStore, client_store: ClientStore, points: list[PointData]) -> None:
    assert edge.count() == client_store.count() == len(points)
    for f in FILTERS:
        assert edge.count(f) == client_store.count(f), f
    assert sum(edge.count(f) > 0 for f in FILTERS) == len(FILTERS)  # every filter selects some


def test_tied_scores_share_a_rank() -> None:
    # float32 vs float64 renderings of one BM25 score are one tie; a tie across the cut stays
    hits = [("c", 1.0), ("b", 2.0), ("a", 2.0 * (1 + 1e-7)), ("d", 0.5), ("e", 0.5)]
    assert tie_ranks(hits, depth=4) == {"a": 0, "b": 0, "c": 2, "d": 3, "e": 3}
    assert tie_ranks(hits, depth=3) == {"a": 0, "b": 0, "c": 2}
    fused = rrf_fuse([{"a": 0, "b": 0}, {"b": 0, "c": 1}], k=60, limit=3)
    assert fused == [("b", 2 / 60), ("a", 1 / 60), ("c", 1 / 61)]


def test_weighted_fusion_hand_computed() -> None:
    dense = [("a", 0.9), ("b", 0.7), ("c", 0.5)]  # normalised: a 1, b 0.5, c 0
    sparse = [("c", 12.0), ("d", 8.0), ("a", 4.0)]  # normalised: c 1, d 0.5, a 0
    fused = weighted_fuse([dense, sparse], [0.25, 0.75], depth=3, limit=10)
    assert fused == [("c", 0.75), ("d", 0.375), ("a", 0.25), ("b", 0.125)]
    # only the top `depth` of each list count, and ties order by id
    assert weighted_fuse([dense, sparse], [0.5, 0.5], depth=2, limit=2) == [("a", 0.5), ("c", 0.5)]
    assert fuse(dense, sparse, Fusion("weighted", dense_weight=1.0), 3, 2) == [
        ("a", 1.0),
        ("b", 0.5),
    ]
    assert fuse(dense, sparse, Fusion("rrf", rrf_k=1), 3, 1) == [("a", 1 / 1 + 1 / 3)]
    for bad in ({"method": "max"}, {"rrf_k": 0}, {"dense_weight": 1.5}):
        with pytest.raises(ValueError, match=r"fusion method|rrf_k|dense_weight"):
            Fusion(**bad)  # type: ignore[arg-type]


def _ranking(hits: list[ScoredChunk]) -> list[str]:
    return [h.chunk.chunk_id for h in hits]


def _describe(label: str, a: list[ScoredChunk], b: list[ScoredChunk]) -> str:
    rows = [f"{label}:"]
    for i in range(max(len(a), len(b))):
        ea = f"{a[i].chunk.chunk_id[:8]} {a[i].score:.6f}" if i < len(a) else "-"
        eb = f"{b[i].chunk.chunk_id[:8]} {b[i].score:.6f}" if i < len(b) else "-"
        rows.append(f"  {i + 1:2d}. edge {ea:<24} client {eb}{'' if ea[:8] == eb[:8] else '  <'}")
    return "\n".join(rows)


@pytest.mark.parametrize(("mode", "fusion"), MODES, ids=["dense", "sparse", "rrf", "weighted"])
def test_same_rankings(
    embedder: Embedder, edge: EdgeStore, client_store: ClientStore, mode: Mode, fusion: Fusion
) -> None:
    sparse = SparseEncoder(Settings().sparse)
    on_edge = Retriever(edge, embedder, sparse, fusion)
    on_client = Retriever(client_store, embedder, sparse, fusion)
    differences: list[str] = []
    compared = found = 0
    for i, query in enumerate(QUERIES):
        for flt in (None, FILTERS[i]):
            a = on_edge.search(query, top_k=10, mode=mode, search_filter=flt).chunks
            b = on_client.search(query, top_k=10, mode=mode, search_filter=flt).chunks
            compared += 1
            found += bool(a)
            label = (
                f"{mode} {query!r} filter={flt.model_dump(exclude_defaults=True) if flt else None}"
            )
            if _ranking(a) != _ranking(b):
                differences.append(_describe(label, a, b))
                continue
            for x, y in zip(a, b, strict=True):
                if abs(x.score - y.score) > SCORE_RTOL * max(abs(x.score), 1e-9):
                    differences.append(_describe(label + " (scores)", a, b))
                    break
    assert compared == 2 * len(QUERIES) and found >= compared - 2  # few filters exclude all
    assert not differences, "\n".join(differences)
