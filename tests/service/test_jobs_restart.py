"""What the job worker does at start with jobs a dead service left behind (records on disk
through the real JobFolder; the runner is a recording function: no job of these reaches it
unless it must run again, and then it fails at once: the test gives it no store)."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

from core.config import Settings
from core.jobs import IngestRequest, JobCounts, JobSummary
from service.jobs.manager import JobManager, JobResources
from service.jobs.records import JobFolder
from service.jobs.recovery import MAX_ATTEMPTS


def _left_behind(folder: JobFolder, job_id: str, attempts: int) -> None:
    folder.files(job_id).mkdir(parents=True)
    folder.save(
        JobSummary(id=job_id, state="running", created_at=datetime.now(UTC), attempts=attempts)
    )


def _no_resources() -> JobResources:
    raise RuntimeError("no store in this test")


def test_a_job_the_service_keeps_dying_in_is_failed_not_rerun_forever(tmp_path: Path) -> None:
    folder = JobFolder(tmp_path / "jobs")
    _left_behind(folder, "20261130T000000000001", attempts=MAX_ATTEMPTS)
    _left_behind(folder, "20261130T000000000002", attempts=1)
    ran: list[IngestRequest] = []

    def runner(request: IngestRequest) -> JobCounts:
        ran.append(request)
        return JobCounts()

    manager = JobManager(Settings(), folder, runner, _no_resources)
    manager.start()
    try:
        stuck = manager.get("20261130T000000000001")
        assert stuck.state == "failed" and stuck.attempts == MAX_ATTEMPTS
        assert stuck.error and f"each of this job's {MAX_ATTEMPTS} runs" in stuck.error
        assert folder.files(stuck.id).is_dir()  # kept for a rerun by hand
        # the record on disk says so too: the next start does not pick it up again
        on_disk = {j.id: j for j in folder.load_all()}
        assert on_disk[stuck.id].state == "failed"
        # a job with runs left runs again (its second run), and fails here for want of a store
        deadline = time.monotonic() + 10
        while (again := manager.get("20261130T000000000002")).state != "failed":
            assert time.monotonic() < deadline, again
            time.sleep(0.05)
        assert again.attempts == 2 and again.error == "RuntimeError: no store in this test"
    finally:
        manager.stop()
        manager.join(5)
    assert not ran


def test_cancelled_jobs_are_never_run_again(tmp_path: Path) -> None:
    """A cancelled job stays cancelled; one whose cancel was asked while it ran, but the service
    died before it stopped, is cancelled at start. Neither reaches the runner; their leftover
    files are removed."""
    folder = JobFolder(tmp_path / "jobs")
    ended, stopping = "20261130T000000000001", "20261130T000000000002"
    for job_id in (ended, stopping):
        folder.files(job_id).mkdir(parents=True)
        (folder.files(job_id) / "a.xml").write_text("<a/>")
    now = datetime.now(UTC)
    folder.save(JobSummary(id=ended, state="cancelled", created_at=now, finished_at=now))
    folder.save(
        JobSummary(
            id=stopping, state="running", created_at=now, attempts=1, cancel_requested_at=now
        )
    )
    ran: list[IngestRequest] = []

    def runner(request: IngestRequest) -> JobCounts:
        ran.append(request)
        return JobCounts()

    manager = JobManager(Settings(), folder, runner, _no_resources)
    manager.start()
    try:
        for job_id in (ended, stopping):
            job = manager.get(job_id)
            assert job.state == "cancelled" and job.finished_at is not None, job
            assert not folder.files(job_id).exists()
        assert {j.id: j.state for j in folder.load_all()} == {
            ended: "cancelled",
            stopping: "cancelled",
        }
        stats = manager.stats()
        # only the job this start cancelled ended in this process
        assert stats.ended == {"cancelled": 1} and stats.queued == 0 and stats.running == 0
        time.sleep(0.2)  # the worker had the time to pick a job up, if one had been queued
        assert manager.get(stopping).attempts == 1
    finally:
        manager.stop()
        manager.join(5)
    assert not ran
