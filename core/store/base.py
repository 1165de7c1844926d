"""The store interface shared by the Qdrant Edge and qdrant-client backends, and payload mapping.

This module is the only place that knows how a chunk is laid out as a Qdrant payload.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict

from core.config import Settings
from core.schemas import Chunk, DocumentMeta, ScoredChunk, SearchFilter, StoredChunk
from core.sparse import SparseVec

DENSE = "dense"
SPARSE = "bm25"
SCHEMA_VERSION = 1

Mode = Literal["dense", "sparse", "hybrid"]

#: Payload fields with an index, and their kind (keyword / integer / bool).
INDEXED_FIELDS: dict[str, str] = {
    "doc_id": "keyword",
    "ordinal": "integer",
    "source_type": "keyword",
    "year": "integer",
    "pmcid": "keyword",
    "pmid": "keyword",
    "doi": "keyword",
    "nct_id": "keyword",
    "overall_status": "keyword",
    "phases": "keyword",
    "study_type": "keyword",
    "conditions_lc": "keyword",
    "interventions_lc": "keyword",
    # A keyword, not a bool: Qdrant Edge 0.9's MatchValue(True) matches nothing on bool fields.
    "has_results": "keyword",
}
IDENTIFIER_FIELDS = ("pmcid", "pmid", "doi", "nct_id")


class StoreMeta(BaseModel):
    """What a collection was built with; opening it with anything else is refused."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    embedding_model: str
    dim: int
    chunking: dict[str, int]
    sparse: str
    schema_version: int = SCHEMA_VERSION

    def key(self) -> str:
        """Short hash of everything that makes vectors comparable."""
        blob = json.dumps(self.model_dump(mode="json"), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:10]

    def default_collection(self) -> str:
        """Collection name derived from the model and the settings: ``litrag_<model>_<hash>``."""
        slug = re.sub(r"[^a-z0-9]+", "-", self.embedding_model.lower()).strip("-")
        return f"litrag_{slug}_{self.key()}"

    def differences(self, other: StoreMeta) -> list[str]:
        """Human-readable differences to ``other`` (empty when compatible)."""
        mine, theirs = self.model_dump(), other.model_dump()
        return [f"{k}: {theirs[k]!r} != {mine[k]!r}" for k in mine if mine[k] != theirs[k]]


def meta_for(settings: Settings, embedding_model: str, dim: int, sparse: str) -> StoreMeta:
    """The metadata a collection built (or read) with ``settings`` carries."""
    c = settings.chunking
    return StoreMeta(
        embedding_model=embedding_model,
        dim=dim,
        chunking={
            "max_tokens": c.max_tokens,
            "overlap_tokens": c.overlap_tokens,
            "header_max_tokens": c.header_max_tokens,
            "min_tokens": c.min_tokens,
        },
        sparse=sparse,
    )


@dataclass(frozen=True, slots=True)
class PointData:
    """One point to write: a chunk, its document metadata and both vectors."""

    chunk: Chunk
    doc: DocumentMeta
    dense: Sequence[float]
    sparse: SparseVec


@dataclass(frozen=True, slots=True)
class RawPoint:
    """A point as stored, for copying between stores without re-embedding."""

    point_id: str
    payload: dict[str, Any]
    dense: list[float]
    sparse: SparseVec


def raw_point(point_id: object, payload: dict[str, Any] | None, vector: Any) -> RawPoint:
    """A scrolled record (Edge or qdrant-client: both expose named vectors alike) as a RawPoint."""
    sp = vector[SPARSE]
    return RawPoint(
        point_id=str(point_id),
        payload=dict(payload or {}),
        dense=list(vector[DENSE]),
        sparse=SparseVec(list(sp.indices), list(sp.values)),
    )


@dataclass(frozen=True, slots=True)
class Fusion:
    """How a hybrid query combines its dense and sparse hits.

    ``rrf``: reciprocal rank fusion ``sum 1 / (k + rank)`` (rank-based, no tuning needed).
    ``weighted``: each list's scores min-max normalised over its top ``depth`` hits, then
    ``dense_weight * dense + (1 - dense_weight) * sparse`` (a hit missing from a list scores 0
    there). Scores carry more information than ranks; the weight must be tuned on training data.
    """

    method: Literal["rrf", "weighted"] = "rrf"
    rrf_k: int = 60
    dense_weight: float = 0.5

    def __post_init__(self) -> None:
        if self.method not in ("rrf", "weighted"):
            raise ValueError(f"fusion method is 'rrf' or 'weighted', not {self.method!r}")
        if self.rrf_k < 1:
            raise ValueError(f"rrf_k must be at least 1, got {self.rrf_k}")
        if not 0.0 <= self.dense_weight <= 1.0:
            raise ValueError(f"dense_weight must be in [0, 1], got {self.dense_weight}")


