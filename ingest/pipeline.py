"""The ingestion pipeline: discover → parse → chunk (thread) ∥ embed (main) ∥ upsert (thread).

Per document it decides, before any embedding work:
- *unchanged*: the store holds exactly this version's chunks (every ordinal of it, each with the
  same content hash, and no other chunk of the document) → skipped;
- *duplicate*: another document id already holds one of its identifiers (same DOI/PMID/PMCID),
  or the same id came twice in this run → reported, not stored twice. When a fuller source of
  the same article arrives (JATS full text over a PDF over a MEDLINE abstract) it replaces it;
- *new* or *changed*: embedded and upserted; a changed document then loses its stale tail chunks;
- *relinked*: unchanged, but the stored ``links`` differ (a store from before links, a better
  extractor): its chunks' document payload is rewritten in place, nothing is embedded again.

Batches are aligned to whole documents, and a document's stale chunks are deleted only after its
new chunks are written, so a crash never leaves a document with fewer chunks than acknowledged.
A crash between the two leaves new chunks next to an old tail; the next run sees a chunk set that
is not exactly the current version, writes the document again and deletes the tail.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from core.chunking import chunk_document
from core.config import Settings
from core.embedding import Embedder
from core.errors import ParseError
from core.schemas import Chunk, Document, DocumentMeta, SearchFilter, SourceType
from core.sparse import SparseEncoder
from core.store import PointData, VectorStore
from core.store.base import IDENTIFIER_FIELDS
from ingest.discover import Skipped, discover
from ingest.formats import parse_source
from ingest.parsers.base import RecordFailure
from ingest.stats import IngestStats, ReportEntry

#: Fuller sources of the same article win over thinner ones.
PRECEDENCE = {SourceType.ARTICLE: 3, SourceType.PDF: 2, SourceType.ABSTRACT: 1, SourceType.TRIAL: 0}


@dataclass(slots=True)
class _DocWork:
    doc: Document
    chunks: list[Chunk]
    meta: DocumentMeta


@dataclass(slots=True)
class _Batch:
    docs: list[_DocWork] = field(default_factory=list)
    # doc ids superseded by a fuller source in this batch: deleted once the batch is written
    supersede: list[str] = field(default_factory=list)
    # unchanged documents whose links payload is rewritten (no embedding)
    relink: list[DocumentMeta] = field(default_factory=list)

    @property
    def n_chunks(self) -> int:
        return sum(len(d.chunks) for d in self.docs)


_DONE = object()
_T = TypeVar("_T")


class Pipeline:
    """Runs one ingestion over a set of paths into one store."""

    def __init__(
        self,
        settings: Settings,
        store: VectorStore,
        embedder: Embedder,
        sparse: SparseEncoder,
        *,
        on_report: Callable[[ReportEntry], None] | None = None,
        on_progress: Callable[[IngestStats], None] | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.embedder = embedder
        self.sparse = sparse
        self.stats = IngestStats()
        self._on_report = on_report or (lambda _e: None)
        self._on_progress = on_progress or (lambda _s: None)
        self._store_lock = threading.Lock()
        # doc_id -> source of its first appearance in this run
        self._seen_ids: dict[str, str] = {}
        # (identifier field, value) -> doc_id that holds it (this run)
        self._seen_identifiers: dict[tuple[str, str], tuple[str, SourceType]] = {}
        self._error: BaseException | None = None
        # set when run() ends early (an error, a cancel): the parse thread stops at its next item
        self._stop = threading.Event()

    # -- reporting ----------------------------------------------------------------------------
    def _report(self, entry: ReportEntry) -> None:
        if entry.kind == "failure":
            self.stats.failures += 1
        elif entry.kind == "duplicate":
            self.stats.duplicates += 1
        elif entry.kind == "skipped":
            self.stats.skipped_files += 1
        self._on_report(entry)

    # -- stage 1: parse + chunk (producer thread) -------------------------------------------
    def _produce(self, paths: list[Path], out: queue.Queue[object]) -> None:
        try:
            for item in self._timed(discover(paths, self.settings.ingest)):
                if self._stop.is_set():
                    return
                if isinstance(item, RecordFailure):
                    out.put(ReportEntry("failure", item.source, item.record, item.reason))
                    continue
                if isinstance(item, Skipped):
                    out.put(ReportEntry("skipped", item.source, None, item.reason))
                    continue
                try:
                    for result in self._timed(parse_source(item, self.settings.ingest)):
                        if self._stop.is_set():
                            return
                        if isinstance(result, RecordFailure):
                            out.put(
                                ReportEntry("failure", result.source, result.record, result.reason)
                            )
                            continue
                        t0 = time.perf_counter()
                        chunks = chunk_document(
                            result, self.settings.chunking, self.embedder.count_tokens
                        )
                        self.stats.parse_seconds += time.perf_counter() - t0
                        if not chunks:
                            out.put(
                                ReportEntry(
                                    "failure", item.name, result.doc_id, "no indexable text"
                                )
                            )
                            continue
                        out.put(_DocWork(result, chunks, DocumentMeta.of(result, len(chunks))))
                except ParseError as exc:
                    out.put(ReportEntry("failure", exc.path, exc.record, exc.reason))
                except Exception as exc:  # a parser bug must not end the batch: report it
                    out.put(
                        ReportEntry(
                            "failure", item.name, None, f"unexpected {type(exc).__name__}: {exc}"
                        )
                    )
        except BaseException as exc:  # pragma: no cover - surfaced in the main thread
            self._error = exc
        finally:
            out.put(_DONE)

    def _timed(self, items: Iterator[_T]) -> Iterator[_T]:
        """``items``, adding the time spent producing each one to ``parse_seconds``."""
        while True:
            t0 = time.perf_counter()
            try:
                item = next(items)
            except StopIteration:
                self.stats.parse_seconds += time.perf_counter() - t0
                return
            self.stats.parse_seconds += time.perf_counter() - t0
            yield item

    # -- decisions (main thread) --------------------------------------------------------------
    def _decide(self, work: _DocWork, batch: _Batch) -> bool:
        """True when ``work`` must be written; reports skips and duplicates."""
        doc = work.doc
        if doc.doc_id in self._seen_ids:
            self._report(
                ReportEntry(
                    "duplicate",
                    doc.source_path,
                    doc.doc_id,
                    f"{doc.doc_id} already ingested in this run from {self._seen_ids[doc.doc_id]}",
                    doc.doc_id,
                )
            )
            return False
        self._seen_ids[doc.doc_id] = doc.source_path
        holders = self._identifier_holders(doc)
        for other_id, other_type, how in holders:
            if PRECEDENCE[doc.source_type] > PRECEDENCE[other_type]:
                batch.supersede.append(other_id)
                self._report(
                    ReportEntry(
                        "replaced",
                        doc.source_path,
                        doc.doc_id,
                        f"{doc.doc_id} ({doc.source_type.value}) replaces {other_id} "
                        f"({other_type.value}): same {how}",
                        other_id,
                    )
                )
            else:
                self._report(
                    ReportEntry(
                        "duplicate",
                        doc.source_path,
                        doc.doc_id,
                        f"same article as {other_id} ({other_type.value}, same {how}); not stored "
                        "twice",
                        doc.doc_id,
                    )
                )
                return False
        for name in IDENTIFIER_FIELDS:
            value = getattr(doc.identifiers, name)
            if value:
                self._seen_identifiers[(name, value)] = (doc.doc_id, doc.source_type)
        self._count_links(doc)
        stored_current, stored_total, links_current = self._stored_chunks(work)
        if stored_current == stored_total == len(work.chunks):
            self.stats.unchanged += 1
            if not links_current:
                batch.relink.append(work.meta)
            return False
        if stored_total:
            self.stats.replaced_docs += 1
        return True

    def _stored_chunks(self, work: _DocWork) -> tuple[int, int, bool]:
        """(stored chunks of this version at its ordinals, all stored chunks of the document,
        whether every stored chunk holds this version's links).

        Chunk 0 alone does not say a document is complete: a crash after its new chunks were
        written and before its old tail was deleted leaves chunk 0 current and the tail stale.
        """
        ids = [c.chunk_id for c in work.chunks]
        with self._store_lock:
            stored = self.store.retrieve(ids)
            total = self.store.count(SearchFilter(doc_ids=[work.doc.doc_id])) if stored else 0
        current = sum(s.doc.content_hash == work.meta.content_hash for s in stored)
        links_current = all(s.doc.links == work.meta.links for s in stored)
        return current, total, links_current

    def _count_links(self, doc: Document) -> None:
        """Count the identifiers of other documents ``doc`` states (the summary's links)."""
        self.stats.docs_with_links += bool(doc.links)
        self.stats.link_mentions.update(m.source for m in doc.links)
        self.stats.link_relations.update(m.relation for m in doc.links)

    def _identifier_holders(self, doc: Document) -> list[tuple[str, SourceType, str]]:
        """Other documents (this run or stored) sharing an identifier with ``doc``."""
        found: dict[str, tuple[SourceType, str]] = {}
        for name in IDENTIFIER_FIELDS:
            value = getattr(doc.identifiers, name)
            if not value or (name == "nct_id" and doc.doc_id == f"nct:{value}"):
                continue
            hit = self._seen_identifiers.get((name, value))
            if hit and hit[0] != doc.doc_id:
                found.setdefault(hit[0], (hit[1], name))
            with self._store_lock:
                stored_ids = self.store.find_docs(name, value)
            for other in stored_ids - {doc.doc_id}:
                if other in found:
                    continue
                with self._store_lock:
                    chunk0 = self.store.doc_chunks(other, limit=1)
                if chunk0:
                    found[other] = (chunk0[0].doc.source_type, name)
        return [(k, t, how) for k, (t, how) in found.items()]

    # -- stage 3: write (writer thread) -------------------------------------------------------
    def _write(self, points: list[PointData], batch: _Batch) -> None:
        t0 = time.perf_counter()
        with self._store_lock:
            self.store.upsert(points)
            for work in batch.docs:
                # stale tail of a document that shrank; no-op for new documents
                self.store.delete_doc_chunks(work.doc.doc_id, from_ordinal=len(work.chunks))
            for old in batch.supersede:
                self.store.delete_doc_chunks(old)
            for meta in batch.relink:
                self.store.set_doc_meta(meta)
        self.stats.write_seconds += time.perf_counter() - t0

    def _writer(self, q: queue.Queue[object]) -> None:
        while True:
            item = q.get()
            if item is _DONE:
                return
            assert isinstance(item, tuple)
            points: list[PointData] = item[0]
            batch: _Batch = item[1]
            try:
                self._write(points, batch)
            except BaseException as exc:
                self._error = exc
                # drain so the producer of this queue never blocks forever
                while q.get() is not _DONE:
                    pass
                return
            for work in batch.docs:
                self.stats.documents[work.doc.source_type.value] += 1
                self.stats.chunks += len(work.chunks)
            self.stats.relinked += len(batch.relink)
            self._on_progress(self.stats)

    # -- stage 2: embed (main thread) ---------------------------------------------------------
    def _embed(self, batch: _Batch) -> list[PointData]:
        chunks = [c for w in batch.docs for c in w.chunks]
        if not chunks:  # a batch of relinks or deletions only
            return []
        metas = [w.meta for w in batch.docs for _ in w.chunks]
        texts = [c.embed_text for c in chunks]
        t0 = time.perf_counter()
        dense = self.embedder.embed(texts)
        t1 = time.perf_counter()
        self.stats.embed_seconds += t1 - t0
        sparse = self.sparse.embed_documents(texts)
        self.stats.sparse_seconds += time.perf_counter() - t1
        return [
            PointData(chunk=c, doc=m, dense=d, sparse=s)
            for c, m, d, s in zip(chunks, metas, dense.tolist(), sparse, strict=True)
        ]

    def run(self, paths: list[Path]) -> IngestStats:
        """Ingest ``paths``; returns the counters. Store failures propagate as StoreError."""
        start = time.perf_counter()
        parsed: queue.Queue[object] = queue.Queue(maxsize=self.settings.ingest.batch_size * 4)
        to_write: queue.Queue[object] = queue.Queue(maxsize=2)
        producer = threading.Thread(
            target=self._produce, args=(paths, parsed), name="litrag-ingest-parse", daemon=True
        )
        writer = threading.Thread(
            target=self._writer, args=(to_write,), name="litrag-ingest-write", daemon=True
        )
        producer.start()
        writer.start()
        batch = _Batch()
        finished = False
        try:
            for item in self._drain(parsed):
                if isinstance(item, ReportEntry):
                    self._report(item)
                    self._on_progress(self.stats)
                    continue
                if self._decide(item, batch):
                    batch.docs.append(item)
                else:
                    self._on_progress(self.stats)
                if batch.n_chunks + len(batch.relink) >= self.settings.ingest.batch_size:
                    self._flush(batch, to_write)
                    batch = _Batch()
            if batch.docs or batch.supersede or batch.relink:
                self._flush(batch, to_write)
            finished = True
        finally:
            to_write.put(_DONE)
            writer.join()
            if not finished:
                # the parse thread may be blocked on the full queue: tell it to stop and empty the
                # queue behind it, so neither it nor the documents it holds outlive this run
                self._stop.set()
                threading.Thread(
                    target=_discard_until_done,
                    args=(parsed, producer),
                    name="litrag-ingest-discard",
                    daemon=True,
                ).start()
        if self._error is not None:
            raise self._error
        self.stats.seconds = time.perf_counter() - start
        return self.stats

    def _flush(self, batch: _Batch, to_write: queue.Queue[object]) -> None:
        if self._error is not None:
            raise self._error
        to_write.put((self._embed(batch), batch))

    def _drain(self, q: queue.Queue[object]) -> Iterator[_DocWork | ReportEntry]:
        while True:
            item = q.get()
            if item is _DONE:
                if self._error is not None:
                    raise self._error
                return
            assert isinstance(item, _DocWork | ReportEntry)
            yield item


def _discard_until_done(q: queue.Queue[object], producer: threading.Thread) -> None:
    """Take items off ``q`` until the producer's end marker (or, when the run already took the
    marker, until the producer is gone and ``q`` is empty)."""
    while True:
        try:
            if q.get(timeout=0.2) is _DONE:
                return
        except queue.Empty:
            if not producer.is_alive():
                return
