"""qdrant-client backend: a Qdrant server or cluster (URL + API key), or ``:memory:`` for tests.

The collection records its :class:`StoreMeta` in the collection metadata, so a collection built
with another model is refused exactly as with the Edge backend.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

from qdrant_client import QdrantClient, models
from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse

from core.errors import StoreError, StoreMismatchError
from core.schemas import ScoredChunk, SearchFilter, StoredChunk
from core.sparse import SparseVec
from core.store.base import (
    DENSE,
    INDEXED_FIELDS,
    SPARSE,
    Condition,
    PointData,
    RawPoint,
    StoreMeta,
    filter_conditions,
    from_payload,
    raw_point,
    to_payload,
)

T = TypeVar("T")
_META_KEY = "litrag"
_INDEX_TYPES = {
    "keyword": models.PayloadSchemaType.KEYWORD,
    "integer": models.PayloadSchemaType.INTEGER,
}


def _client_filter(conds: Sequence[Condition]) -> models.Filter | None:
    if not conds:
        return None
    must: list[models.Condition] = []
    for c in conds:
        if c.gte is not None or c.lte is not None:
            must.append(
                models.FieldCondition(key=c.field, range=models.Range(gte=c.gte, lte=c.lte))
            )
        else:
            values: Any = list(c.values)
            must.append(models.FieldCondition(key=c.field, match=models.MatchAny(any=values)))
    return models.Filter(must=must)


def _sparse(v: SparseVec) -> models.SparseVector:
    return models.SparseVector(indices=v.indices, values=v.values)


class ClientStore:
    """:class:`~core.store.base.VectorStore` through ``qdrant-client``."""

    def __init__(
        self,
        url: str,
        collection: str,
        meta: StoreMeta,
        *,
        api_key: str | None = None,
        timeout_s: float = 30.0,
        create: bool = True,
        recreate: bool = False,
        shard_number: int | None = None,
        replication_factor: int | None = None,
        hnsw_ef: int = 128,
        prefetch_limit: int = 100,
        client: QdrantClient | None = None,
    ) -> None:
        self.meta = meta
        self.collection = collection
        self.url = url
        self._hnsw_ef = hnsw_ef
        self._prefetch_limit = prefetch_limit
        if client is not None:
            self._client = client
        elif url == ":memory:":
            self._client = QdrantClient(location=":memory:")
            # Local mode ignores payload indexes and says so on every create; that is expected.
            warnings.filterwarnings("ignore", message="Payload indexes have no effect")
        else:
            self._client = QdrantClient(url=url, api_key=api_key, timeout=int(timeout_s))
        exists = self._call("collection_exists", self._client.collection_exists, collection)
        if exists and recreate:
            self._call("delete_collection", self._client.delete_collection, collection)
            exists = False
        if exists:
            self._check_meta()
        elif not create:
            raise StoreError(f"no collection {collection!r} at {url}: run `litrag ingest` first")
        else:
            self._create(shard_number, replication_factor)

    def _call(self, what: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        try:
            return fn(*args, **kwargs)
        except (
            UnexpectedResponse,
            ResponseHandlingException,
            ConnectionError,
            TimeoutError,
        ) as exc:
            raise StoreError(f"Qdrant {what} failed at {self.url}: {exc}") from exc
        except Exception as exc:
            # grpc/httpx transport errors and local-mode ValueErrors alike
            if type(exc).__module__.startswith(("httpx", "httpcore", "grpc")):
                raise StoreError(f"Qdrant {what} failed at {self.url}: {exc}") from exc
            raise

    def _check_meta(self) -> None:
        info = self._call("get_collection", self._client.get_collection, self.collection)
        raw = (info.config.metadata or {}).get(_META_KEY)
        if raw is None:
            raise StoreMismatchError(
                f"collection {self.collection!r} at {self.url} was not created by litrag "
                "(no litrag metadata); refusing to write into it"
            )
        stored = StoreMeta.model_validate(raw)
        diffs = self.meta.differences(stored)
        if diffs:
            raise StoreMismatchError(
                f"collection {self.collection!r} at {self.url} was built with other settings "
                f"({'; '.join(diffs)}). Vectors are never mixed: use another collection, or "
                "re-ingest with --recreate."
            )

    def _create(self, shard_number: int | None, replication_factor: int | None) -> None:
        self._call(
            "create_collection",
            self._client.create_collection,
            self.collection,
            vectors_config={
                DENSE: models.VectorParams(size=self.meta.dim, distance=models.Distance.COSINE)
            },
            sparse_vectors_config={SPARSE: models.SparseVectorParams(modifier=models.Modifier.IDF)},
            shard_number=shard_number,
            replication_factor=replication_factor,
            metadata={_META_KEY: self.meta.model_dump(mode="json")},
        )
        for name, kind in INDEXED_FIELDS.items():
            self._call(
                "create_payload_index",
                self._client.create_payload_index,
                self.collection,
                field_name=name,
                field_schema=_INDEX_TYPES[kind],
            )

    # -- writes -----------------------------------------------------------------------------
    def upsert(self, points: Sequence[PointData]) -> None:
        structs = [
            models.PointStruct(
                id=p.chunk.chunk_id,
                vector={DENSE: [float(x) for x in p.dense], SPARSE: _sparse(p.sparse)},
                payload=to_payload(p.chunk, p.doc),
            )
            for p in points
        ]
        self._write(structs)

    def upsert_raw(self, points: Sequence[RawPoint]) -> None:
        self._write(
            [
                models.PointStruct(
                    id=p.point_id,
                    vector={DENSE: p.dense, SPARSE: _sparse(p.sparse)},
                    payload=p.payload,
                )
                for p in points
            ]
        )

    def _write(self, structs: list[models.PointStruct]) -> None:
        if structs:
            self._call("upsert", self._client.upsert, self.collection, points=structs, wait=True)

    def delete_doc_chunks(self, doc_id: str, from_ordinal: int = 0) -> None:
        conds = [Condition("doc_id", (doc_id,))]
        if from_ordinal > 0:
            conds.append(Condition("ordinal", gte=from_ordinal))
        flt = _client_filter(conds)
        assert flt is not None
        self._call(
            "delete",
            self._client.delete,
            self.collection,
            points_selector=models.FilterSelector(filter=flt),
            wait=True,
        )

    # -- reads ------------------------------------------------------------------------------
    def retrieve(self, chunk_ids: Sequence[str]) -> list[StoredChunk]:
        if not chunk_ids:
            return []
        records = self._call(
            "retrieve",
            self._client.retrieve,
            self.collection,
            ids=list(chunk_ids),
            with_payload=True,
        )
        by_id = {str(r.id): from_payload(r.payload) for r in records if r.payload}
        return [by_id[c] for c in chunk_ids if c in by_id]

    def doc_chunks(self, doc_id: str, limit: int = 10_000) -> list[StoredChunk]:
        records, _ = self._call(
            "scroll",
            self._client.scroll,
            self.collection,
            scroll_filter=_client_filter([Condition("doc_id", (doc_id,))]),
            limit=limit,
            with_payload=True,
        )
        out = [from_payload(r.payload) for r in records if r.payload]
        return sorted(out, key=lambda s: s.chunk.ordinal)

    def find_docs(self, field: str, value: str) -> set[str]:
        records, _ = self._call(
            "scroll",
            self._client.scroll,
            self.collection,
            scroll_filter=_client_filter([Condition(field, (value,)), Condition("ordinal", (0,))]),
            limit=100,
            with_payload=["doc_id"],
        )
        return {str(r.payload["doc_id"]) for r in records if r.payload}

    def query(
        self,
        *,
        dense: Sequence[float] | None,
        sparse: SparseVec | None,
        limit: int,
        search_filter: SearchFilter | None = None,
        rrf_k: int = 60,
    ) -> list[ScoredChunk]:
        flt = _client_filter(filter_conditions(search_filter))
        params = models.SearchParams(hnsw_ef=max(self._hnsw_ef, limit))
        dense_v = [float(x) for x in dense] if dense is not None else None
        if dense_v is not None and sparse is not None:
            pre = max(self._prefetch_limit, limit)
            resp = self._call(
                "query",
                self._client.query_points,
                self.collection,
                prefetch=[
                    models.Prefetch(
                        query=dense_v, using=DENSE, limit=pre, filter=flt, params=params
                    ),
                    models.Prefetch(query=_sparse(sparse), using=SPARSE, limit=pre, filter=flt),
                ],
                query=models.RrfQuery(rrf=models.Rrf(k=rrf_k)),
                query_filter=flt,
                limit=limit,
                with_payload=True,
            )
        elif dense_v is not None:
            resp = self._call(
                "query",
                self._client.query_points,
                self.collection,
                query=dense_v,
                using=DENSE,
                query_filter=flt,
                search_params=params,
                limit=limit,
                with_payload=True,
            )
        elif sparse is not None:
            resp = self._call(
                "query",
                self._client.query_points,
                self.collection,
                query=_sparse(sparse),
                using=SPARSE,
                query_filter=flt,
                limit=limit,
                with_payload=True,
            )
        else:
            raise ValueError("query needs a dense or a sparse vector")
        return [
            ScoredChunk(**from_payload(p.payload).model_dump(), score=float(p.score))
            for p in resp.points
            if p.payload
        ]

    def count(self, search_filter: SearchFilter | None = None) -> int:
        res = self._call(
            "count",
            self._client.count,
            self.collection,
            count_filter=_client_filter(filter_conditions(search_filter)),
            exact=True,
        )
        return int(res.count)

    def iter_points(self, batch: int = 256) -> Iterator[RawPoint]:
        offset: Any = None
        while True:
            records, offset = self._call(
                "scroll",
                self._client.scroll,
                self.collection,
                offset=offset,
                limit=batch,
                with_payload=True,
                with_vectors=True,
            )
            for r in records:
                yield raw_point(r.id, r.payload, r.vector)
            if offset is None:
                return

    def optimize(self) -> None:
        # A server builds HNSW in the background; nothing to block on.
        return None

    def ping(self) -> None:
        self._call("get_collection", self._client.get_collection, self.collection)

    def close(self) -> None:
        self._client.close()
