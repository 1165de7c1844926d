"""qdrant-client backend: a Qdrant server or cluster (URL + API key), or ``:memory:`` for tests.

The collection records its :class:`StoreMeta` in the collection metadata, so a collection built
with another model is refused exactly as with the Edge backend.

Talking to a server: every request goes through :meth:`Connection.call`, which retries transient
failures (connection errors, timeouts, 429 and 5xx) with exponential backoff and turns every
failure into a :class:`StoreError` that names the URL and says what went wrong. Upserts are split
into requests of ``upsert_batch`` points (optionally ``parallel`` at once); a batch is only stored
when all of its requests succeeded, and each document's chunk 0 (the marker re-ingestion checks)
is written after all of its other chunks.
"""

from __future__ import annotations

import json
import logging
import math
import re
import ssl
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import httpx
from qdrant_client import QdrantClient, models
from qdrant_client.common.client_exceptions import ResourceExhaustedResponse
from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse

from core.config import StoreSettings
from core.errors import ConfigError, StoreError, StoreMismatchError
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

T = TypeVar("T")
log = logging.getLogger("litrag.store")
META_KEY = "litrag"
MEMORY = ":memory:"
_INDEX_TYPES = {
    "keyword": models.PayloadSchemaType.KEYWORD,
    "integer": models.PayloadSchemaType.INTEGER,
}
#: HTTP answers worth another try: rate limiting and server-side/gateway failures.
_TRANSIENT_STATUS = frozenset({429, 500, 502, 503, 504})
_BACKOFF_S = 0.25
_BACKOFF_MAX_S = 4.0


def _client_condition(c: Condition) -> models.FieldCondition:
    if c.gte is not None or c.lte is not None:
        return models.FieldCondition(key=c.field, range=models.Range(gte=c.gte, lte=c.lte))
    values: Any = list(c.values)
    return models.FieldCondition(key=c.field, match=models.MatchAny(any=values))


def _client_filter(
    conds: Sequence[Condition], any_of: Sequence[Condition] = ()
) -> models.Filter | None:
    """All of ``conds`` and (when given) at least one of ``any_of``."""
    if not conds and not any_of:
        return None
    must: list[models.Condition] = [_client_condition(c) for c in conds]
    should: list[models.Condition] = [_client_condition(c) for c in any_of]
    return models.Filter(must=must or None, should=should or None)


def _sparse(v: SparseVec) -> models.SparseVector:
    return models.SparseVector(indices=v.indices, values=v.values)


def collection_layout(settings: StoreSettings) -> dict[str, Any]:
    """``create_collection`` arguments for the vector/index layout of a new collection.

    The same :class:`StoreSettings` fields as the Edge backend (``core.store.edge.edge_config``)
    and the same meaning: ``*_on_disk`` = memory-mapped, read on demand; ``int8`` = scalar
    quantization (``always_ram`` as set) searched first and rescored with the originals.
    """
    quantization = (
        models.ScalarQuantization(
            scalar=models.ScalarQuantizationConfig(
                type=models.ScalarType.INT8,
                quantile=settings.quantization_quantile,
                always_ram=settings.quantization_always_ram,
            )
        )
        if settings.quantization == "int8"
        else None
    )
    return {
        "hnsw_config": models.HnswConfigDiff(
            m=settings.hnsw_m,
            ef_construct=settings.hnsw_ef_construct,
            on_disk=settings.hnsw_on_disk,
        ),
        "quantization_config": quantization,
        "on_disk_payload": settings.payload_on_disk,
    }


def dense_search_params(settings: StoreSettings, limit: int) -> models.SearchParams:
    """Dense query parameters: ``hnsw_ef`` and, on a quantized collection, rescoring."""
    return models.SearchParams(
        hnsw_ef=max(settings.hnsw_ef, limit),
        quantization=models.QuantizationSearchParams(
            rescore=settings.quantization_rescore,
            oversampling=settings.quantization_oversampling,
        ),
    )


# -- failures ---------------------------------------------------------------------------------
def _short_body(content: bytes, fallback: str) -> str:
    """Qdrant's ``status.error`` when the body is its JSON error, else the first 200 characters."""
    text = content.decode("utf-8", "replace")
    try:
        data = json.loads(text)
        if isinstance(data, dict) and isinstance(data.get("status"), dict):
            err = data["status"].get("error")
            if err:
                text = str(err)
    except ValueError:
        pass
    text = re.sub(r"\s+", " ", text).strip()
    if not text:
        return fallback or "(empty body)"
    return text if len(text) <= 200 else text[:197] + "..."


