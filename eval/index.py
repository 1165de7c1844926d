"""Index an evaluation corpus into its own collection with the core pieces ``litrag ingest`` uses.

Each :class:`~eval.datasets.EvalDoc` becomes a :class:`~core.schemas.Document` (``eval:<doc_id>``,
source type ``abstract``, its title, one ``("Abstract",)`` section), chunked with
:func:`core.chunking.chunk_document`, embedded in batches, given BM25 sparse vectors and upserted
into the collection ``eval_<set>_<meta key>``, where the meta key hashes the embedding model,
chunking and sparse settings, so a change of any of them builds a new collection.

A collection that differs from a finished one of the same corpus only in its sparse (BM25)
settings is built by copying that one's dense vectors and computing new sparse vectors, so BM25
parameters can be tried without embedding the corpus again.

An index is reused when unchanged: a marker ``<store.path>/eval/<collection>.json`` records the
corpus hash (sha256 of every document's id, title and text) and the number of points written; when
both match the store, ingestion is skipped.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from core.chunking import check_budget, chunk_document
from core.config import Settings
from core.embedding import Embedder
from core.errors import StoreLockedError
from core.schemas import Chunk, Document, DocumentMeta, Section, SourceType
from core.sparse import SparseEncoder
from core.store import PointData, RawPoint, StoreMeta, VectorStore, meta_for, open_store
from eval.datasets import EvalDoc, EvalSet

__all__ = [
    "DOC_PREFIX",
    "EvalIndex",
    "collection_name",
    "corpus_hash",
    "eval_doc_id",
    "marker_path",
    "open_index",
    "source_doc_id",
    "to_document",
]

log = logging.getLogger(__name__)

DOC_PREFIX = "eval:"
MARKER_VERSION = 1

#: Called after each batch with (documents done, documents total, chunks written so far).
ProgressFn = Callable[[int, int, int], None]


@dataclass(slots=True)
class EvalIndex:
    """An open evaluation collection and how it came to be."""

    store: VectorStore
    collection: str
    meta: StoreMeta
    corpus_hash: str
    n_docs: int
    n_points: int
    reused: bool
    seconds: float
    marker: Path
    dense_from: str | None = None
    """The collection whose dense vectors were copied (only BM25 settings differed)."""

    def close(self) -> None:
        """Release the store (Qdrant Edge holds a lock while open)."""
        self.store.close()


def eval_doc_id(doc_id: str) -> str:
    """Document id of an evaluation document in the store."""
    return DOC_PREFIX + doc_id


def source_doc_id(doc_id: str) -> str:
    """The evaluation set's own document id back from a stored ``eval:...`` id."""
    return doc_id[len(DOC_PREFIX) :] if doc_id.startswith(DOC_PREFIX) else doc_id


def corpus_hash(docs: Iterable[EvalDoc]) -> str:
    """sha256 over every document's (id, title, text), in id order."""
    h = hashlib.sha256()
    for doc in sorted(docs, key=lambda d: d.doc_id):
        h.update(json.dumps([doc.doc_id, doc.title, doc.text], ensure_ascii=False).encode())
        h.update(b"\n")
    return h.hexdigest()


def to_document(doc: EvalDoc) -> Document:
    """The core Document of one evaluation document (a title-only document keeps its title)."""
    text = doc.text.strip() or doc.title.strip()
    return Document(
        doc_id=eval_doc_id(doc.doc_id),
        source_type=SourceType.ABSTRACT,
        title=doc.title,
        sections=[Section(path=("Abstract",), text=text, kind="abstract")] if text else [],
        source_path=f"eval:{doc.doc_id}",
    )


def collection_name(set_name: str, meta: StoreMeta) -> str:
    """``eval_<set>_<meta key>``: one collection per set and per model/chunking/sparse settings."""
    slug = re.sub(r"[^a-z0-9]+", "-", set_name.lower()).strip("-") or "set"
    return f"eval_{slug}_{meta.key()}"


def marker_path(settings: Settings, collection: str) -> Path:
    """Where the corpus hash of an evaluation collection is recorded."""
    return settings.store.path / "eval" / f"{collection}.json"


