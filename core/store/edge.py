"""Qdrant Edge backend: Qdrant's Rust engine in-process (``qdrant-edge-py``), one shard per folder.

Layout of ``<store.path>/<collection>/``: ``shard/`` (segments + WAL), ``litrag.json`` (the
:class:`StoreMeta` it was built with) and ``lock`` (held with ``flock`` by the process that has it
open, holding that process's pid and command line for a clear error in a second process).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any

from qdrant_edge import CountRequest as EdgeCountRequest
from qdrant_edge import (
    Distance,
    EdgeConfig,
    EdgeShard,
    EdgeSparseVectorParams,
    EdgeVectorParams,
    FieldCondition,
    Filter,
    HnswIndexConfig,
    MatchAny,
    Memory,
    Modifier,
    PayloadSchemaType,
    Point,
    QuantizationSearchParams,
    Query,
    QueryRequest,
    RangeFloat,
    ScalarQuantizationConfig,
    ScalarType,
    ScrollRequest,
    SearchParams,
    SparseVector,
    UpdateOperation,
)

from core.config import StoreSettings
from core.errors import StoreError, StoreLockedError, StoreMismatchError
from core.fusion import Fusion, fuse, fusion_fetch
from core.schemas import DocumentMeta, ScoredChunk, SearchFilter, StoredChunk
from core.sparse import SparseVec
from core.store.base import (
    DENSE,
    INDEXED_FIELDS,
    SPARSE,
    Condition,
    PointData,
    RawPoint,
    StoreMeta,
    chunks_in_order,
    doc_conditions,
    doc_payload,
    docs_of,
    filter_conditions,
    in_ordinal_order,
    raw_in_order,
    scored_chunks,
    scroll_points,
    to_payload,
    with_payloads,
)

_INDEX_TYPES = {
    "keyword": PayloadSchemaType.Keyword,
    "integer": PayloadSchemaType.Integer,
}
META_FILE = "litrag.json"
#: Query parameters of a store opened without settings (``litrag store info``, migration).
_DEFAULT_SETTINGS = StoreSettings()
#: HNSW is skipped (full scan) below this many KB of vectors in a segment; Qdrant's default.
FULL_SCAN_THRESHOLD_KB = 10_000


def edge_config(dim: int, settings: StoreSettings) -> EdgeConfig:
    """The shard configuration of a new collection: vectors, indexes and where each part lives.

    The same :class:`StoreSettings` fields mean the same on a Qdrant server (see
    ``core.store.client``): ``*_on_disk`` = memory-mapped and read on demand (``Memory.Cold``),
    else the engine's default placement (in RAM); ``quantization='int8'`` = scalar int8 with
    ``always_ram``. An existing shard keeps the configuration it was created with.
    """
    cold = Memory.Cold
    quantization = (
        ScalarQuantizationConfig(
            type=ScalarType.Int8,
            quantile=settings.quantization_quantile,
            always_ram=settings.quantization_always_ram,
        )
        if settings.quantization == "int8"
        else None
    )
    return EdgeConfig(
        vectors={
            DENSE: EdgeVectorParams(
                size=dim,
                distance=Distance.Cosine,
                memory=cold if settings.vectors_on_disk else None,
            )
        },
        sparse_vectors={
            SPARSE: EdgeSparseVectorParams(
                modifier=Modifier.Idf, memory=cold if settings.sparse_on_disk else None
            )
        },
        hnsw_config=HnswIndexConfig(
            m=settings.hnsw_m,
            ef_construct=settings.hnsw_ef_construct,
            full_scan_threshold=FULL_SCAN_THRESHOLD_KB,
            memory=cold if settings.hnsw_on_disk else None,
        ),
        quantization_config=quantization,
        payload_memory=cold if settings.payload_on_disk else Memory.Cached,
    )


def dense_search_params(settings: StoreSettings, limit: int) -> SearchParams:
    """Dense query parameters: ``hnsw_ef`` and, on a quantized shard, rescoring/oversampling."""
    return SearchParams(
        hnsw_ef=max(settings.hnsw_ef, limit),
        quantization=QuantizationSearchParams(
            rescore=settings.quantization_rescore,
            oversampling=settings.quantization_oversampling,
        ),
    )


def _edge_condition(c: Condition) -> FieldCondition:
    if c.gte is not None or c.lte is not None:
        return FieldCondition(key=c.field, range=RangeFloat(gte=c.gte, lte=c.lte))
    values: list[Any] = list(c.values)
    return FieldCondition(key=c.field, match=MatchAny(any=values))


def _edge_filter(conds: Sequence[Condition], any_of: Sequence[Condition] = ()) -> Filter | None:
    """All of ``conds`` and (when given) at least one of ``any_of``."""
    if not conds and not any_of:
        return None
    must: list[Any] = [_edge_condition(c) for c in conds]
    should: list[Any] | None = [_edge_condition(c) for c in any_of] or None
    return Filter(must=must or None, should=should)


def _sparse(v: SparseVec) -> SparseVector:
    return SparseVector(indices=v.indices, values=v.values)


class _Lock:
    """An exclusive ``flock`` on a file that records who holds it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fh: IO[str] | None = None

    def acquire(self) -> None:
        fh = open(self.path, "a+")  # noqa: SIM115 - held open for the life of the store
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            holder = fh.read().strip() or "unknown process"
            fh.close()
            raise StoreLockedError(
                f"the embedded store {self.path.parent} is open in another process ({holder}). "
                "Qdrant Edge is single-process: when it is `litrag serve`, send files to it with "
                "`litrag ingest --server URL PATH...` (it ingests while serving); otherwise stop "
                "that process before running this command, or use a Qdrant server "
                "(LITRAG_STORE__BACKEND=qdrant)."
            ) from None
        fh.seek(0)
        fh.truncate()
        fh.write(f"pid {os.getpid()}: {' '.join(sys.argv)[:300]}")
        fh.flush()
        self._fh = fh

    def release(self) -> None:
        if self._fh is not None:
            with contextlib.suppress(OSError):
                self._fh.truncate(0)
                fcntl.flock(self._fh.fileno(), fcntl.LOCK_UN)
            self._fh.close()
            self._fh = None


