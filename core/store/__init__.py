"""Vector store: the interface, and the factory choosing Qdrant Edge or qdrant-client."""

from __future__ import annotations

from core.config import StoreSettings
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
            settings.path / "edge", name, meta, settings, create=create, recreate=recreate
        )
    from core.store.client import ClientStore

    return ClientStore(settings, name, meta, create=create, recreate=recreate)


__all__ = ["PointData", "RawPoint", "StoreMeta", "VectorStore", "meta_for", "open_store"]
