"""What the job worker does at start with jobs a dead service left behind (records on disk
through the real JobFolder; the runner is a recording function: no job of these reaches it
unless it must run again, and then it fails at once: the test gives it no store)."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from core.config import Settings
from core.jobs import IngestRequest, JobCounts, JobFile, JobSummary
from service.jobs.manager import JobManager, JobResources
from service.jobs.records import JobFolder
from service.jobs.recovery import MAX_ATTEMPTS
from tests.service.conftest import with_overrides


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


def _queued(folder: JobFolder, job_id: str) -> None:
    folder.files(job_id).mkdir(parents=True)
    folder.save(JobSummary(id=job_id, state="queued", created_at=datetime.now(UTC)))


def _wait(manager: JobManager, job_id: str, state: str) -> JobSummary:
    deadline = time.monotonic() + 10
    while (job := {j.id: j for j in manager.recent(10)}[job_id]).state != state:
        assert time.monotonic() < deadline, job
        time.sleep(0.02)
    return job


def _until_stopped(request: IngestRequest) -> JobCounts:
    """A runner that works until the job must stop (its progress call raises then)."""
    while True:
        request.on_progress(JobCounts())
        time.sleep(0.01)


def _resources() -> JobResources:
    """Not used by the runners here beyond the embedder wrapper (no store is opened)."""
    return JobResources(store=None, embedder=None, sparse=None)  # type: ignore[arg-type]


def test_a_clean_shutdown_requeues_the_job_without_using_an_attempt(tmp_path: Path) -> None:
    """Stopped by shutdown: saved ``queued`` with its attempts unchanged, so restarts never fail
    it as a job the service keeps dying in (only crashes count towards MAX_ATTEMPTS)."""
    folder = JobFolder(tmp_path / "jobs")
    job_id = "20261130T000000000001"
    _queued(folder, job_id)
    for _ in range(MAX_ATTEMPTS + 1):
        manager = JobManager(Settings(), folder, _until_stopped, _resources)
        manager.start()
        _wait(manager, job_id, "running")
        manager.stop()
        manager.join(10)
        (on_disk,) = folder.load_all()
        assert on_disk.state == "queued" and on_disk.attempts == 0, on_disk
    assert folder.files(job_id).is_dir()


def test_a_disk_error_as_a_job_starts_fails_it(tmp_path: Path) -> None:
    """Its report cannot be opened: the job is failed (before, it stayed ``running`` in memory
    for good and the error went to the log only)."""
    folder = JobFolder(tmp_path / "jobs")
    job_id = "20261130T000000000001"
    _queued(folder, job_id)
    folder.report_path(job_id).mkdir()  # the open for writing fails: IsADirectoryError
    manager = JobManager(Settings(), folder, _until_stopped, _resources)
    manager.start()
    try:
        job = _wait(manager, job_id, "failed")
        assert job.error and "IsADirectoryError" in job.error
        assert manager.stats().running == 0
    finally:
        manager.stop()
        manager.join(5)


def test_a_cancel_as_the_worker_picks_the_job_up_answers_running(tmp_path: Path) -> None:
    """A cancel between the worker taking the job off the queue and starting it: the job is
    ``running`` with its cancel asked, and it is cancelled (before: answered ``queued``)."""
    folder = JobFolder(tmp_path / "jobs")
    job_id = "20261130T000000000001"
    _queued(folder, job_id)
    picked, go = threading.Event(), threading.Event()

    class Gated(JobManager):
        def _run(self, job_id: str) -> None:  # the window under test, held open
            picked.set()
            go.wait(10)
            super()._run(job_id)

    manager = Gated(Settings(), folder, _until_stopped, _resources)
    manager.start()
    try:
        assert picked.wait(10)
        answer = manager.cancel(job_id)
        assert answer.state == "running" and answer.cancel_requested_at is not None, answer
        go.set()
        _wait(manager, job_id, "cancelled")
    finally:
        go.set()
        manager.stop()
        manager.join(5)


def test_spooled_files_without_a_live_job_are_removed_at_start(tmp_path: Path) -> None:
    """Files with no record (a save that failed), or of a job that ended (a crash between its
    end and their removal), and half-written records go; those of queued jobs, of the failed jobs
    kept on purpose (jobs_keep_failed_files) and of unreadable records stay."""
    folder = JobFolder(tmp_path / "jobs")
    now = datetime.now(UTC)
    ids = [f"20261130T00000000000{i}" for i in range(7)]
    orphan, succeeded, old_failed, new_failed, queued, unreadable, tmp_only = ids
    for job_id in ids[:6]:
        folder.files(job_id).mkdir(parents=True)
    folder.save(JobSummary(id=succeeded, state="succeeded", created_at=now, finished_at=now))
    for job_id in (old_failed, new_failed):
        folder.save(JobSummary(id=job_id, state="failed", created_at=now, finished_at=now))
    (folder.records / f"{unreadable}.json").write_text("{not json")
    (folder.records / f"{tmp_only}.json.tmp").write_text("{half")
    settings = with_overrides(Settings(), service={"jobs_keep_failed_files": 1})
    folder.save(JobSummary(id=queued, state="queued", created_at=now))  # it runs until stopped
    manager = JobManager(settings, folder, _until_stopped, _resources)
    manager.start()
    try:
        left = {p.name for p in folder.files_root.iterdir()}
        assert orphan not in left and succeeded not in left and old_failed not in left
        assert {new_failed, unreadable, queued} <= left
        assert not (folder.records / f"{tmp_only}.json.tmp").exists()
    finally:
        manager.stop()
        manager.join(5)


def test_a_record_that_cannot_be_saved_leaves_no_files(tmp_path: Path) -> None:
    folder = JobFolder(tmp_path / "jobs")
    spooled = tmp_path / "spooled"
    spooled.mkdir()
    (spooled / "a.xml").write_text("<a/>")
    folder.files_root.mkdir(parents=True)
    folder.records.parent.mkdir(parents=True, exist_ok=True)
    folder.records.write_text("not a folder")  # the save fails: FileExistsError / NotADirectory
    manager = JobManager(Settings(), folder, _until_stopped, _no_resources)
    with pytest.raises((FileExistsError, NotADirectoryError)):
        manager.submit(spooled, [JobFile(name="a.xml", bytes=4)])
    assert not list(folder.files_root.iterdir())
    assert manager.recent(10) == []