def check_unlocked(collection_dir: Path) -> None:
    """Raise :class:`StoreLockedError` now when another process holds the collection's lock.

    For commands that would find out only after slow setup (loading a model): the lock is taken
    and dropped at once, so only opening the store holds it.
    """
    if (collection_dir / "lock").is_file():
        probe = _Lock(collection_dir / "lock")
        probe.acquire()
        probe.release()


class EdgeStore:
    """:class:`~core.store.base.VectorStore` on an embedded Qdrant Edge shard.

    The collection lives in ``root / collection``; ``settings`` gives the query parameters
    (``hnsw_ef``, ``prefetch_limit``, quantization rescoring) and the layout of a new collection
    (:func:`edge_config`). ``root`` is separate from ``settings.path`` because
    ``litrag store`` opens collections found anywhere on disk.
    """

    def __init__(
        self,
        root: Path,
        collection: str,
        meta: StoreMeta,
        settings: StoreSettings = _DEFAULT_SETTINGS,
        *,
        create: bool = True,
        recreate: bool = False,
    ) -> None:
        self.meta = meta
        self.collection = collection
        self.dir = root / collection
        self._settings = settings
        exists = (self.dir / META_FILE).is_file()
        if not exists and not create:
            raise StoreError(
                f"no collection {collection!r} in {root}: run `litrag ingest` first "
                "(or set LITRAG_STORE__COLLECTION / LITRAG_STORE__PATH)"
            )
        self.dir.mkdir(parents=True, exist_ok=True)
        self._lock = _Lock(self.dir / "lock")
        self._lock.acquire()
        try:
            if recreate and exists:
                shutil.rmtree(self.dir / "shard", ignore_errors=True)
                (self.dir / META_FILE).unlink()
                exists = False
            if exists:
                self._check_meta()
                self._shard = EdgeShard.load(str(self.dir / "shard"))
                self._add_missing_indexes()
            else:
                self._shard = self._create()
        except Exception:
            self._lock.release()
            raise

    def _check_meta(self) -> None:
        try:
            stored = StoreMeta.model_validate_json((self.dir / META_FILE).read_text())
        except ValueError as exc:
            raise StoreError(f"unreadable store metadata {self.dir / META_FILE}: {exc}") from exc
        diffs = self.meta.differences(stored)
        if diffs:
            raise StoreMismatchError(
                f"collection {self.collection!r} at {self.dir} was built with other settings "
                f"({'; '.join(diffs)}). Vectors are never mixed: use another collection, or "
                "re-ingest with --recreate."
            )

    def _create(self) -> EdgeShard:
        shard_dir = self.dir / "shard"
        shard_dir.mkdir(parents=True, exist_ok=True)
        shard = EdgeShard.create(str(shard_dir), edge_config(self.meta.dim, self._settings))
        for name, kind in INDEXED_FIELDS.items():
            shard.update(UpdateOperation.create_field_index(name, _INDEX_TYPES[kind]))
        # Metadata last: a folder without it is an unfinished create and is rebuilt.
        tmp = self.dir / (META_FILE + ".tmp")
        tmp.write_text(json.dumps(self.meta.model_dump(mode="json"), indent=2))
        tmp.replace(self.dir / META_FILE)
        return shard

    def _add_missing_indexes(self) -> None:
        """Index the payload fields a store made by an older litrag lacks (the link fields)."""
        have = set(self._shard.info().payload_schema)
        for name, kind in INDEXED_FIELDS.items():
            if name not in have:
                self._shard.update(UpdateOperation.create_field_index(name, _INDEX_TYPES[kind]))

    def _call(self, what: str, fn: Any, *args: Any) -> Any:
        try:
            return fn(*args)
        except Exception as exc:  # the engine raises plain exceptions; name the operation
            raise StoreError(f"Qdrant Edge {what} failed on {self.dir}: {exc}") from exc

    # -- writes -----------------------------------------------------------------------------
    def upsert(self, points: Sequence[PointData]) -> None:
        edge_points = [
            Point(
                p.chunk.chunk_id,
                {DENSE: [float(x) for x in p.dense], SPARSE: _sparse(p.sparse)},
                to_payload(p.chunk, p.doc),
            )
            for p in points
        ]
        self._write(edge_points)

    def upsert_raw(self, points: Sequence[RawPoint]) -> None:
        self._write(
            [
                Point(p.point_id, {DENSE: p.dense, SPARSE: _sparse(p.sparse)}, p.payload)
                for p in points
            ]
        )

    def _write(self, edge_points: list[Point]) -> None:
        if edge_points:
            self._call("upsert", self._shard.update, UpdateOperation.upsert_points(edge_points))
            self._call("flush", self._shard.flush)

    def set_doc_meta(self, meta: DocumentMeta) -> None:
        flt = _edge_filter(doc_conditions(meta.doc_id))
        assert flt is not None
        op = UpdateOperation.set_payload_by_filter(flt, doc_payload(meta))
        self._call("set_payload", self._shard.update, op)
        self._call("flush", self._shard.flush)

    def delete_doc_chunks(self, doc_id: str, from_ordinal: int = 0) -> None:
        flt = _edge_filter(doc_conditions(doc_id, from_ordinal))
        assert flt is not None
        self._call("delete", self._shard.update, UpdateOperation.delete_points_by_filter(flt))
        self._call("flush", self._shard.flush)

    # -- reads ------------------------------------------------------------------------------
    def _records(self, ids: Sequence[str], *, with_vectors: bool) -> list[Any]:
        if not ids:
            return []
        return list(self._call("retrieve", self._shard.retrieve, list(ids), True, with_vectors))

    def retrieve(self, chunk_ids: Sequence[str]) -> list[StoredChunk]:
        return chunks_in_order(self._records(chunk_ids, with_vectors=False), chunk_ids)

    def retrieve_raw(self, point_ids: Sequence[str]) -> list[RawPoint]:
        return raw_in_order(self._records(point_ids, with_vectors=True), point_ids)

    def doc_chunks(self, doc_id: str, limit: int = 10_000) -> list[StoredChunk]:
        flt = _edge_filter(doc_conditions(doc_id))
        records, _ = self._call(
            "scroll", self._shard.scroll, ScrollRequest(limit=limit, filter=flt, with_payload=True)
        )
        return in_ordinal_order(records)

    def find_docs(self, field: str, value: str) -> set[str]:
        flt = _edge_filter([Condition(field, (value,)), Condition("ordinal", (0,))])
        records, _ = self._call(
            "scroll",
            self._shard.scroll,
            ScrollRequest(limit=100, filter=flt, with_payload=["doc_id"]),
        )
        return {str(r.payload["doc_id"]) for r in records if r.payload}

    def find_any_docs(
        self, conditions: Sequence[Condition], limit: int = 1000
    ) -> list[DocumentMeta]:
        wanted = [c for c in conditions if c.values]
        if not wanted:
            return []
        flt = _edge_filter([Condition("ordinal", (0,))], wanted)
        records, _ = self._call(
            "scroll",
            self._shard.scroll,
            ScrollRequest(limit=limit, filter=flt, with_payload=["doc"]),
        )
        return docs_of(records)

    def query(
        self,
        *,
        dense: Sequence[float] | None,
        sparse: SparseVec | None,
        limit: int,
        search_filter: SearchFilter | None = None,
        fusion: Fusion = Fusion(),
    ) -> list[ScoredChunk]:
        flt = _edge_filter(filter_conditions(search_filter))
        params = dense_search_params(self._settings, limit)
        dense_q = (
            Query.Nearest([float(x) for x in dense], using=DENSE) if dense is not None else None
        )
        sparse_q = Query.Nearest(_sparse(sparse), using=SPARSE) if sparse is not None else None
        if dense_q is not None and sparse_q is not None:
            # Fused here, not by Fusion.Rrf: tied scores must share a rank (see tie_ranks).
            depth = max(self._settings.prefetch_limit, limit)
            results = []
            for sub_q, sub_params in ((dense_q, params), (sparse_q, None)):
                sub = QueryRequest(
                    limit=fusion_fetch(depth),
                    query=sub_q,
                    filter=flt,
                    params=sub_params,
                    with_payload=False,
                )
                hits = self._call("query", self._shard.query, sub)
                results.append([(str(h.id), float(h.score)) for h in hits])
            dense_hits, sparse_hits = results
            return with_payloads(fuse(dense_hits, sparse_hits, fusion, depth, limit), self.retrieve)
        elif dense_q is not None or sparse_q is not None:
            req = QueryRequest(
                limit=limit, query=dense_q or sparse_q, filter=flt, params=params, with_payload=True
            )
        else:
            raise ValueError("query needs a dense or a sparse vector")
        return scored_chunks(self._call("query", self._shard.query, req))

    def count(self, search_filter: SearchFilter | None = None) -> int:
        flt = _edge_filter(filter_conditions(search_filter))
        return int(self._call("count", self._shard.count, EdgeCountRequest(filter=flt, exact=True)))

    def iter_points(self, batch: int = 256) -> Iterator[RawPoint]:
        def page(offset: Any) -> Any:
            request = ScrollRequest(offset=offset, limit=batch, with_payload=True, with_vector=True)
            return self._call("scroll", self._shard.scroll, request)

        return scroll_points(page)

    def shard_config(self) -> dict[str, Any]:
        """The configuration the shard was created with, as the engine persisted it."""
        data: dict[str, Any] = json.loads((self.dir / "shard" / "edge_config.json").read_text())
        return data

    def optimize(self) -> None:
        self._call("optimize", self._shard.optimize)
        self._call("flush", self._shard.flush)

    def ping(self) -> None:
        self._call("info", self._shard.info)

    def close(self) -> None:
        shard: EdgeShard | None = self.__dict__.get("_shard")  # not __getattr__: it raises
        if shard is not None:
            with contextlib.suppress(Exception):
                shard.flush()
            shard.close()
            del self._shard
        self._lock.release()

    def __getattr__(self, name: str) -> Any:
        # Only reached when an attribute is missing: after close() that is the shard.
        if name == "_shard":
            raise StoreError(f"the store at {self.dir} is closed")
        raise AttributeError(name)