class VectorStore(Protocol):
    """Operations litrag needs from a Qdrant collection, whatever the backend."""

    meta: StoreMeta
    collection: str

    def upsert(self, points: Sequence[PointData]) -> None:
        """Write points (overwriting equal ids) durably."""
        ...

    def delete_doc_chunks(self, doc_id: str, from_ordinal: int = 0) -> None:
        """Remove a document's chunks with ordinal >= ``from_ordinal``."""
        ...

    def retrieve(self, chunk_ids: Sequence[str]) -> list[StoredChunk]:
        """Chunks by id (missing ids are left out), in the order asked."""
        ...

    def retrieve_raw(self, point_ids: Sequence[str]) -> list[RawPoint]:
        """Points by id with payload and vectors, as stored (missing ids are left out)."""
        ...

    def doc_chunks(self, doc_id: str, limit: int = 10_000) -> list[StoredChunk]:
        """All chunks of one document in ordinal order."""
        ...

    def find_docs(self, field: str, value: str) -> set[str]:
        """Document ids whose identifier ``field`` (pmcid, pmid, doi, nct_id) equals ``value``."""
        ...

    def query(
        self,
        *,
        dense: Sequence[float] | None,
        sparse: SparseVec | None,
        limit: int,
        search_filter: SearchFilter | None = None,
        fusion: Fusion = Fusion(),
    ) -> list[ScoredChunk]:
        """Nearest chunks by dense, sparse, or both fused as ``fusion`` says."""
        ...

    def count(self, search_filter: SearchFilter | None = None) -> int:
        """Number of points (matching the filter)."""
        ...

    def iter_points(self, batch: int = 256) -> Iterator[RawPoint]:
        """Every point with payload and vectors, for migration."""
        ...

    def upsert_raw(self, points: Sequence[RawPoint]) -> None:
        """Write points copied from another store."""
        ...

    def optimize(self) -> None:
        """Build indexes (HNSW) after a bulk load."""
        ...

    def ping(self) -> None:
        """Raise StoreError when the store cannot answer."""
        ...

    def close(self) -> None:
        """Flush and release the store."""
        ...


def to_payload(chunk: Chunk, doc: DocumentMeta) -> dict[str, Any]:
    """Flat filter fields + the chunk + the document metadata, as JSON-able values."""
    trial = doc.trial
    ids = doc.identifiers
    return {
        "chunk": chunk.model_dump(mode="json"),
        "doc": doc.model_dump(mode="json"),
        "doc_id": chunk.doc_id,
        "ordinal": chunk.ordinal,
        "source_type": doc.source_type.value,
        "year": doc.year,
        "pmcid": ids.pmcid,
        "pmid": ids.pmid,
        "doi": ids.doi,
        "nct_id": ids.nct_id,
        "overall_status": trial.overall_status if trial else None,
        "phases": trial.phases if trial else [],
        "study_type": trial.study_type if trial else None,
        "conditions_lc": [c.lower() for c in trial.conditions] if trial else [],
        "interventions_lc": [i.lower() for i in trial.interventions] if trial else [],
        "has_results": ("true" if trial.has_results else "false") if trial else None,
        "content_hash": doc.content_hash,
    }


def from_payload(payload: dict[str, Any]) -> StoredChunk:
    """Inverse of :func:`to_payload`."""
    return StoredChunk(
        chunk=Chunk.model_validate(payload["chunk"]),
        doc=DocumentMeta.model_validate(payload["doc"]),
    )


#: Scores this close (relative) are one tie when ranking for fusion: Edge and a server score in
#: float32, qdrant-client's local mode partly in float64, so equal scores differ in the last bits.
TIE_RTOL = 1e-5