def _tls_failure(exc: BaseException) -> str | None:
    """'certificate' or 'handshake' when ``exc`` (or what caused it) is a TLS failure."""
    seen: BaseException | None = exc
    for _ in range(8):
        if seen is None:
            return None
        if "CERTIFICATE_VERIFY_FAILED" in str(seen):
            return "certificate"
        if isinstance(seen, ssl.SSLError):
            return "handshake"
        seen = seen.__cause__ or seen.__context__
    return None


def describe_failure(
    exc: BaseException, url: str, timeout_s: float, has_api_key: bool
) -> tuple[str, bool] | None:
    """``(message, transient)`` for a failure talking to Qdrant; None for anything else."""
    if isinstance(exc, ResponseHandlingException):
        source = exc.source
        if isinstance(source, Exception) and not isinstance(source, ResponseHandlingException):
            inner = describe_failure(source, url, timeout_s, has_api_key)
            if inner is not None:
                return inner
        return f"Qdrant at {url} sent an answer litrag cannot read: {source}", False
    if isinstance(exc, httpx.TimeoutException | TimeoutError):
        return f"Qdrant at {url} timed out after {timeout_s:g} s", True
    tls = _tls_failure(exc)
    if tls == "certificate":
        return (
            f"the TLS certificate of Qdrant at {url} was not accepted ({exc}); set "
            "LITRAG_STORE__TLS_VERIFY to the CA bundle that signed it (or false to skip the check)",
            False,
        )
    if tls == "handshake":
        return f"the TLS handshake with Qdrant at {url} failed (does it speak https?): {exc}", False
    if isinstance(exc, httpx.ConnectError | ConnectionRefusedError):
        return f"cannot connect to Qdrant at {url} (is it running?): {exc}", True
    if isinstance(exc, httpx.TransportError | ConnectionError):
        return f"the connection to Qdrant at {url} failed: {exc or type(exc).__name__}", True
    if isinstance(exc, UnexpectedResponse):
        status = exc.status_code
        if status in (401, 403):
            if not has_api_key:
                return (
                    f"Qdrant at {url} requires an API key (HTTP {status}): authentication "
                    "failed, set LITRAG_STORE__API_KEY",
                    False,
                )
            return (
                f"Qdrant at {url} refused the API key (HTTP {status}): authentication failed, "
                "check the API key (LITRAG_STORE__API_KEY)",
                False,
            )
        body = _short_body(exc.content, exc.reason_phrase)
        return f"Qdrant at {url} answered HTTP {status}: {body}", status in _TRANSIENT_STATUS
    if isinstance(exc, ResourceExhaustedResponse):
        return f"Qdrant at {url} is rate limiting requests (HTTP 429): {exc}", True
    if type(exc).__module__.startswith(("httpx", "httpcore", "grpc")):
        return f"Qdrant at {url} failed: {exc}", False
    return None


def _retry_delay(exc: BaseException, attempt: int) -> float:
    delay = min(_BACKOFF_S * 2**attempt, _BACKOFF_MAX_S)
    if isinstance(exc, ResourceExhaustedResponse):
        delay = max(delay, min(float(exc.retry_after_s), _BACKOFF_MAX_S))
    return float(delay)


# -- connection -------------------------------------------------------------------------------
def _verify_arg(tls_verify: bool | str | Path) -> bool | ssl.SSLContext:
    if isinstance(tls_verify, bool):
        return tls_verify
    try:
        return ssl.create_default_context(cafile=str(tls_verify))
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(
            f"store.tls_verify: cannot read the CA bundle {tls_verify}: {exc}"
        ) from exc


