"""Cancelling ingest jobs (``DELETE /v1/jobs/{id}``) and the job metrics, over real HTTP: a real
uvicorn in a thread on a copy of the session's real Edge store, real corpus files, the real
ingestion pipeline (small batches, so a job makes many embedding calls and a cancel lands
between two)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from core.store import VectorStore
from service.state import State
from tests.service.conftest import clean_ingest_points, stored_points
from tests.service.test_jobs import (
    AUTH,
    LIMITS,
    LiveServer,
    serve_copy,
    trials,
    upload,
    wait_job,
)

BATCH = 8  # chunks per embedding call: a legacy trial is about ten chunks, so one call each


@pytest.fixture(scope="module")
def live(store_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """One server for the module, on its own copy of the session store, with small batches."""
    dest = tmp_path_factory.mktemp("jobs-cancel") / "store"
    with serve_copy(store_path, dest, ingest={"batch_size": BATCH}) as server:
        yield server


def job_of(url: str, job_id: str) -> dict[str, Any]:
    job: dict[str, Any] = httpx.get(f"{url}/v1/jobs/{job_id}", headers=AUTH).json()
    return job


def cancel(url: str, job_id: str, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.delete(f"{url}/v1/jobs/{job_id}", headers=AUTH if headers is None else headers)


def metrics(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of /metrics: (name, sorted labels) -> value."""
    r = httpx.get(f"{url}/metrics", headers=AUTH)
    assert r.status_code == 200, r.text
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(r.text)
        for s in family.samples
    }


def sample(
    values: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str
) -> float:
    """One sample's value; 0 when it is absent (a counter with no label set yet)."""
    return values.get((name, tuple(sorted(labels.items()))), 0.0)


def served_store(live: LiveServer) -> VectorStore:
    """The store the running server holds open (read in this process: Edge locks its folder)."""
    state: State = live.app.state.litrag
    assert state.store is not None
    return state.store


def wait_running(url: str, job_id: str, timeout: float = 120) -> dict[str, Any]:
    """Poll until the job has written its first batch (or ended)."""
    deadline = time.monotonic() + timeout
    while True:
        job = job_of(url, job_id)
        if job["counts"]["chunks"] > 0 or job["state"] not in ("queued", "running"):
            return job
        assert time.monotonic() < deadline, job
        time.sleep(0.02)


def test_cancel_needs_the_key_and_a_known_unfinished_job(live: LiveServer) -> None:
    for headers in ({}, {"Authorization": "Bearer wrong"}):
        r = cancel(live.url, "nope", headers=headers)
        assert r.status_code == 401 and r.json()["error"]["type"] == "invalid_api_key", r.text
    missing = cancel(live.url, "nope")
    assert missing.status_code == 404, missing.text
    assert missing.json()["error"] == {
        "type": "not_found",
        "message": "no ingest job 'nope'",
        "param": "job_id",
    }
    # two routes share the path: a 405 names both methods
    for method in ("PUT", "OPTIONS"):
        r = httpx.request(method, f"{live.url}/v1/jobs/nope", headers=AUTH)
        assert r.status_code == 405 and r.headers["allow"] == "DELETE, GET", (method, r.headers)
    doc = httpx.get(f"{live.url}/openapi.json").json()
    op = doc["paths"]["/v1/jobs/{job_id}"]["delete"]
    assert op["operationId"] == "cancel_job"
    assert {"200", "202", "401", "404", "409", "503"} <= set(op["responses"])
    assert "repairs" in op["description"] and "crash" in op["description"]
    for status in ("200", "202"):
        schema = op["responses"][status]["content"]["application/json"]["schema"]
        assert schema == {"$ref": "#/components/schemas/Job"}
    assert "cancelled" in doc["components"]["schemas"]["JobSummary"]["properties"]["state"]["enum"]


