"""Sparse BM25 vectors from Qdrant's own ``Bm25`` (tokenise, stem, hash), one encoder for every
backend: the engine applies IDF (``modifier=idf``), so Edge and a Qdrant server rank alike."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from qdrant_edge import Bm25, Bm25Config

from core.config import SparseSettings


@dataclass(frozen=True, slots=True)
class SparseVec:
    """Indices (hashed terms) and weights of one sparse vector."""

    indices: list[int]
    values: list[float]


class SparseEncoder:
    """BM25 term weights for documents (TF part) and queries (unit weights)."""

    def __init__(self, settings: SparseSettings) -> None:
        self._settings = settings
        self._bm25 = Bm25(
            Bm25Config(k=settings.k1, b=settings.b, avg_len=settings.avg_len, language="english")
        )

    @property
    def name(self) -> str:
        """Identity recorded in the collection metadata."""
        s = self._settings
        return f"qdrant-bm25-en-k{s.k1}-b{s.b}-avg{s.avg_len}"

    def embed_documents(self, texts: Sequence[str]) -> list[SparseVec]:
        """Sparse vectors of passages."""
        out = []
        for text in texts:
            v = self._bm25.embed_document(text)
            out.append(SparseVec(list(v.indices), list(v.values)))
        return out

    def embed_query(self, text: str) -> SparseVec:
        """Sparse vector of a query."""
        v = self._bm25.embed_query(text)
        return SparseVec(list(v.indices), list(v.values))
