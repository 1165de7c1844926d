"""Stored documents and chunks, by id."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from fastapi import APIRouter, HTTPException

from core.ids import all_urls, source_url
from service.deps import AuthDep, EngineDep

router = APIRouter(prefix="/v1", tags=["documents"], dependencies=[AuthDep])


@router.get("/documents/{doc_id:path}", summary="A document's metadata and its chunks")
def get_document(doc_id: str, engine: EngineDep) -> dict[str, Any]:
    """Metadata (as stored) and every chunk of ``doc_id`` (e.g. ``nct:NCT04267848``)."""
    chunks = engine.retriever.store.doc_chunks(doc_id)
    if not chunks:
        raise HTTPException(status_code=404, detail=f"no document {doc_id!r}")
    doc = chunks[0].doc
    return {
        "document": doc.model_dump(mode="json"),
        "url": source_url(doc.identifiers),
        "urls": all_urls(doc.identifiers),
        "chunks": [c.chunk.model_dump(mode="json") for c in chunks],
    }


@router.get("/chunks/{chunk_id}", summary="One chunk with its document metadata")
def get_chunk(chunk_id: UUID, engine: EngineDep) -> dict[str, Any]:
    """The stored chunk ``chunk_id`` (a UUID)."""
    found = engine.retriever.store.retrieve([str(chunk_id)])
    if not found:
        raise HTTPException(status_code=404, detail=f"no chunk {str(chunk_id)!r}")
    hit = found[0]
    return {
        "chunk": hit.chunk.model_dump(mode="json"),
        "document": hit.doc.model_dump(mode="json"),
        "url": source_url(hit.doc.identifiers),
    }
