"""The ingest job queue: one worker thread runs uploaded jobs one at a time, oldest first, while
the service goes on answering.

- A job is queued only once its upload is fully spooled on disk (``service.jobs.spool``); from
  then on it does not depend on the client: a disconnect changes nothing.
- The worker runs the ``litrag.ingest`` runner (the ingestion pipeline) with the service's own
  store, sparse encoder and embedder: the model queue's ``bulk`` lane, so search queries are
  embedded first. At the end it builds the index (Edge ``optimize``) and records the point count.
- Records are persisted (``service.jobs.records``). At start, a job that was queued or running
  when the process died runs again from its spooled files: the pipeline skips what is already
  stored as it is and rewrites the rest, so a rerun repairs the store.
- A succeeded job's files are removed; a failed job's are kept (the newest
  ``jobs_keep_failed_files``) for a rerun by hand.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from core.config import Settings
from core.embedding import Embedder, Matrix, WrappedEmbedder
from core.errors import EmbeddingError, LitragError
from core.jobs import IngestRequest, IngestRunner, Job, JobCounts, JobEntry, JobFile, JobSummary
from core.sparse import SparseEncoder
from core.store import VectorStore
from service.errors import JobQueueFull, NotFound
from service.jobs.records import JobFolder, new_job_id

log = logging.getLogger("litrag.service")

#: Report lines returned by one GET of a job (``entries_from`` pages through the rest).
ENTRIES_PAGE = 1000
#: Seconds between writes of a running job's record (its counters).
SAVE_EVERY_S = 1.0
#: Runs a job gets when the service keeps dying during it (e.g. a file that exhausts memory):
#: after that it is failed at start instead of taking the service down again at every restart.
MAX_ATTEMPTS = 3


@dataclass
class JobResources:
    """What a job ingests with: the service's store, bulk-lane embedder and sparse encoder."""

    store: VectorStore
    embedder: Embedder
    sparse: SparseEncoder


def _now() -> datetime:
    return datetime.now(UTC)


