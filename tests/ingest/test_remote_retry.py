"""``litrag ingest --server`` keeps following a job through failed polls (a service restarting,
a network gone for a while) and gives up only after ``POLL_RETRY_S``. The service is a real
``http.server`` in a thread answering scripted job states: a real uvicorn cannot be made to
fail its GETs on cue (the end-to-end runs against a real service are in tests/service)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from core.jobs import Job, JobCounts, JobEntry, JobFile
from ingest import remote


class _Script:
    """What the fake service answers: ``fail`` GETs with 503 first (all when negative)."""

    def __init__(self, fail: int) -> None:
        self.fail = fail
        self.gets = 0

    def job(self, state: str) -> dict[str, Any]:
        entry = JobEntry(kind="failure", file="b.xml", reason="broken")
        return Job(
            id="j1",
            state=state,
            created_at=datetime.now(UTC),
            files=[JobFile(name="b.xml", bytes=4)],
            entries=[entry] if state == "succeeded" else [],
            entries_total=1 if state == "succeeded" else 0,
            counts=JobCounts(failures=1 if state == "succeeded" else 0),
        ).model_dump(mode="json")


@pytest.fixture
def service() -> Iterator[tuple[str, _Script]]:
    script = _Script(fail=0)

    class Handler(BaseHTTPRequestHandler):
        def _answer(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            self._answer(202, script.job("queued"))

        def do_GET(self) -> None:
            script.gets += 1
            if script.fail < 0 or script.gets <= script.fail:
                self._answer(503, {"error": {"message": "the service is restarting"}})
            else:
                self._answer(200, script.job("succeeded"))

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", script
    finally:
        server.shutdown()
        server.server_close()


def _run(url: str, tmp_path: Path) -> tuple[int, str, Path]:
    doc = tmp_path / "b.xml"
    doc.write_text("<a>")
    out = StringIO()
    report = tmp_path / "report.jsonl"
    code = remote.ingest_remote(
        [doc], server=url, api_key=None, report=report, console=Console(file=out, width=250)
    )
    return code, out.getvalue(), report


def test_failed_polls_are_retried(
    service: tuple[str, _Script], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, script = service
    script.fail = 3
    monkeypatch.setattr(remote, "POLL_S", 0.01)
    code, out, report = _run(url, tmp_path)
    assert code == remote.EXIT_FAILURES, out  # the job's one failure, not a lost job
    assert script.gets == 4
    assert json.loads(report.read_text())["file"] == str(tmp_path / "b.xml")


def test_polls_failing_for_too_long_give_up_with_hints(
    service: tuple[str, _Script], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, script = service
    script.fail = -1
    monkeypatch.setattr(remote, "POLL_S", 0.01)
    monkeypatch.setattr(remote, "POLL_RETRY_S", 0.5)
    code, out, _ = _run(url, tmp_path)
    flat = " ".join(out.split())
    assert code == remote.EXIT_USAGE, out
    assert script.gets > 2  # tried again, not once
    assert "the service is restarting" in flat and "the job continues on the server" in flat
    assert f"GET {url}/v1/jobs/j1" in flat and f"DELETE {url}/v1/jobs/j1" in flat
