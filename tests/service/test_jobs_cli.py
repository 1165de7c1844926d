"""``litrag ingest --server`` end to end through the real command line against a real uvicorn
(Ctrl-C and a cancelled job through a real ``litrag ingest`` process), the locked-store error of a
plain ``litrag ingest``, and a real ``litrag serve`` process killed mid-job whose restart repairs
the store."""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from core.cli import _load_commands, app
from core.config import get_settings
from core.sparse import SparseEncoder
from core.store import meta_for, open_store
from tests.service.conftest import base_settings, clean_ingest_points, stored_points
from tests.service.test_jobs import AUTH, KEY, LiveServer, serve_copy, trials, upload, wait_job

runner = CliRunner()


@pytest.fixture(autouse=True)
def _cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLUMNS", "250")  # rich wraps at the terminal width
    monkeypatch.delenv("LITRAG_SERVICE__API_KEY", raising=False)
    get_settings.cache_clear()
    if not app.registered_commands:
        _load_commands()
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    get_settings.cache_clear()
    # the command's logging setup points at the runner's stream, closed once it returns: the
    # server thread of this module logs on
    root.handlers[:], root.level = handlers, level


@pytest.fixture(scope="module")
def live(store_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    # small batches: a job makes many embedding calls, so a cancel takes effect soon
    with serve_copy(
        store_path, tmp_path_factory.mktemp("jobs-cli") / "store", ingest={"batch_size": 32}
    ) as server:
        yield server


def _flat(text: str) -> str:
    return " ".join(text.split())


def _inputs(corpus: Path, folder: Path) -> Path:
    """Three real trials, a broken record and a file that is never a document."""
    folder.mkdir()
    for f in trials(corpus, 100, 3):
        shutil.copy(f, folder)
    (folder / "broken.xml").write_bytes(b"<clinical_study><id_info>")
    (folder / "notes.txt").write_text("not a document")
    return folder


def _report(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_ingest_server_matches_local_ingest(
    live: LiveServer, corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same summary and the same report lines (local paths) as a local ingest."""
    docs = _inputs(corpus, tmp_path / "docs")
    remote_report = tmp_path / "remote.jsonl"
    monkeypatch.setenv("LITRAG_SERVICE__API_KEY", KEY)  # the service's own variable
    result = runner.invoke(
        app, ["ingest", str(docs), "--server", live.url, "--report", str(remote_report)]
    )
    assert result.exit_code == 1, result.output
    remote_out = _flat(result.output)
    assert "documents stored: trial │ 3" in remote_out, remote_out
    assert "failures │ 1" in remote_out and "skipped files (not documents) │ 1" in remote_out

    monkeypatch.setenv("LITRAG_STORE__PATH", str(tmp_path / "local-store"))
    get_settings.cache_clear()
    local_report = tmp_path / "local.jsonl"
    local = runner.invoke(app, ["ingest", str(docs), "--report", str(local_report)])
    assert local.exit_code == 1, local.output
    # the same lines (a remote run reports the files it does not send first)
    assert sorted(_report(remote_report), key=str) == sorted(_report(local_report), key=str)
    assert {e["kind"] for e in _report(remote_report)} == {"failure", "skipped"}
    assert str(docs / "broken.xml") in {e["file"] for e in _report(remote_report)}
    for row in ("documents stored: trial │ 3", "chunks stored", "failures │ 1"):
        assert row in _flat(local.output)

    # again: everything is unchanged, exit 0 once the broken file is gone
    (docs / "broken.xml").unlink()
    result = runner.invoke(app, ["ingest", str(docs), "--server", live.url])
    assert result.exit_code == 0, result.output
    assert "skipped: unchanged │ 3" in _flat(result.output)


def test_ingest_server_errors_exit_2(live: LiveServer, corpus: Path, tmp_path: Path) -> None:
    one = str(trials(corpus, 0, 1)[0])
    wrong = runner.invoke(app, ["ingest", one, "--server", live.url, "--api-key", "wrong"])
    assert wrong.exit_code == 2
    assert "refused the API key (invalid API key)" in _flat(wrong.output)
    assert "LITRAG_SERVICE__API_KEY" in _flat(wrong.output)

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}"
    refused = runner.invoke(app, ["ingest", one, "--server", closed, "--api-key", KEY])
    assert refused.exit_code == 2 and f"cannot reach the service at {closed}" in refused.output

    big = sorted((corpus / "ctgov").iterdir(), key=lambda p: p.stat().st_size)[0]
    too_big = runner.invoke(app, ["ingest", str(big), "--server", live.url, "--api-key", KEY])
    assert too_big.exit_code == 2
    assert "over the service's limits" in _flat(too_big.output)

    usage = runner.invoke(app, ["ingest", one, "--server", live.url, "--recreate"])
    assert usage.exit_code == 2 and "cannot be used with --server" in _flat(usage.output)
    missing = runner.invoke(app, ["ingest", str(tmp_path / "nope"), "--server", live.url])
    assert missing.exit_code == 2 and "no such file or directory" in missing.output


def test_plain_ingest_on_a_served_store_says_use_server(
    live: LiveServer, corpus: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LITRAG_STORE__PATH", str(live.settings.store.path))
    get_settings.cache_clear()
    result = runner.invoke(app, ["ingest", str(trials(corpus, 0, 1)[0])])
    assert result.exit_code == 2, result.output
    out = _flat(result.output)
    assert "is open in another process" in out
    assert "`litrag ingest --server URL PATH...`" in out


# -- a real `litrag ingest --server` process: Ctrl-C, a job cancelled under it --------------------

_INGEST = (
    "import sys\nfrom core.cli import main\n"
    "sys.argv = ['litrag', 'ingest', *sys.argv[1:]]\nmain()\n"
)


class _Client:
    """``litrag ingest PATHS --server URL`` in its own process, its output in files."""

    def __init__(self, url: str, paths: list[Path], folder: Path) -> None:
        folder.mkdir()
        self.out, self.err = folder / "stdout", folder / "stderr"
        env = {k: v for k, v in os.environ.items() if k != "LITRAG_SERVICE__API_KEY"}
        with self.out.open("wb") as out, self.err.open("wb") as err:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    _INGEST,
                    *map(str, paths),
                    "--server",
                    url,
                    "--api-key",
                    KEY,
                ],
                env={**env, "COLUMNS": "250"},
                cwd=folder,
                stdout=out,
                stderr=err,
            )

    def job_id(self) -> str:
        """The id of its job, once it has printed it (the upload is done)."""
        deadline = time.monotonic() + 120
        while not (found := re.search(r"^job (\S+): http", self.err.read_text(), re.M)):
            assert self.proc.poll() is None, self.output()
            assert time.monotonic() < deadline, self.output()
            time.sleep(0.05)
        return found.group(1)

    def wait(self) -> int:
        return self.proc.wait(120)

    def output(self) -> str:
        return _flat(self.out.read_text() + self.err.read_text())


def test_ingest_server_ctrl_c_leaves_the_job_and_a_cancelled_job_exits_1(
    live: LiveServer, corpus: Path, tmp_path: Path
) -> None:
    """Each client follows a job of 60 trials (seconds of embedding), and the test acts as soon
    as the client has printed its job id: neither job can end first."""
    files = trials(corpus, 100, 60)
    following = _Client(live.url, files, tmp_path / "a")
    try:
        job_a = following.job_id()
        following.proc.send_signal(signal.SIGINT)
        assert following.wait() == 130, following.output()
    finally:
        if following.proc.poll() is None:
            following.proc.kill()
    out = following.output()
    assert f"stopped following job {job_a}; it goes on in the service." in out, out
    assert f"follow it: GET {live.url}/v1/jobs/{job_a}" in out
    assert f"cancel it: DELETE {live.url}/v1/jobs/{job_a}" in out
    # the job goes on without its client: not cancelled, and it keeps storing documents
    left = httpx.get(f"{live.url}/v1/jobs/{job_a}", headers=AUTH).json()
    assert left["state"] in ("queued", "running") and left["cancel_requested_at"] is None, left
    deadline = time.monotonic() + 120
    while (now := httpx.get(f"{live.url}/v1/jobs/{job_a}", headers=AUTH).json())["counts"][
        "chunks"
    ] <= left["counts"]["chunks"] and now["state"] != "succeeded":
        assert now["state"] in ("queued", "running") and time.monotonic() < deadline, now
        time.sleep(0.05)
    httpx.delete(f"{live.url}/v1/jobs/{job_a}", headers=AUTH)  # only to keep the test short
    assert wait_job(live.url, job_a)["state"] in ("cancelled", "succeeded")

    cancelled = _Client(live.url, files, tmp_path / "b")
    try:
        job_b = cancelled.job_id()
        stop = httpx.delete(f"{live.url}/v1/jobs/{job_b}", headers=AUTH)
        assert stop.status_code in (200, 202), stop.text
        assert cancelled.wait() == 1, cancelled.output()
    finally:
        if cancelled.proc.poll() is None:
            cancelled.proc.kill()
    out = cancelled.output()
    assert f"job {job_b} was cancelled (DELETE /v1/jobs/{job_b}) before it finished" in out, out
    ended = httpx.get(f"{live.url}/v1/jobs/{job_b}", headers=AUTH).json()
    assert ended["state"] == "cancelled"
    counts = ended["counts"]
    assert (
        f"{counts['stored_documents']} documents ({counts['chunks']} chunks) were stored until "
        "then and stay; run the same command again to ingest the rest" in out
    ), out


# -- a real `litrag serve` killed mid-job ------------------------------------------------------

_SERVE = "import sys\nfrom core.cli import main\nsys.argv = ['litrag', 'serve']\nmain()\n"


def _start_serve(store: Path, port: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "LITRAG_STORE__PATH": str(store),
        "LITRAG_SERVICE__PORT": str(port),
        "LITRAG_SERVICE__API_KEY": KEY,
        "LITRAG_INGEST__BATCH_SIZE": "16",  # many writes: the kill lands between two
    }
    return subprocess.Popen(
        [sys.executable, "-c", _SERVE],
        env=env,
        cwd=store.parent,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _wait_ready(url: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        assert proc.poll() is None, "litrag serve exited"
        try:
            if httpx.get(f"{url}/healthz").status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError("litrag serve did not start")


def _stored(store: Path, embedder: Any) -> dict[str, str]:
    """Every stored point: id -> content hash of its document."""
    settings = base_settings(store)
    meta = meta_for(settings, embedder.name, embedder.dim, SparseEncoder(settings.sparse).name)
    opened = open_store(settings.store, meta, create=False)
    try:
        return stored_points(opened)
    finally:
        opened.close()


def test_service_killed_mid_job_reruns_it_at_restart(
    store_path: Path, corpus: Path, tmp_path: Path, embedder: Any
) -> None:
    """SIGKILL while the job writes; the restarted service runs the job again from its spooled
    files and the store ends exactly as a clean ingest of the same files leaves it."""
    files = trials(corpus, 200, 25)
    store = tmp_path / "served"
    shutil.copytree(store_path, store)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    proc = _start_serve(store, port)
    try:
        _wait_ready(url, proc)
        job = upload(url, files).json()
        deadline = time.monotonic() + 120
        while True:
            seen = httpx.get(f"{url}/v1/jobs/{job['id']}", headers=AUTH).json()
            if seen["counts"]["chunks"] > 0 or seen["state"] == "succeeded":
                break
            assert time.monotonic() < deadline, seen
            time.sleep(0.02)
        assert seen["state"] == "running", "the job ended before the kill; make it larger"
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)
    on_disk = json.loads((store / "jobs" / "jobs" / f"{job['id']}.json").read_text())
    assert on_disk["state"] == "running"
    assert (store / "jobs" / "files" / job["id"]).is_dir()
    partial = _stored(store, embedder)

    proc = _start_serve(store, port)
    try:
        _wait_ready(url, proc)
        deadline = time.monotonic() + 300
        while (done := httpx.get(f"{url}/v1/jobs/{job['id']}", headers=AUTH).json())[
            "state"
        ] not in ("succeeded", "failed"):
            assert time.monotonic() < deadline, done
            time.sleep(0.2)
        assert done["state"] == "succeeded" and done["attempts"] == 2, done
        assert done["counts"]["failures"] == 0
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)

    expected = clean_ingest_points(store_path, tmp_path / "clean", embedder, files)
    assert partial != expected  # the kill left the job half done
    assert _stored(store, embedder) == expected
