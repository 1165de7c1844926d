"""Vector store: the interface, and the factory choosing Qdrant Edge or qdrant-client."""

from __future__ import annotations

from core.config import StoreSettings
from core.errors import ConfigError
from core.store.base import PointData, RawPoint, StoreMeta, VectorStore, meta_for


def open_store(
    settings: StoreSettings,
    meta: StoreMeta,
    *,
    collection: str | None = None,
    create: bool = True,
    recreate: bool = False,
) -> VectorStore:
    """Open (or create) the configured collection; refuses one built with other settings."""
    name = collection or settings.collection or meta.default_collection()
    if settings.backend == "edge":
        from core.store.edge import EdgeStore

        return EdgeStore(
            settings.path / "edge",
            name,
            meta,
            create=create,
            recreate=recreate,
            hnsw_ef=settings.hnsw_ef,
            prefetch_limit=settings.prefetch_limit,
        )
    if not settings.url:
        raise ConfigError("store.backend=qdrant needs LITRAG_STORE__URL (a server URL or :memory:)")
    from core.store.client import ClientStore

    return ClientStore(
        settings.url,
        name,
        meta,
        api_key=settings.api_key.get_secret_value() if settings.api_key else None,
        timeout_s=settings.timeout_s,
        create=create,
        recreate=recreate,
        shard_number=settings.shard_number,
        replication_factor=settings.replication_factor,
        write_consistency_factor=settings.write_consistency_factor,
        hnsw_ef=settings.hnsw_ef,
        prefetch_limit=settings.prefetch_limit,
        retries=settings.retries,
        https=settings.https,
        tls_verify=settings.tls_verify,
        upsert_batch=settings.upsert_batch,
        parallel=settings.parallel,
        write_ordering=settings.write_ordering,
    )


__all__ = ["PointData", "RawPoint", "StoreMeta", "VectorStore", "meta_for", "open_store"]