def fusion_fetch(depth: int) -> int:
    """Hits to ask each fused sub-query for, so that a tie group across ``depth`` is seen whole."""
    return depth + max(8, depth // 4)


def tie_ranks(hits: Sequence[tuple[str, float]], depth: int) -> dict[str, int]:
    """0-based ranks of the best ``depth`` hits ``(point id, score)``; equal scores share a rank.

    Qdrant's own RRF ranks tied hits by internal offsets, which differ between Edge, a server and
    qdrant-client's local mode (and with insertion order): BM25 scores tie often (same term
    counts, same length), so the fused ranking would too. Here tied hits get the rank of the
    first of them, and a tie group crossing ``depth`` is kept whole.
    """
    ordered = sorted(hits, key=lambda h: (-h[1], h[0]))
    ranks: dict[str, int] = {}
    rank, prev = 0, 0.0
    for pos, (pid, score) in enumerate(ordered):
        if pos == 0 or abs(prev - score) > TIE_RTOL * max(abs(prev), abs(score)):
            if pos >= depth:
                break
            rank = pos
        ranks[pid] = rank
        prev = score
    return ranks


def rrf_fuse(rankings: Sequence[dict[str, int]], k: int, limit: int) -> list[tuple[str, float]]:
    """Reciprocal rank fusion, ``sum 1 / (k + rank)`` as in Qdrant; best first, ties by id."""
    fused: dict[str, float] = {}
    for ranks in rankings:
        for pid, rank in ranks.items():
            fused[pid] = fused.get(pid, 0.0) + 1.0 / (k + rank)
    return sorted(fused.items(), key=lambda x: (-x[1], x[0]))[:limit]


#: Weighted fusion rounds fused scores to this many decimals before ordering, so scores that differ
#: only in float noise between backends tie and fall back to the point id (as tie_ranks does).
_WEIGHTED_DECIMALS = 6


def weighted_fuse(
    results: Sequence[Sequence[tuple[str, float]]],
    weights: Sequence[float],
    depth: int,
    limit: int,
) -> list[tuple[str, float]]:
    """Min-max normalised, weighted sum of several hit lists; best first, ties by id."""
    fused: dict[str, float] = {}
    for hits, weight in zip(results, weights, strict=True):
        top = sorted(hits, key=lambda h: (-h[1], h[0]))[:depth]
        if not top:
            continue
        hi, lo = top[0][1], top[-1][1]
        span = hi - lo
        for pid, score in top:
            norm = (score - lo) / span if span > 0 else 1.0
            fused[pid] = fused.get(pid, 0.0) + weight * norm
    rounded = {pid: round(v, _WEIGHTED_DECIMALS) for pid, v in fused.items()}
    return sorted(rounded.items(), key=lambda x: (-x[1], x[0]))[:limit]


def fuse(
    dense: Sequence[tuple[str, float]],
    sparse: Sequence[tuple[str, float]],
    fusion: Fusion,
    depth: int,
    limit: int,
) -> list[tuple[str, float]]:
    """Dense and sparse ``(point id, score)`` hits fused as ``fusion`` says."""
    if fusion.method == "rrf":
        return rrf_fuse([tie_ranks(dense, depth), tie_ranks(sparse, depth)], fusion.rrf_k, limit)
    w = fusion.dense_weight
    return weighted_fuse([dense, sparse], [w, 1.0 - w], depth, limit)


def with_payloads(
    fused: Sequence[tuple[str, float]],
    retrieve: Callable[[Sequence[str]], list[StoredChunk]],
) -> list[ScoredChunk]:
    """Fused ``(point id, score)`` hits as scored chunks, payloads fetched in one ``retrieve``."""
    by_id = {c.chunk.chunk_id: c for c in retrieve([pid for pid, _ in fused])}
    return [
        ScoredChunk(**by_id[pid].model_dump(), score=score) for pid, score in fused if pid in by_id
    ]


@dataclass(frozen=True, slots=True)
class Condition:
    """Backend-neutral filter condition: ``field`` matches any of ``values`` or lies in a range."""

    field: str
    values: tuple[str | int, ...] = ()
    gte: int | None = None
    lte: int | None = None


def filter_conditions(f: SearchFilter | None) -> list[Condition]:
    """The conditions (all must hold) that ``f`` stands for."""
    if f is None:
        return []
    out: list[Condition] = []
    if f.source_types:
        out.append(Condition("source_type", tuple(s.value for s in f.source_types)))
    if f.year_from is not None or f.year_to is not None:
        out.append(Condition("year", gte=f.year_from, lte=f.year_to))
    if f.phases:
        out.append(Condition("phases", tuple(p.upper() for p in f.phases)))
    if f.statuses:
        out.append(Condition("overall_status", tuple(s.upper() for s in f.statuses)))
    if f.conditions:
        out.append(Condition("conditions_lc", tuple(c.lower() for c in f.conditions)))
    if f.interventions:
        out.append(Condition("interventions_lc", tuple(i.lower() for i in f.interventions)))
    if f.has_results is not None:
        out.append(Condition("has_results", ("true" if f.has_results else "false",)))
    if f.doc_ids:
        out.append(Condition("doc_id", tuple(f.doc_ids)))
    return out
