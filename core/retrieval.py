"""Hybrid retrieval: dense + BM25 sparse hits fused (RRF or weighted scores) by the store, payload
filters and a per-document cap so one long paper cannot fill the top-k. Used by the service and by
eval."""

from __future__ import annotations

import time
from dataclasses import dataclass

from core.config import RetrievalSettings
from core.embedding import Embedder
from core.fusion import Fusion
from core.schemas import ScoredChunk, SearchFilter
from core.sparse import SparseEncoder
from core.store import VectorStore
from core.store.base import Mode

#: Most chunks one search asks the store for while filling ``top_k`` after the per-document cap.
MAX_FETCH = 2000


@dataclass(frozen=True, slots=True)
class RetrievalResult:
    """Ranked chunks and how long each stage took."""

    chunks: list[ScoredChunk]
    embed_ms: float
    search_ms: float


class Retriever:
    """Runs queries against one store with one embedder and sparse encoder."""

    def __init__(
        self,
        store: VectorStore,
        embedder: Embedder,
        sparse: SparseEncoder,
        fusion: Fusion | None = None,
    ) -> None:
        self.store = store
        self.embedder = embedder
        self.sparse = sparse
        self.fusion = fusion or Fusion()

    def search(
        self,
        query: str,
        *,
        top_k: int = 10,
        mode: Mode = "hybrid",
        search_filter: SearchFilter | None = None,
        per_doc_cap: int | None = 3,
        exclude_chunk_ids: frozenset[str] = frozenset(),
    ) -> RetrievalResult:
        """The ``top_k`` best chunks for ``query``; at most ``per_doc_cap`` from one document."""
        t0 = time.perf_counter()
        dense = self.embedder.embed([query])[0].tolist() if mode != "sparse" else None
        sparse = self.sparse.embed_query(query) if mode != "dense" else None
        t1 = time.perf_counter()
        # Over-fetch so that capping per document and exclusions still leave top_k results;
        # fetch more when they do not (a few long documents can fill many times top_k chunks).
        fetch = top_k if not per_doc_cap and not exclude_chunk_ids else top_k * 4
        fetch += len(exclude_chunk_ids)
        while True:
            hits = self.store.query(
                dense=dense,
                sparse=sparse,
                limit=fetch,
                search_filter=search_filter,
                fusion=self.fusion,
            )
            out = self._select(hits, top_k, per_doc_cap, exclude_chunk_ids)
            if len(out) >= top_k or len(hits) < fetch or fetch >= MAX_FETCH:
                break
            fetch = min(fetch * 4, MAX_FETCH)
        t2 = time.perf_counter()
        return RetrievalResult(out, (t1 - t0) * 1000, (t2 - t1) * 1000)

    @staticmethod
    def _select(
        hits: list[ScoredChunk],
        top_k: int,
        per_doc_cap: int | None,
        exclude_chunk_ids: frozenset[str],
    ) -> list[ScoredChunk]:
        # Fusion gives equal scores to many chunks; break ties by id so answers are reproducible.
        hits.sort(key=lambda h: (-h.score, h.chunk.chunk_id))
        out: list[ScoredChunk] = []
        per_doc: dict[str, int] = {}
        for hit in hits:
            if hit.chunk.chunk_id in exclude_chunk_ids:
                continue
            n = per_doc.get(hit.chunk.doc_id, 0)
            if per_doc_cap and n >= per_doc_cap:
                continue
            per_doc[hit.chunk.doc_id] = n + 1
            out.append(hit)
            if len(out) == top_k:
                break
        return out


def fusion_from(settings: RetrievalSettings) -> Fusion:
    """The store fusion the settings ask for."""
    return Fusion(settings.fusion, settings.rrf_k, settings.dense_weight)
