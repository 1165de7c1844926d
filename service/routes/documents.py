"""Stored documents and chunks, by id."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from fastapi import APIRouter

from core.ids import all_urls, source_url
from core.store.links import links_of
from service.deps import AuthDep, EngineDep
from service.errors import NotFound, error_responses

router = APIRouter(
    prefix="/v1",
    tags=["documents"],
    dependencies=[AuthDep],
    responses=error_responses(401, 404, 503),
)


@router.get("/documents/{doc_id:path}", summary="A document's metadata and its chunks")
def get_document(doc_id: str, engine: EngineDep) -> dict[str, Any]:
    """Metadata (as stored), every chunk of ``doc_id`` (e.g. ``nct:NCT04267848``) and its
    ``links``: a trial's publications and a paper's trials that are in the store (id, title, URL
    built from stored identifiers, which side states the link and how)."""
    store = engine.retriever.store
    chunks = store.doc_chunks(doc_id)
    if not chunks:
        raise NotFound(f"no document {doc_id!r}", param="doc_id")
    doc = chunks[0].doc
    return {
        "document": doc.model_dump(mode="json"),
        "url": source_url(doc.identifiers),
        "urls": all_urls(doc.identifiers),
        "links": [link.model_dump(mode="json") for link in links_of(store, doc)],
        "chunks": [c.chunk.model_dump(mode="json") for c in chunks],
    }


@router.get("/chunks/{chunk_id}", summary="One chunk with its document metadata")
def get_chunk(chunk_id: UUID, engine: EngineDep) -> dict[str, Any]:
    """The stored chunk ``chunk_id`` (a UUID)."""
    found = engine.retriever.store.retrieve([str(chunk_id)])
    if not found:
        raise NotFound(f"no chunk {str(chunk_id)!r}", param="chunk_id")
    hit = found[0]
    return {
        "chunk": hit.chunk.model_dump(mode="json"),
        "document": hit.doc.model_dump(mode="json"),
        "url": source_url(hit.doc.identifiers),
    }
