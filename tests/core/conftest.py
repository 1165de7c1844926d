"""Fixtures of the core tests: real chunks with their real vectors."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.chunking import chunk_document
from core.config import Settings
from core.schemas import Document, DocumentMeta
from core.sparse import SparseEncoder
from core.store import RawPoint, StoreMeta, meta_for
from core.store.base import to_payload
from ingest.parsers.base import Source
from ingest.parsers.ctgov import parse_ctgov_json
from ingest.parsers.jats import parse_jats


@pytest.fixture(scope="session")
def real_points(corpus: Path, embedder) -> tuple[StoreMeta, list[RawPoint]]:  # type: ignore[no-untyped-def]
    """Real chunks (a trial and an eLife article) with their real vectors and payloads."""
    settings = Settings()
    sparse = SparseEncoder(settings.sparse)
    trial_path = corpus / "ctgov" / "NCT04267848.json"
    art_path = corpus / "jats" / "elife" / "elife00005.xml"
    docs = [
        *parse_ctgov_json(Source(str(trial_path), trial_path.read_bytes())),
        *parse_jats(Source(str(art_path), art_path.read_bytes())),
    ]
    out: list[RawPoint] = []
    for doc in docs:
        assert isinstance(doc, Document)
        chunks = chunk_document(doc, settings.chunking, embedder.count_tokens)
        meta = DocumentMeta.of(doc, len(chunks))
        texts = [c.embed_text for c in chunks]
        for c, d, s in zip(
            chunks, embedder.embed(texts).tolist(), sparse.embed_documents(texts), strict=True
        ):
            out.append(RawPoint(c.chunk_id, to_payload(c, meta), d, s))
    return meta_for(settings, embedder.name, embedder.dim, sparse.name), out
