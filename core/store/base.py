"""The store interface shared by the Qdrant Edge and qdrant-client backends, and payload mapping.

This module is the only place that knows how a chunk is laid out as a Qdrant payload.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict

from core.config import Settings
from core.fusion import Fusion
from core.schemas import (
    LINKED_REFERENCE_TYPES,
    Chunk,
    DocumentMeta,
    ScoredChunk,
    SearchFilter,
    StoredChunk,
)
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
    # what a document states about others (see core.store.links): a paper's NCT numbers, a
    # trial's own publications (RESULT / DERIVED references) by PMID and DOI
    "link_nct": "keyword",
    "link_pmid": "keyword",
    "link_doi": "keyword",
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

    def find_any_docs(
        self, conditions: Sequence[Condition], limit: int = 1000
    ) -> list[DocumentMeta]:
        """Metadata of the documents (their chunk 0) matching *any* of ``conditions``."""
        ...

    def set_doc_meta(self, meta: DocumentMeta) -> None:
        """Rewrite the document-level payload of all of ``meta.doc_id``'s chunks (vectors and
        chunk texts untouched): a document whose links changed but whose content did not."""
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
    return {
        "chunk": chunk.model_dump(mode="json"),
        "doc_id": chunk.doc_id,
        "ordinal": chunk.ordinal,
        **doc_payload(doc),
    }


def doc_payload(doc: DocumentMeta) -> dict[str, Any]:
    """The document-level part of every chunk's payload (what :meth:`set_doc_meta` rewrites)."""
    trial = doc.trial
    ids = doc.identifiers
    linked = [m for m in doc.links if m.relation in LINKED_REFERENCE_TYPES]
    return {
        "doc": doc.model_dump(mode="json"),
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
        "link_nct": sorted({m.value for m in doc.links if m.kind == "nct"}),
        "link_pmid": sorted({m.value for m in linked if m.kind == "pmid"}),
        "link_doi": sorted({m.value for m in linked if m.kind == "doi"}),
        "content_hash": doc.content_hash,
    }


def from_payload(payload: dict[str, Any]) -> StoredChunk:
    """Inverse of :func:`to_payload`."""
    return StoredChunk(
        chunk=Chunk.model_validate(payload["chunk"]),
        doc=DocumentMeta.model_validate(payload["doc"]),
    )


def chunks_in_order(records: Iterable[Any], ids: Sequence[str]) -> list[StoredChunk]:
    """Retrieved records (Edge or qdrant-client) as chunks in the order of ``ids``."""
    by_id = {str(r.id): from_payload(r.payload) for r in records if r.payload}
    return [by_id[i] for i in ids if i in by_id]


def in_ordinal_order(records: Iterable[Any]) -> list[StoredChunk]:
    """Scrolled records of one document as chunks in ordinal order."""
    return sorted(
        (from_payload(r.payload) for r in records if r.payload), key=lambda s: s.chunk.ordinal
    )


def raw_in_order(records: Iterable[Any], ids: Sequence[str]) -> list[RawPoint]:
    """Retrieved records with vectors as raw points in the order of ``ids``."""
    by_id = {str(r.id): raw_point(r.id, r.payload, r.vector) for r in records}
    return [by_id[i] for i in ids if i in by_id]


def scroll_points(scroll: Callable[[Any], tuple[Iterable[Any], Any]]) -> Iterator[RawPoint]:
    """Every point of a scroll: ``scroll(offset)`` gives a page of records and the next offset."""
    offset: Any = None
    while True:
        records, offset = scroll(offset)
        for r in records:
            yield raw_point(r.id, r.payload, r.vector)
        if offset is None:
            return


def scored_chunks(hits: Iterable[Any]) -> list[ScoredChunk]:
    """Query hits with payloads (Edge or qdrant-client) as scored chunks."""
    return [
        ScoredChunk(**from_payload(h.payload).model_dump(), score=float(h.score))
        for h in hits
        if h.payload
    ]


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


def docs_of(records: Iterable[Any]) -> list[DocumentMeta]:
    """Scrolled chunk-0 records (payload ``doc`` only) as document metadata."""
    return [DocumentMeta.model_validate(r.payload["doc"]) for r in records if r.payload]


def doc_conditions(doc_id: str, from_ordinal: int = 0) -> list[Condition]:
    """The conditions selecting a document's chunks with ordinal >= ``from_ordinal``."""
    conds = [Condition("doc_id", (doc_id,))]
    if from_ordinal > 0:
        conds.append(Condition("ordinal", gte=from_ordinal))
    return conds


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