def _read_marker(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _ingest(
    store: VectorStore,
    docs: Sequence[EvalDoc],
    settings: Settings,
    embedder: Embedder,
    sparse: SparseEncoder,
    batch_size: int,
    on_progress: ProgressFn | None,
) -> int:
    """Chunk, embed and upsert every document; returns the number of points written."""
    n_points = 0
    pending: list[PointData] = []
    pending_chunks: list[tuple[Any, DocumentMeta]] = []

    def flush() -> None:
        nonlocal n_points, pending_chunks
        if not pending_chunks:
            return
        texts = [c.embed_text for c, _ in pending_chunks]
        dense = embedder.embed(texts).tolist()
        vecs = sparse.embed_documents(texts)
        pending.extend(
            PointData(chunk=c, doc=m, dense=d, sparse=s)
            for (c, m), d, s in zip(pending_chunks, dense, vecs, strict=True)
        )
        store.upsert(pending)
        n_points += len(pending)
        pending.clear()
        pending_chunks = []

    for i, eval_doc in enumerate(docs, start=1):
        doc = to_document(eval_doc)
        chunks = chunk_document(doc, settings.chunking, embedder.count_tokens)
        meta = DocumentMeta.of(doc, len(chunks))
        pending_chunks.extend((c, meta) for c in chunks)
        if len(pending_chunks) >= batch_size or i == len(docs):
            flush()
            if on_progress:
                on_progress(i, len(docs), n_points)
    flush()
    return n_points


def _find_donors(settings: Settings, digest: str, meta: StoreMeta) -> list[tuple[str, StoreMeta]]:
    """Finished collections of the same corpus, model and chunking whose only difference is the
    sparse encoder: their dense vectors can be copied instead of embedding everything again."""
    folder = settings.store.path / "eval"
    found: list[tuple[str, StoreMeta]] = []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        data = _read_marker(path)
        if not data or data.get("corpus_hash") != digest or not data.get("n_points"):
            continue
        try:
            other = StoreMeta.model_validate(data.get("meta"))
        except ValueError:
            continue
        diffs = meta.differences(other)
        if diffs and all(d.startswith("sparse:") for d in diffs):
            found.append((str(data["collection"]), other))
    return found


def _copy_with_sparse(
    settings: Settings,
    donor: tuple[str, StoreMeta],
    store: VectorStore,
    sparse: SparseEncoder,
    batch_size: int,
    on_progress: ProgressFn | None,
) -> int:
    """Copy every point of the donor collection with sparse vectors from ``sparse``."""
    source = open_store(settings.store, donor[1], collection=donor[0], create=False)
    try:
        total = source.count()
        n = 0
        batch: list[RawPoint] = []
        for raw in source.iter_points(batch=batch_size):
            text = Chunk.model_validate(raw.payload["chunk"]).embed_text
            batch.append(
                RawPoint(raw.point_id, raw.payload, raw.dense, sparse.embed_documents([text])[0])
            )
            if len(batch) >= batch_size:
                store.upsert_raw(batch)
                n += len(batch)
                batch = []
                if on_progress:
                    on_progress(n, total, n)
        store.upsert_raw(batch)
        n += len(batch)
        if on_progress:
            on_progress(n, total, n)
        return n
    finally:
        source.close()


def open_index(
    eval_set: EvalSet,
    settings: Settings,
    embedder: Embedder,
    sparse: SparseEncoder,
    *,
    on_progress: ProgressFn | None = None,
    force: bool = False,
) -> EvalIndex:
    """Open the set's collection, (re)building it unless its marker matches the corpus.

    ``on_progress`` is called only while documents are being ingested. ``force`` rebuilds.
    """
    t0 = time.perf_counter()
    check_budget(settings.chunking, embedder.max_seq_length)
    meta = meta_for(settings, embedder.name, embedder.dim, sparse.name)
    collection = collection_name(eval_set.name, meta)
    digest = corpus_hash(eval_set.docs)
    marker = marker_path(settings, collection)
    recorded = _read_marker(marker)
    store = open_store(settings.store, meta, collection=collection)
    try:
        n_store = store.count()
        if (
            not force
            and recorded is not None
            and recorded.get("corpus_hash") == digest
            and recorded.get("n_points") == n_store
            and n_store > 0
        ):
            log.info("eval index %s reused (%d points)", collection, n_store)
            return EvalIndex(
                store=store,
                collection=collection,
                meta=meta,
                corpus_hash=digest,
                n_docs=len(eval_set.docs),
                n_points=n_store,
                reused=True,
                seconds=time.perf_counter() - t0,
                marker=marker,
            )
        if n_store:
            log.info("eval index %s is stale (%d points): rebuilding", collection, n_store)
            store.close()
            store = open_store(settings.store, meta, collection=collection, recreate=True)
        marker.unlink(missing_ok=True)
        donor: tuple[str, StoreMeta] | None = None
        n_points = 0
        for candidate in [] if force else _find_donors(settings, digest, meta):
            try:
                n_points = _copy_with_sparse(
                    settings, candidate, store, sparse, settings.ingest.batch_size, on_progress
                )
            except StoreLockedError:  # in use by another process: try the next one
                continue
            donor = candidate
            log.info("eval index %s: dense vectors copied from %s", collection, donor[0])
            break
        if donor is None:
            n_points = _ingest(
                store,
                eval_set.docs,
                settings,
                embedder,
                sparse,
                settings.ingest.batch_size,
                on_progress,
            )
        store.optimize()
        n_store = store.count()
        marker.parent.mkdir(parents=True, exist_ok=True)
        tmp = marker.with_suffix(".json.tmp")
        tmp.write_text(
            json.dumps(
                {
                    "version": MARKER_VERSION,
                    "collection": collection,
                    "set": eval_set.name,
                    "corpus_hash": digest,
                    "n_docs": len(eval_set.docs),
                    "n_points": n_store,
                    "meta": meta.model_dump(mode="json"),
                    "built": datetime.now(UTC).isoformat(timespec="seconds"),
                    "seconds": round(time.perf_counter() - t0, 1),
                },
                indent=2,
            ),
            encoding="utf-8",
        )
        tmp.replace(marker)
        log.info("eval index %s built: %d points", collection, n_points)
        return EvalIndex(
            store=store,
            collection=collection,
            meta=meta,
            corpus_hash=digest,
            n_docs=len(eval_set.docs),
            n_points=n_store,
            reused=False,
            seconds=time.perf_counter() - t0,
            marker=marker,
            dense_from=donor[0] if donor else None,
        )
    except BaseException:
        store.close()
        raise