def test_cancel_queued_and_running_jobs_then_the_same_upload_repairs_the_store(
    live: LiveServer, corpus: Path, store_path: Path, tmp_path: Path, embedder: Any
) -> None:
    """A queued job cancelled never runs and its files are gone at once; a running one stops
    with what it stored in its counts; uploading the same files again stores the rest and the
    store ends exactly as a clean ingest of them leaves it. /metrics counts all of it."""
    before = metrics(live.url)
    files = trials(corpus, 200, 30)
    running = upload(live.url, files).json()
    seen = wait_running(live.url, running["id"])
    assert seen["state"] == "running", "the job ended before the cancel; make it larger"
    queued = upload(live.url, trials(corpus, 300, 3)).json()
    assert queued["state"] == "queued" and queued["position"] == 1, queued
    spool = live.settings.store.path / "jobs" / "files"
    assert (spool / queued["id"]).is_dir()
    now = metrics(live.url)
    assert sample(now, "litrag_jobs", state="queued") == 1
    assert sample(now, "litrag_jobs", state="running") == 1
    assert sample(now, "litrag_jobs_queue_length") == 1
    assert sample(now, "litrag_jobs_queue_limit") == LIMITS["max_queued_jobs"]

    # the queued job: cancelled at once, never started, files gone
    r = cancel(live.url, queued["id"])
    assert r.status_code == 200, r.text
    gone = r.json()
    assert gone["state"] == "cancelled" and gone["started_at"] is None and gone["attempts"] == 0
    assert gone["finished_at"] and gone["cancel_requested_at"] and gone["position"] is None
    assert not (spool / queued["id"]).exists()
    assert sample(metrics(live.url), "litrag_jobs_queue_length") == 0

    # the running job: asked to stop, stops at its next embedding call
    r = cancel(live.url, running["id"])
    asked = r.json()
    assert r.status_code == (202 if asked["state"] == "running" else 200), r.text
    assert asked["cancel_requested_at"] is not None
    if r.status_code == 202:
        assert asked["phase"] == "cancelling"
    stopped = wait_job(live.url, running["id"])
    assert stopped["state"] == "cancelled", stopped
    assert stopped["attempts"] == 1 and stopped["error"] is None
    assert 0 < stopped["counts"]["documents"]["trial"] < len(files), stopped["counts"]
    assert not (spool / running["id"]).exists()
    partial = stored_points(served_store(live))
    assert stopped["points"] == len(partial) and stopped["collection"]
    # a cancel again answers the same; the queued one never ran meanwhile
    again = cancel(live.url, running["id"])
    assert again.status_code == 200 and again.json()["state"] == "cancelled"
    assert job_of(live.url, queued["id"])["started_at"] is None

    after_cancel = metrics(live.url)
    delta = {
        key: after_cancel.get(key, 0.0) - before.get(key, 0.0)
        for key in after_cancel
        if key[0].startswith("litrag_jobs_")
    }
    assert delta[("litrag_jobs_ended_total", (("state", "cancelled"),))] == 2
    assert delta[("litrag_jobs_ended_total", (("state", "succeeded"),))] == 0
    assert (
        delta[("litrag_jobs_documents_total", (("source_type", "trial"),))]
        == (stopped["counts"]["documents"]["trial"])
    )
    assert delta[("litrag_jobs_chunks_total", ())] == stopped["counts"]["chunks"]
    assert sample(after_cancel, "litrag_jobs", state="running") == 0

    # the same files again: what the cancelled job stored is unchanged, the rest is written
    rerun = wait_job(live.url, upload(live.url, files).json()["id"])
    assert rerun["state"] == "succeeded", rerun
    assert rerun["counts"]["unchanged"] == stopped["counts"]["documents"]["trial"]
    assert rerun["counts"]["documents"]["trial"] + rerun["counts"]["unchanged"] == len(files)
    finished = cancel(live.url, rerun["id"])
    assert finished.status_code == 409, finished.text
    err = finished.json()["error"]
    assert err["type"] == "job_already_ended" and err["param"] == "job_id"
    assert f"'{rerun['id']}' has already ended (succeeded" in err["message"]
    assert job_of(live.url, rerun["id"])["state"] == "succeeded"  # the 409 changed nothing
    end = metrics(live.url)
    assert (
        sample(end, "litrag_jobs_ended_total", state="succeeded")
        - sample(before, "litrag_jobs_ended_total", state="succeeded")
        == 1
    )
    assert sample(end, "litrag_jobs_chunks_total") - sample(before, "litrag_jobs_chunks_total") == (
        stopped["counts"]["chunks"] + rerun["counts"]["chunks"]
    )

    expected = clean_ingest_points(store_path, tmp_path / "clean", embedder, files)
    served = stored_points(served_store(live))
    assert partial != expected  # the cancel left the job half done
    # exactly the session store and these files (the cancelled queued job stored nothing)
    assert served == expected
