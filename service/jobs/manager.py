"""The ingest job queue: one worker thread runs uploaded jobs one at a time, oldest first, while
the service goes on answering.

- A job is queued only once its upload is fully spooled on disk (``service.jobs.spool``); from
  then on it does not depend on the client: a disconnect changes nothing.
- The worker runs the ``litrag.ingest`` runner (the ingestion pipeline) with the service's own
  store, sparse encoder and embedder: the model queue's ``bulk`` lane, so search queries are
  embedded first. At the end it builds the index (Edge ``optimize``) and records the point count.
- Records are persisted (``service.jobs.records``). At start, a job that was queued or running
  when the process died runs again from its spooled files: the pipeline skips what is already
  stored as it is and rewrites the rest, so a rerun repairs the store (``service.jobs.recovery``
  says which jobs do not).
- A succeeded job's files are removed; a failed job's are kept (the newest
  ``jobs_keep_failed_files``) for a rerun by hand.
- ``cancel``: a queued job leaves the queue at once; a running one is asked to stop and ends at
  its next embedding call (or the next document it finds already stored), leaving the store as a
  crash would: whole batches written, the rest not, which a rerun of the same files repairs. A
  cancelled job's files are removed and it never runs again, not even after a restart.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from core.config import Settings
from core.embedding import Embedder
from core.errors import EmbeddingError, LitragError
from core.jobs import (
    ENDED_STATES,
    IngestRequest,
    IngestRunner,
    Job,
    JobCounts,
    JobEntry,
    JobFile,
    JobSummary,
)
from core.sparse import SparseEncoder
from core.store import VectorStore
from service.errors import JobEnded, JobQueueFull, NotFound
from service.jobs.records import JobFolder, new_job_id
from service.jobs.recovery import recover
from service.jobs.stopping import StoppableEmbedder
from service.jobs.tally import JobStats, JobTally, progress_of

log = logging.getLogger("litrag.service")

#: Report lines returned by one GET of a job (``entries_from`` pages through the rest).
ENTRIES_PAGE = 1000
#: Seconds between writes of a running job's record (its counters).
SAVE_EVERY_S = 1.0


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
        self._cancel: str | None = None  # the running job DELETE asked to stop
        self._stopping = False
        self.tally = JobTally()
        self._thread = threading.Thread(target=self._work, name="litrag-ingest-jobs", daemon=True)

    # -- lifecycle ----------------------------------------------------------------------------
    def start(self) -> None:
        """Load the records, queue again what was unfinished, start the worker."""
        self.folder.clear_incoming()
        for old in self.folder.load_all():
            job = recover(old)
            if job != old:
                self.folder.save(job)
                if job.state != "queued":
                    self.tally.ended(job.state)
            if job.state == "queued":
                self._pending.append(job.id)
            elif job.state == "cancelled":
                self.folder.delete_files(job.id)  # a crash may have left them
            self._jobs[job.id] = job
        # the failed jobs whose files are kept on purpose, and those that still run
        failed = sorted(j.id for j in self._jobs.values() if j.state == "failed")
        keep = failed[max(0, len(failed) - self.settings.service.jobs_keep_failed_files) :]
        keep += [j.id for j in self._jobs.values() if j.state not in ENDED_STATES]
        self.folder.sweep(keep=set(keep), known=set(self._jobs))
        self._thread.start()

    def stop(self) -> None:
        """Ask the worker to stop: a running job ends at its next embedding call and is saved as
        ``queued`` (the run not counted as an attempt), so the next start runs it again."""
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
            try:
                self.folder.save(job)
            except BaseException:  # no record: its files would be left behind for good
                self.folder.delete_files(job_id)
                raise
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

    def cancel(self, job_id: str) -> Job:
        """Cancel the job: a queued one at once (state ``cancelled``, files removed); a running
        one is asked to stop (``cancel_requested_at`` set, still ``running`` until the worker
        reaches its next embedding call). A cancelled job is returned as it is. NotFound;
        JobEnded when it has succeeded or failed."""
        removed = False
        with self._cond:
            job = self._jobs.get(job_id)
            if job is None:
                raise NotFound(f"no ingest job {job_id!r}", param="job_id")
            if job.state in ("succeeded", "failed"):
                raise JobEnded(
                    f"ingest job {job_id!r} has already ended ({job.state} at "
                    f"{job.finished_at:%Y-%m-%dT%H:%M:%SZ}): there is nothing to cancel",
                    param="job_id",
                )
            now = _now()
            if job.state == "cancelled" or job.cancel_requested_at is not None:
                pass  # cancelled before, or asked to stop already: the same answer again
            elif job_id == self._current:
                self._cancel = job_id
                job = job.model_copy(update={"cancel_requested_at": now, "phase": "cancelling"})
                self._jobs[job_id] = job
                log.info("ingest job %s: cancel requested, it stops at its next step", job_id)
            else:  # queued: it never runs
                if job_id in self._pending:
                    self._pending.remove(job_id)
                job = job.model_copy(
                    update={
                        "state": "cancelled",
                        "phase": "",
                        "cancel_requested_at": now,
                        "finished_at": now,
                        "position": None,
                    }
                )
                self._jobs[job_id] = job
                self.tally.ended("cancelled")
                removed = True
                log.info("ingest job %s: cancelled before it ran", job_id)
            # saved under the lock: the worker must not write an older record after this one
            self.folder.save(job)
        if removed:
            self.folder.delete_files(job_id)
        return self.get(job_id)

    def stats(self) -> JobStats:
        """The queue now and the counters since the service started (for /metrics)."""
        with self._cond:
            queued, running = len(self._pending), int(self._current is not None)
        return self.tally.snapshot(queued, running, self.settings.service.max_queued_jobs)

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
                # running from here on, under the same lock: a cancel now stops a running job
                # (before, one landing before _run answered "queued" and was then ignored)
                self._jobs[job_id] = self._jobs[job_id].model_copy(
                    update={"state": "running", "position": None}
                )
            try:
                self._run(job_id)
            except Exception:  # the worker must outlive any one job
                log.exception("ingest job %s: unexpected error", job_id)
            finally:
                with self._cond:
                    self._current = None
                    self._cancel = None
            self._trim()

    def _update(self, job_id: str, *, save: bool = True, **fields: Any) -> JobSummary:
        with self._cond:
            job = self._jobs[job_id].model_copy(update=fields)
            self._jobs[job_id] = job
            if save:  # under the lock: a cancel's record is never overwritten by an older one
                self.folder.save(job)
        return job

    def _run(self, job_id: str) -> None:
        self.tally.run_started()
        try:
            job = self._update(
                job_id,
                state="running",
                phase="cancelling" if self._cancel == job_id else "ingesting",
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
                self._ingest(job, files, report)
        except BaseException as exc:  # a disk error saving the record at start too
            if self._cancel == job_id:
                self._cancelled(job_id)
            elif self._stopping:
                self._stopped(job_id)
            else:
                reason = (
                    str(exc) if isinstance(exc, LitragError) else f"{type(exc).__name__}: {exc}"
                )
                log.error("ingest job %s failed: %s", job_id, reason)
                self._fail(job_id, reason)

    def _stopped(self, job_id: str) -> None:
        """The service is stopping: the job is queued again, and this run is not counted as one
        the service died in (only crashes count towards recovery.MAX_ATTEMPTS)."""
        log.warning("job %s stopped by shutdown; it runs again at the next start", job_id)
        attempts = max(0, self._jobs[job_id].attempts - 1)
        try:
            self._update(job_id, state="queued", phase="", attempts=attempts)
        except OSError as exc:  # left "running" on disk: the next start reruns it all the same
            log.error("ingest job %s: its record could not be saved: %s", job_id, exc)

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
            # the pipeline's own thread (not its writer): stop here too, so that a job of
            # documents that are all stored already stops before it reads them all
            if threading.current_thread() is self._thread and (reason := self._stop_reason(job_id)):
                raise EmbeddingError(reason)
            now = time.monotonic()
            save = now - last_save[0] >= SAVE_EVERY_S
            if save:
                last_save[0] = now
            with self._cond:
                if progress_of(counts) < progress_of(self._jobs[job_id].counts):
                    return  # an older snapshot from the pipeline's other thread
            self.tally.progress(counts)
            self._update(job_id, save=save, counts=counts)

        counts = self._runner(
            IngestRequest(
                settings=self.settings,
                store=resources.store,
                embedder=StoppableEmbedder(resources.embedder, lambda: self._stop_reason(job_id)),
                sparse=resources.sparse,
                paths=[files / f.name for f in job.files],
                on_report=on_report,
                on_progress=on_progress,
                root=files,
            )
        )
        # a cancel that comes now is too late: every chunk is embedded and written
        self.tally.progress(counts)
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
        self.tally.ended("succeeded")
        self.folder.delete_files(job_id)
        log.info(
            "ingest job %s: %d documents, %d chunks, %d failures",
            job_id,
            counts.stored_documents,
            counts.chunks,
            counts.failures,
        )

    def _fail(self, job_id: str, reason: str) -> None:
        """Failed, in memory even when the record cannot be saved (the disk may be why)."""
        self.tally.ended("failed")
        try:
            self._update(job_id, state="failed", phase="", finished_at=_now(), error=reason)
        except OSError as exc:  # _update set the state in memory before it tried to save
            log.error("ingest job %s: its record could not be saved: %s", job_id, exc)

    def _cancelled(self, job_id: str) -> None:
        """The running job stopped on its cancel: what it stored stays (its counts)."""
        try:
            store = self._resources().store
            where: dict[str, Any] = {"collection": store.collection, "points": store.count()}
        except Exception:  # the store failed under the job: the record says less, nothing else
            where = {}
        job = self._update(job_id, state="cancelled", phase="", finished_at=_now(), **where)
        self.tally.ended("cancelled")
        self.folder.delete_files(job_id)
        log.info(
            "ingest job %s cancelled: %d documents, %d chunks stored before it stopped",
            job_id,
            job.counts.stored_documents,
            job.counts.chunks,
        )

    def _stop_reason(self, job_id: str) -> str | None:
        """Why the running job must stop now, or None."""
        if self._cancel == job_id:
            return "the job was cancelled"
        if self._stopping:
            return "the service is stopping"
        return None

    def _trim(self) -> None:
        """Keep ``jobs_history`` finished records and the files of the newest
        ``jobs_keep_failed_files`` failed jobs."""
        service = self.settings.service
        with self._cond:
            finished = sorted(i for i, j in self._jobs.items() if j.state in ENDED_STATES)
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