class JobManager:
    """Queued and recent ingest jobs and the worker thread that runs them."""

    def __init__(
        self,
        settings: Settings,
        folder: JobFolder,
        runner: IngestRunner,
        resources: Callable[[], JobResources],
    ) -> None:
        self.settings = settings
        self.folder = folder
        self._runner = runner
        self._resources = resources
        self._cond = threading.Condition()
        self._jobs: dict[str, JobSummary] = {}
        self._pending: deque[str] = deque()
        self._current: str | None = None
        self._stopping = False
        self._thread = threading.Thread(target=self._work, name="litrag-ingest-jobs", daemon=True)

    # -- lifecycle ----------------------------------------------------------------------------
    def start(self) -> None:
        """Load the records, queue again what was unfinished, start the worker."""
        self.folder.clear_incoming()
        for job in self.folder.load_all():
            if job.state == "running" and job.attempts >= MAX_ATTEMPTS:
                job = job.model_copy(
                    update={
                        "state": "failed",
                        "phase": "",
                        "finished_at": _now(),
                        "error": f"the service stopped during each of this job's {job.attempts} "
                        "runs; it is not run again (its files are kept for a rerun by hand)",
                    }
                )
                log.error("job %s: %s", job.id, job.error)
                self.folder.save(job)
            elif job.state in ("queued", "running"):
                if job.state == "running":
                    log.warning(
                        "job %s was running when the service stopped: running it again", job.id
                    )
                job = job.model_copy(update={"state": "queued", "phase": ""})
                self.folder.save(job)
                self._pending.append(job.id)
            self._jobs[job.id] = job
        self._thread.start()

    def stop(self) -> None:
        """Ask the worker to stop: a running job ends at its next embedding call and stays
        ``running`` on disk, so the next start runs it again."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()

    def join(self, timeout: float) -> None:
        """Wait up to ``timeout`` seconds for the worker to end."""
        if self._thread.is_alive():
            self._thread.join(timeout)

    # -- requests -----------------------------------------------------------------------------
    def check_room(self) -> None:
        """Raise JobQueueFull when ``max_queued_jobs`` jobs already wait."""
        limit = self.settings.service.max_queued_jobs
        with self._cond:
            if len(self._pending) >= limit:
                raise JobQueueFull(
                    f"{len(self._pending)} ingest jobs are waiting, the limit is {limit} "
                    "(LITRAG_SERVICE__MAX_QUEUED_JOBS): try again when one has finished"
                )

    def submit(self, spooled: Path, files: list[JobFile]) -> JobSummary:
        """Queue a job for the upload spooled in ``spooled`` (moved into the jobs folder)."""
        job_id = new_job_id()
        job = JobSummary(
            id=job_id,
            state="queued",
            created_at=_now(),
            files=files,
            total_bytes=sum(f.bytes for f in files),
        )
        with self._cond:
            self.check_room()  # again: other uploads may have filled the queue meanwhile
            spooled.rename(self.folder.files(job_id))
            self.folder.save(job)
            self._jobs[job_id] = job
            self._pending.append(job_id)
            self._cond.notify_all()
            return self._with_position(job)

    def get(self, job_id: str, entries_from: int = 0) -> Job:
        """The job with up to ENTRIES_PAGE report lines from ``entries_from``; NotFound."""
        with self._cond:
            job = self._jobs.get(job_id)
            if job is None:
                raise NotFound(f"no ingest job {job_id!r}", param="job_id")
            job = self._with_position(job)
        entries = self.folder.read_entries(job_id, entries_from, ENTRIES_PAGE)
        return Job(**job.model_dump(), entries=entries, entries_from=entries_from)

    def recent(self, limit: int) -> list[JobSummary]:
        """The ``limit`` newest jobs, newest first."""
        with self._cond:
            ids = sorted(self._jobs, reverse=True)[:limit]
            return [self._with_position(self._jobs[i]) for i in ids]

    def _with_position(self, job: JobSummary) -> JobSummary:
        if job.state != "queued":
            return job
        ahead = list(self._pending).index(job.id) if job.id in self._pending else 0
        return job.model_copy(update={"position": ahead + (self._current is not None)})

    # -- the worker ---------------------------------------------------------------------------
    def _work(self) -> None:
        while True:
            with self._cond:
                while not self._pending and not self._stopping:
                    self._cond.wait()
                if self._stopping:
                    return
                job_id = self._pending.popleft()
                self._current = job_id
            try:
                self._run(job_id)
            except Exception:  # the worker must outlive any one job
                log.exception("ingest job %s: unexpected error", job_id)
            finally:
                with self._cond:
                    self._current = None
            self._trim()

    def _update(self, job_id: str, *, save: bool = True, **fields: Any) -> JobSummary:
        with self._cond:
            job = self._jobs[job_id].model_copy(update=fields)
            self._jobs[job_id] = job
        if save:
            self.folder.save(job)
        return job

    def _run(self, job_id: str) -> None:
        job = self._update(
            job_id,
            state="running",
            phase="ingesting",
            started_at=_now(),
            finished_at=None,
            attempts=self._jobs[job_id].attempts + 1,
            counts=JobCounts(),
            entries_total=0,
            error=None,
            position=None,
        )
        files = self.folder.files(job_id)
        if not files.is_dir():
            self._fail(job_id, f"the spooled files of this job are gone ({files})")
            return
        with self.folder.report_path(job_id).open("w", encoding="utf-8") as report:
            try:
                self._ingest(job, files, report)
            except BaseException as exc:
                if self._stopping:
                    log.warning(
                        "job %s stopped by shutdown; it runs again at the next start", job_id
                    )
                    return
                reason = (
                    str(exc) if isinstance(exc, LitragError) else f"{type(exc).__name__}: {exc}"
                )
                log.error("ingest job %s failed: %s", job_id, reason)
                self._fail(job_id, reason)

    def _ingest(self, job: JobSummary, files: Path, report: IO[str]) -> None:
        resources = self._resources()
        last_save = [time.monotonic()]
        job_id = job.id

        def on_report(entry: JobEntry) -> None:
            report.write(entry.model_dump_json() + "\n")
            report.flush()
            with self._cond:
                self._jobs[job_id] = self._jobs[job_id].model_copy(
                    update={"entries_total": self._jobs[job_id].entries_total + 1}
                )

        def on_progress(counts: JobCounts) -> None:
            now = time.monotonic()
            save = now - last_save[0] >= SAVE_EVERY_S
            if save:
                last_save[0] = now
            self._update(job_id, save=save, counts=counts)

        counts = self._runner(
            IngestRequest(
                settings=self.settings,
                store=resources.store,
                embedder=_Stoppable(resources.embedder, self),
                sparse=resources.sparse,
                paths=[files / f.name for f in job.files],
                on_report=on_report,
                on_progress=on_progress,
                root=files,
            )
        )
        self._update(job_id, phase="indexing", counts=counts)
        resources.store.optimize()
        self._update(
            job_id,
            state="succeeded",
            phase="",
            finished_at=_now(),
            counts=counts,
            collection=resources.store.collection,
            points=resources.store.count(),
        )
        self.folder.delete_files(job_id)
        log.info(
            "ingest job %s: %d documents, %d chunks, %d failures",
            job_id,
            counts.stored_documents,
            counts.chunks,
            counts.failures,
        )

    def _fail(self, job_id: str, reason: str) -> None:
        self._update(job_id, state="failed", phase="", finished_at=_now(), error=reason)

    def _trim(self) -> None:
        """Keep ``jobs_history`` finished records and the files of the newest
        ``jobs_keep_failed_files`` failed jobs."""
        service = self.settings.service
        with self._cond:
            finished = sorted(
                i for i, j in self._jobs.items() if j.state in ("succeeded", "failed")
            )
            dropped = finished[: max(0, len(finished) - service.jobs_history)]
            for job_id in dropped:
                del self._jobs[job_id]
            failed = sorted(i for i, j in self._jobs.items() if j.state == "failed")
        for job_id in dropped:
            self.folder.delete(job_id)
        for job_id in failed[: max(0, len(failed) - service.jobs_keep_failed_files)]:
            self.folder.delete_files(job_id)

    @property
    def stopping(self) -> bool:
        """True once :meth:`stop` was called."""
        return self._stopping


class _Stoppable(WrappedEmbedder):
    """The job's embedder: refuses to start another call once the service is stopping, so a
    running job ends soon (and runs again at the next start)."""

    def __init__(self, inner: Embedder, manager: JobManager) -> None:
        super().__init__(inner)
        self._manager = manager

    def embed(self, texts: Sequence[str]) -> Matrix:
        if self._manager.stopping:
            raise EmbeddingError("the service is stopping")
        return self._inner.embed(texts)