class Connection:
    """A ``QdrantClient`` for ``settings.url`` (timeouts, retries, TLS from ``settings``), with
    retries and clear errors; ``client`` reuses an open client instead (tests)."""

    def __init__(self, settings: StoreSettings, *, client: QdrantClient | None = None) -> None:
        if not settings.url:
            raise ConfigError(
                "store.backend=qdrant needs LITRAG_STORE__URL (a server URL or :memory:)"
            )
        url = settings.url
        https = settings.https
        api_key = settings.api_key.get_secret_value() if settings.api_key else None
        self.url = url
        self.timeout_s = settings.timeout_s
        self.retries = settings.retries
        self.has_api_key = bool(api_key)
        self.local = url == MEMORY
        if client is not None:
            self.client = client
        elif self.local:
            self.client = QdrantClient(location=MEMORY)
            # Local mode ignores payload indexes and says so on every create; that is expected.
            warnings.filterwarnings("ignore", message="Payload indexes have no effect")
        else:
            scheme = urlsplit(url).scheme if "://" in url else ""
            if https is not None and scheme and (scheme == "https") != https:
                raise ConfigError(
                    f"store.https={str(https).lower()} contradicts the URL {url}: drop one of them"
                )
            self.client = QdrantClient(
                url=url,
                api_key=api_key,
                https=https,
                timeout=math.ceil(settings.timeout_s),
                verify=_verify_arg(settings.tls_verify),
                # The version check is an extra background request that ignores `verify` and
                # warns on every unreachable server; our own errors say more.
                check_compatibility=False,
            )

    def call(self, what: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``fn(*args, **kwargs)``; transient failures are retried, all become StoreError."""
        attempt = 0
        while True:
            try:
                return fn(*args, **kwargs)
            except Exception as exc:
                described = describe_failure(exc, self.url, self.timeout_s, self.has_api_key)
                if described is None:
                    raise  # a programming error, or local mode refusing a request
                message, transient = described
                if transient and attempt < self.retries:
                    delay = _retry_delay(exc, attempt)
                    attempt += 1
                    log.warning(
                        "%s (during %s); retry %d of %d in %.2f s",
                        message,
                        what,
                        attempt,
                        self.retries,
                        delay,
                    )
                    time.sleep(delay)
                    continue
                tries = f", {attempt + 1} attempts" if attempt else ""
                raise StoreError(f"{message} (during {what}{tries})") from exc

    def collection_meta(self, name: str) -> StoreMeta | None:
        """The litrag metadata of collection ``name`` (None when it has none)."""
        info = self.call("get_collection", self.client.get_collection, name)
        raw = (info.config.metadata or {}).get(META_KEY)
        return None if raw is None else StoreMeta.model_validate(raw)

    def collections(self) -> list[str]:
        """Names of all collections, sorted."""
        resp = self.call("get_collections", self.client.get_collections)
        return sorted(c.name for c in resp.collections)

    def close(self) -> None:
        self.client.close()


class ClientStore:
    """:class:`~core.store.base.VectorStore` through ``qdrant-client``.

    ``settings`` says where (``url``, ``api_key``, TLS), how to talk (timeouts, retries, upsert
    batching, write ordering), how to query (``hnsw_ef``, ``prefetch_limit``, rescoring) and how
    to lay out a new collection (shards, replicas, quantization, what lives on disk); ``client``
    reuses an open client instead (tests).
    """

    def __init__(
        self,
        settings: StoreSettings,
        collection: str,
        meta: StoreMeta,
        *,
        create: bool = True,
        recreate: bool = False,
        client: QdrantClient | None = None,
    ) -> None:
        self.meta = meta
        self.collection = collection
        self._settings = settings
        self._ordering = models.WriteOrdering(settings.write_ordering)
        self._conn = Connection(settings, client=client)
        self.url = self._conn.url
        # The in-process client is not thread-safe and gains nothing from threads.
        self._parallel = 1 if self._conn.local else settings.parallel
        self._client = self._conn.client
        try:
            self._open(create, recreate)
        except BaseException:
            if client is None:
                self._conn.close()
            raise

    def _open(self, create: bool, recreate: bool) -> None:
        collection = self.collection
        exists = self._call("collection_exists", self._client.collection_exists, collection)
        if exists and recreate:
            self._call("delete_collection", self._client.delete_collection, collection)
            exists = False
        if exists:
            self._check_meta()
            self._add_missing_indexes()
        elif not create:
            raise StoreError(
                f"no collection {collection!r} at {self.url}: run `litrag ingest` first"
            )
        else:
            self._create()

    def _call(self, what: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return self._conn.call(what, fn, *args, **kwargs)

    def _check_meta(self) -> None:
        stored = self._conn.collection_meta(self.collection)
        if stored is None:
            raise StoreMismatchError(
                f"collection {self.collection!r} at {self.url} was not created by litrag "
                "(no litrag metadata); refusing to write into it"
            )
        diffs = self.meta.differences(stored)
        if diffs:
            raise StoreMismatchError(
                f"collection {self.collection!r} at {self.url} was built with other settings "
                f"({'; '.join(diffs)}). Vectors are never mixed: use another collection, or "
                "re-ingest with --recreate."
            )

    def _create_index(self, name: str, kind: str) -> None:
        self._call(
            "create_payload_index",
            self._client.create_payload_index,
            self.collection,
            field_name=name,
            field_schema=_INDEX_TYPES[kind],
        )

    def _add_missing_indexes(self) -> None:
        """Index the payload fields a collection made by an older litrag lacks (link fields)."""
        info = self._call("get_collection", self._client.get_collection, self.collection)
        have = set(info.payload_schema or {})
        for name, kind in INDEXED_FIELDS.items():
            if name in have:
                continue
            try:
                self._create_index(name, kind)
            except StoreError as exc:  # e.g. a read-only API key: filters still work, unindexed
                log.warning("payload field %s of %s is not indexed: %s", name, self.collection, exc)

    def _create(self) -> None:
        try:
            self._call(
                "create_collection",
                self._client.create_collection,
                self.collection,
                vectors_config={
                    DENSE: models.VectorParams(
                        size=self.meta.dim,
                        distance=models.Distance.COSINE,
                        on_disk=self._settings.vectors_on_disk,
                    )
                },
                sparse_vectors_config={
                    SPARSE: models.SparseVectorParams(
                        modifier=models.Modifier.IDF,
                        index=models.SparseIndexParams(on_disk=self._settings.sparse_on_disk),
                    )
                },
                **collection_layout(self._settings),
                shard_number=self._settings.shard_number,
                replication_factor=self._settings.replication_factor,
                write_consistency_factor=self._settings.write_consistency_factor,
                metadata={META_KEY: self.meta.model_dump(mode="json")},
            )
        except StoreError:
            # A retried create whose first attempt did succeed, or another process creating
            # the same collection at the same time: use it if it is ours.
            if not self._call("collection_exists", self._client.collection_exists, self.collection):
                raise
            self._check_meta()
        for name, kind in INDEXED_FIELDS.items():
            self._create_index(name, kind)

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
        """All of ``structs`` or a StoreError saying how many were written before the failure.

        Chunk 0 of each document goes last: re-ingestion treats a stored chunk 0 with the same
        content hash as "unchanged", so it must never be stored while the rest is missing.
        """
        if not structs:
            return
        size = self._settings.upsert_batch
        tails = [s for s in structs if (s.payload or {}).get("ordinal") != 0]
        heads = [s for s in structs if (s.payload or {}).get("ordinal") == 0]
        phases = [
            [part[i : i + size] for i in range(0, len(part), size)] for part in (tails, heads)
        ]
        n_requests = sum(len(p) for p in phases)
        written = 0
        for requests in phases:
            if not requests:
                continue
            try:
                if self._parallel > 1 and len(requests) > 1:
                    written += self._send_parallel(requests)
                else:
                    for req in requests:
                        self._send(req)
                        written += len(req)
            except _PartialWrite as exc:
                if not isinstance(exc.error, StoreError):
                    raise exc.error from None  # a bug, not a store failure: show it as it is
                err = self._partial(exc.error, written + exc.written, len(structs), n_requests)
                raise err from exc.error
            except StoreError as exc:
                raise self._partial(exc, written, len(structs), n_requests) from exc

    def _send(self, structs: list[models.PointStruct]) -> None:
        self._call(
            "upsert",
            self._client.upsert,
            self.collection,
            points=structs,
            wait=True,
            ordering=self._ordering,
        )

    def _send_parallel(self, requests: list[list[models.PointStruct]]) -> int:
        """Send ``requests`` with ``parallel`` workers; the number of points they wrote."""
        with ThreadPoolExecutor(max_workers=self._parallel, thread_name_prefix="upsert") as pool:
            futures: dict[Future[None], int] = {
                pool.submit(self._send, req): len(req) for req in requests
            }
            done, _ = wait(futures, return_when=FIRST_EXCEPTION)
            failed = [f for f in done if f.exception() is not None]
            if not failed:
                return sum(futures.values())
            for f in futures:
                f.cancel()  # the ones not started yet
            wait(futures)  # the ones in flight finish (or fail) before we count
            ok = sum(n for f, n in futures.items() if not f.cancelled() and f.exception() is None)
            error = failed[0].exception()
            assert error is not None
            raise _PartialWrite(error, ok)

    def _partial(
        self, error: BaseException, written: int, total: int, n_requests: int
    ) -> StoreError:
        return StoreError(
            f"{error}; {written} of {total} points of this batch were written before the "
            f"failure ({n_requests} upsert requests of up to {self._settings.upsert_batch} "
            "points), so the batch is not stored: write it again (upserts overwrite by id)"
        )

    def set_doc_meta(self, meta: DocumentMeta) -> None:
        flt = _client_filter(doc_conditions(meta.doc_id))
        assert flt is not None
        self._call(
            "set_payload",
            self._client.set_payload,
            self.collection,
            payload=doc_payload(meta),
            points=models.FilterSelector(filter=flt),
            wait=True,
            ordering=self._ordering,
        )

    def delete_doc_chunks(self, doc_id: str, from_ordinal: int = 0) -> None:
        flt = _client_filter(doc_conditions(doc_id, from_ordinal))
        assert flt is not None
        self._call(
            "delete",
            self._client.delete,
            self.collection,
            points_selector=models.FilterSelector(filter=flt),
            wait=True,
            ordering=self._ordering,
        )

    # -- reads ------------------------------------------------------------------------------
    def _records(self, ids: Sequence[str], *, with_vectors: bool) -> list[models.Record]:
        if not ids:
            return []
        return self._call(
            "retrieve",
            self._client.retrieve,
            self.collection,
            ids=list(ids),
            with_payload=True,
            with_vectors=with_vectors,
        )

    def retrieve(self, chunk_ids: Sequence[str]) -> list[StoredChunk]:
        return chunks_in_order(self._records(chunk_ids, with_vectors=False), chunk_ids)

    def retrieve_raw(self, point_ids: Sequence[str]) -> list[RawPoint]:
        return raw_in_order(self._records(point_ids, with_vectors=True), point_ids)

    def doc_chunks(self, doc_id: str, limit: int = 10_000) -> list[StoredChunk]:
        records, _ = self._call(
            "scroll",
            self._client.scroll,
            self.collection,
            scroll_filter=_client_filter(doc_conditions(doc_id)),
            limit=limit,
            with_payload=True,
        )
        return in_ordinal_order(records)

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

    def find_any_docs(
        self, conditions: Sequence[Condition], limit: int = 1000
    ) -> list[DocumentMeta]:
        wanted = [c for c in conditions if c.values]
        if not wanted:
            return []
        records, _ = self._call(
            "scroll",
            self._client.scroll,
            self.collection,
            scroll_filter=_client_filter([Condition("ordinal", (0,))], wanted),
            limit=limit,
            with_payload=["doc"],
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
        flt = _client_filter(filter_conditions(search_filter))
        # Local mode searches exactly and warns that search params have no effect.
        params = None if self._conn.local else dense_search_params(self._settings, limit)
        dense_v = [float(x) for x in dense] if dense is not None else None
        if dense_v is not None and sparse is not None:
            # Fused here, not by RrfQuery: tied scores must share a rank (see tie_ranks), and
            # both sub-queries travel in one request.
            depth = max(self._settings.prefetch_limit, limit)
            subs = [
                models.QueryRequest(
                    query=dense_v,
                    using=DENSE,
                    filter=flt,
                    params=params,
                    limit=fusion_fetch(depth),
                    with_payload=False,
                ),
                models.QueryRequest(
                    query=_sparse(sparse),
                    using=SPARSE,
                    filter=flt,
                    limit=fusion_fetch(depth),
                    with_payload=False,
                ),
            ]
            responses = self._call(
                "query", self._client.query_batch_points, self.collection, requests=subs
            )
            dense_hits, sparse_hits = (
                [(str(p.id), float(p.score)) for p in r.points] for r in responses
            )
            return with_payloads(fuse(dense_hits, sparse_hits, fusion, depth, limit), self.retrieve)
        vector: list[float] | models.SparseVector
        if dense_v is not None:
            using, vector, search_params = DENSE, dense_v, params
        elif sparse is not None:
            using, vector, search_params = SPARSE, _sparse(sparse), None
        else:
            raise ValueError("query needs a dense or a sparse vector")
        resp = self._call(
            "query",
            self._client.query_points,
            self.collection,
            query=vector,
            using=using,
            query_filter=flt,
            search_params=search_params,
            limit=limit,
            with_payload=True,
        )
        return scored_chunks(resp.points)

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
        def page(offset: Any) -> Any:
            return self._call(
                "scroll",
                self._client.scroll,
                self.collection,
                offset=offset,
                limit=batch,
                with_payload=True,
                with_vectors=True,
            )

        return scroll_points(page)

    def optimize(self) -> None:
        # A server builds HNSW in the background; nothing to block on.
        return None

    def ping(self) -> None:
        self._call("get_collection", self._client.get_collection, self.collection)

    def delete_collection(self) -> None:
        """Drop the whole collection (tests and ``migrate --recreate``)."""
        self._call("delete_collection", self._client.delete_collection, self.collection)

    def close(self) -> None:
        self._conn.close()


class _PartialWrite(Exception):
    """Parallel upsert requests failed after ``written`` points were stored."""

    def __init__(self, error: BaseException, written: int) -> None:
        super().__init__(str(error))
        self.error = error
        self.written = written
