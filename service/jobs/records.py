"""Job records on disk, so ``GET /v1/jobs`` and unfinished jobs survive a restart.

Layout of the jobs folder: ``jobs/<id>.json`` (the :class:`~core.jobs.JobSummary`, replaced
atomically), ``jobs/<id>.report.jsonl`` (report lines, appended as they come), ``files/<id>/``
(the spooled upload, removed once the job succeeded) and ``incoming/`` (uploads still arriving;
whatever is left there at start came from a process that died mid-upload and is removed).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import uuid
from datetime import UTC, datetime
from pathlib import Path

from pydantic import ValidationError

from core.errors import LitragError
from core.jobs import JobEntry, JobSummary

log = logging.getLogger("litrag.service")


def new_job_id() -> str:
    """A unique id that sorts by creation time."""
    return f"{datetime.now(UTC):%Y%m%dT%H%M%S%f}-{uuid.uuid4().hex[:6]}"


class JobFolder:
    """The jobs folder: records, report lines and spooled files."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.records = root / "jobs"
        self.files_root = root / "files"
        self.incoming = root / "incoming"

    def _ensure(self) -> None:
        # created on first use: a service that never receives an upload leaves no trace
        for d in (self.records, self.files_root, self.incoming):
            d.mkdir(parents=True, exist_ok=True)

    def files(self, job_id: str) -> Path:
        """Where the job's upload is spooled."""
        return self.files_root / job_id

    def incoming_folder(self) -> Path:
        """A fresh folder (not created) for an upload that is arriving."""
        self._ensure()
        return self.incoming / uuid.uuid4().hex

    def clear_incoming(self) -> None:
        """Remove uploads that never completed (their process died mid-upload)."""
        if not self.incoming.is_dir():
            return
        for leftover in self.incoming.iterdir():
            shutil.rmtree(leftover, ignore_errors=True)

    def sweep(self, keep: set[str], known: set[str]) -> None:
        """Remove spooled files of jobs not in ``keep``: with no record (a save that failed, a
        crash between the two), or of a job in ``known`` that ended (a crash left them); and
        half-written records (``*.json.tmp``). A job whose record is unreadable keeps them."""
        if self.files_root.is_dir():
            for leftover in self.files_root.iterdir():
                unreadable = (self.records / f"{leftover.name}.json").exists()
                if leftover.name not in keep and (leftover.name in known or not unreadable):
                    log.warning("removing leftover spooled files %s", leftover)
                    shutil.rmtree(leftover, ignore_errors=True)
        if self.records.is_dir():
            for tmp in self.records.glob("*.json.tmp"):
                tmp.unlink(missing_ok=True)

    def save(self, job: JobSummary) -> None:
        """Write the record atomically (a crash leaves the old or the new one)."""
        self._ensure()
        path = self.records / f"{job.id}.json"
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(job.model_dump_json(indent=1))
        os.replace(tmp, path)

    def load_all(self) -> list[JobSummary]:
        """Every readable record, oldest first; unreadable ones are logged and left alone."""
        jobs: list[JobSummary] = []
        for path in sorted(self.records.glob("*.json")):
            try:
                jobs.append(JobSummary.model_validate_json(path.read_text()))
            except (OSError, ValidationError) as exc:
                log.error("unreadable job record %s: %s", path, exc)
        return jobs

    def report_path(self, job_id: str) -> Path:
        """The job's report lines (JSON lines)."""
        return self.records / f"{job_id}.report.jsonl"

    def read_entries(self, job_id: str, start: int, limit: int) -> list[JobEntry]:
        """Report lines ``start`` … ``start + limit - 1`` (only complete lines)."""
        path = self.report_path(job_id)
        out: list[JobEntry] = []
        try:
            with path.open(encoding="utf-8") as fh:
                for i, line in enumerate(fh):
                    if i < start:
                        continue
                    if len(out) >= limit or not line.endswith("\n"):
                        break
                    out.append(JobEntry.model_validate(json.loads(line)))
        except FileNotFoundError:
            pass
        except (OSError, ValueError) as exc:  # unreadable or damaged: a 503 that says so
            raise LitragError(
                f"the report lines of ingest job {job_id} cannot be read: {exc}"
            ) from exc
        return out

    def delete(self, job_id: str) -> None:
        """Remove the record, its report lines and its files."""
        for path in (self.records / f"{job_id}.json", self.report_path(job_id)):
            path.unlink(missing_ok=True)
        self.delete_files(job_id)

    def delete_files(self, job_id: str) -> None:
        """Remove the job's spooled upload."""
        shutil.rmtree(self.files(job_id), ignore_errors=True)
