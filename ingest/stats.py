"""What one ingestion run reports: its counters and the lines of its JSON lines report."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from core.jobs import ReportKind


@dataclass(frozen=True, slots=True)
class ReportEntry:
    """One line of the JSON lines report."""

    kind: ReportKind
    file: str
    record: str | None
    reason: str
    doc_id: str | None = None


@dataclass(slots=True)
class IngestStats:
    """Counters shown in the summary table."""

    documents: Counter[str] = field(default_factory=Counter)  # stored, by source type
    chunks: int = 0
    unchanged: int = 0
    relinked: int = 0  # unchanged documents whose stored links were rewritten
    replaced_docs: int = 0
    #: other documents' identifiers stated by the documents read, by source and by relation
    link_mentions: Counter[str] = field(default_factory=Counter)
    link_relations: Counter[str] = field(default_factory=Counter)
    docs_with_links: int = 0
    duplicates: int = 0
    failures: int = 0
    skipped_files: int = 0
    seconds: float = 0.0
    # time spent in each stage (the stages overlap: parse/chunk and write run in threads)
    parse_seconds: float = 0.0  # discover + parse + chunk (producer thread)
    embed_seconds: float = 0.0  # dense vectors
    sparse_seconds: float = 0.0  # BM25 vectors
    write_seconds: float = 0.0  # upserts and deletes (writer thread)

    @property
    def stored_documents(self) -> int:
        """Documents written in this run."""
        return sum(self.documents.values())
