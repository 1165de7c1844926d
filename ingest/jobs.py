"""The ``litrag.ingest`` entry point ``pipeline``: the ingestion pipeline as a job runner (the
service's upload jobs run it without importing ``ingest/``), and the conversions between the
pipeline's counters and report lines and the shared job types of ``core.jobs``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, cast

from core.jobs import IngestRequest, JobCounts, JobEntry
from core.schemas import DocumentMeta
from core.store import PointData, StoreMeta, VectorStore
from ingest.pipeline import Pipeline
from ingest.stats import IngestStats, ReportEntry


def counts_of(stats: IngestStats) -> JobCounts:
    """The pipeline's counters as :class:`~core.jobs.JobCounts`."""
    return JobCounts(
        documents=dict(stats.documents),
        chunks=stats.chunks,
        unchanged=stats.unchanged,
        replaced_docs=stats.replaced_docs,
        duplicates=stats.duplicates,
        failures=stats.failures,
        skipped_files=stats.skipped_files,
        seconds=stats.seconds,
        relinked=stats.relinked,
        docs_with_links=stats.docs_with_links,
        link_mentions=dict(stats.link_mentions),
    )


def entry_of(entry: ReportEntry, root: Path | None = None) -> JobEntry:
    """A pipeline report line as a :class:`~core.jobs.JobEntry`, names relative to ``root``."""
    return JobEntry(
        kind=entry.kind,
        file=relative_name(entry.file, root),
        record=entry.record,
        reason=entry.reason.replace(f"{root}/", "") if root else entry.reason,
        doc_id=entry.doc_id,
    )


def relative_name(name: str, root: Path | None) -> str:
    """``name`` (a path, maybe ``path!member``) without the leading ``root/``."""
    if root is None:
        return name
    prefix = f"{root}/"
    return name[len(prefix) :] if name.startswith(prefix) else name


def run(request: IngestRequest) -> JobCounts:
    """Ingest ``request.paths`` with :class:`~ingest.pipeline.Pipeline` (no index build: the
    caller decides when to optimize). Store failures propagate."""
    root = request.root
    store = (
        request.store if root is None else cast(VectorStore, _RelativeSources(request.store, root))
    )
    pipeline = Pipeline(
        request.settings,
        store,
        request.embedder,
        request.sparse,
        on_report=lambda e: request.on_report(entry_of(e, root)),
        on_progress=lambda s: request.on_progress(counts_of(s)),
    )
    return counts_of(pipeline.run(request.paths))


class _RelativeSources:
    """A store that records each document's ``source_path`` relative to ``root``: a document
    uploaded as ``trials/a.xml`` is stored with that name, not the server's spool path."""

    def __init__(self, inner: VectorStore, root: Path) -> None:
        self._inner = inner
        self._root = root
        self.meta: StoreMeta = inner.meta
        self.collection: str = inner.collection

    def upsert(self, points: Sequence[PointData]) -> None:
        docs: dict[int, DocumentMeta] = {}
        out: list[PointData] = []
        for p in points:
            doc = docs.get(id(p.doc))
            if doc is None:
                doc = p.doc.model_copy(
                    update={"source_path": relative_name(p.doc.source_path, self._root)}
                )
                docs[id(p.doc)] = doc
            out.append(replace(p, doc=doc))
        self._inner.upsert(out)

    def set_doc_meta(self, meta: DocumentMeta) -> None:
        self._inner.set_doc_meta(
            meta.model_copy(update={"source_path": relative_name(meta.source_path, self._root)})
        )

    def __getattr__(self, name: str) -> Any:
        # every other operation is the store's own (reads, deletes, optimize …)
        return getattr(self._inner, name)
