"""Ingest jobs: what the service's job worker hands an ingest runner, what it gets back, and the
job records the service stores and ``litrag ingest --server`` reads.

The runner is found through the ``litrag.ingest`` entry point (``ingest.jobs:run``), so the
service runs the ingestion pipeline without importing ``ingest/`` (see tests/test_architecture.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from importlib.metadata import entry_points
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, computed_field

from core.config import Settings
from core.embedding import Embedder
from core.errors import ConfigError
from core.sparse import SparseEncoder
from core.store import VectorStore

#: Entry-point group of ingest runners; the service uses the one named ``pipeline``.
RUNNER_GROUP = "litrag.ingest"

ReportKind = Literal["failure", "duplicate", "skipped", "replaced"]
JobState = Literal["queued", "running", "succeeded", "failed", "cancelled"]
#: States a job does not leave.
ENDED_STATES: tuple[JobState, ...] = ("succeeded", "failed", "cancelled")


class JobCounts(BaseModel):
    """The counters of ``litrag ingest``'s summary table."""

    documents: dict[str, int] = Field(
        default_factory=dict, description="Documents stored in this job, by source type"
    )
    chunks: int = Field(0, description="Chunks stored")
    unchanged: int = Field(0, description="Documents skipped: already stored as they are")
    replaced_docs: int = Field(0, description="Documents changed (their chunks replaced)")
    duplicates: int = Field(0, description="Documents not stored twice (same id or identifier)")
    failures: int = Field(0, description="Files or records that could not be ingested")
    skipped_files: int = Field(0, description="Files that are not documents (images, .txt, …)")
    seconds: float = Field(0.0, description="Time the pipeline ran")
    relinked: int = Field(
        0, description="Unchanged documents whose stored trial/paper links were rewritten"
    )
    docs_with_links: int = Field(
        0, description="Documents read that name a trial (NCT number) or list a publication"
    )
    link_mentions: dict[str, int] = Field(
        default_factory=dict,
        description="Trial/paper mentions read, by where they were found (e.g. DataBankList)",
    )

    @computed_field(description="Documents stored in this job")  # type: ignore[prop-decorator]
    @property
    def stored_documents(self) -> int:
        """Documents written in this job."""
        return sum(self.documents.values())


class JobEntry(BaseModel):
    """One line of ``litrag ingest --report``: a failure, duplicate, skip or replacement."""

    kind: ReportKind
    file: str = Field(description="The file (as uploaded) or archive member it concerns")
    record: str | None = Field(None, description="The record or member inside the file")
    reason: str
    doc_id: str | None = None


class JobFile(BaseModel):
    """One uploaded file."""

    name: str = Field(description="Its name as uploaded (folders kept, made safe)")
    bytes: int


class JobSummary(BaseModel):
    """A job without its report lines."""

    id: str
    state: JobState = Field(
        description="queued → running → succeeded (even with per-file failures: see counts) or "
        "failed (the job itself stopped: store error, spooled files lost); or cancelled "
        "(DELETE /v1/jobs/{id}: a queued job never ran, a running one stopped with what it had "
        "stored in counts; never run again; uploading the same files again finishes the work)"
    )
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    phase: str = Field(
        "", description="What a running job does now (ingesting, indexing, cancelling)"
    )
    files: list[JobFile] = Field(default_factory=list)
    total_bytes: int = 0
    counts: JobCounts = Field(default_factory=JobCounts)
    entries_total: int = Field(0, description="Report lines the job produced so far")
    error: str | None = Field(None, description="Why a failed job stopped")
    collection: str | None = None
    points: int | None = Field(None, description="Points in the collection once the job ended")
    attempts: int = Field(0, description="Runs started (a job running at a crash runs again)")
    position: int | None = Field(None, description="Jobs ahead of a queued job")
    cancel_requested_at: datetime | None = Field(
        None,
        description="When DELETE /v1/jobs/{id} asked this job to stop (a running job stops at "
        "its next embedding call, then its state is cancelled)",
    )


class Job(JobSummary):
    """A job with its report lines (``entries[i]`` is report line ``entries_from + i``)."""

    entries: list[JobEntry] = Field(default_factory=list)
    entries_from: int = 0


class JobList(BaseModel):
    """Recent jobs, newest first."""

    jobs: list[JobSummary]


@dataclass
class IngestRequest:
    """What a runner ingests and where: ``paths`` into ``store`` with these models, telling
    ``on_report`` each report line and ``on_progress`` the counters after each step."""

    settings: Settings
    store: VectorStore
    embedder: Embedder
    sparse: SparseEncoder
    paths: list[Path]
    on_report: Callable[[JobEntry], None]
    on_progress: Callable[[JobCounts], None]
    #: the folder the paths are in: stored ``source_path`` and report file names are relative
    #: to it (the spool folder of an upload is not the document's name)
    root: Path | None = None


#: A runner ingests what the request names and returns the final counters; a store failure
#: propagates (StoreError), a bad input is a report line.
IngestRunner = Callable[[IngestRequest], JobCounts]


def load_runner(name: str = "pipeline") -> IngestRunner:
    """The ingest runner registered as ``name`` in the ``litrag.ingest`` entry points."""
    for ep in entry_points(group=RUNNER_GROUP):
        if ep.name == name:
            runner: IngestRunner = ep.load()
            return runner
    raise ConfigError(
        f"no ingest runner {name!r} registered (entry point group {RUNNER_GROUP!r}): "
        "reinstall litrag (pip install -e .)"
    )
