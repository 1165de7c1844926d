"""Uploads and ingest jobs over real HTTP: a real uvicorn server in a thread, on a copy of the
session's real Edge store, fed real corpus files; the job runs the real ingestion pipeline."""

from __future__ import annotations

import shutil
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from core.config import Settings
from core.jobs import ENDED_STATES
from service.app import create_app
from tests.service.conftest import base_settings, with_overrides

KEY = "test-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
MAX_FILES, MAX_FILE_BYTES = 60, 300_000
LIMITS: dict[str, Any] = {
    "api_key": KEY,
    "max_upload_files": MAX_FILES,
    "max_upload_file_bytes": MAX_FILE_BYTES,
    "max_upload_bytes": 1_000_000,
    "max_queued_jobs": 2,
}
ARTICLE = "jats/elife/elife07586.xml"  # not in the session store
DOC_ID = "doi:10.7554/elife.07586"
TRIALS = "ctgov-legacy-xml"


class LiveServer:
    """``create_app(settings)`` served by uvicorn in a thread on a free port."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.app = create_app(settings)
        self.server = uvicorn.Server(uvicorn.Config(self.app, log_config=None))
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True
        )

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 120
        while not self.server.started:
            assert self.thread.is_alive() and time.monotonic() < deadline, "server did not start"
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(60)
        self.sock.close()


def serve_copy(
    store_path: Path, dest: Path, *, ingest: dict[str, Any] | None = None, **service: Any
) -> LiveServer:
    """A server on a copy of the store at ``store_path`` (so jobs never change the session
    store the other tests count on); ``ingest``: ingest settings to override."""
    shutil.copytree(store_path, dest)
    settings = with_overrides(
        base_settings(dest), service={**LIMITS, **service}, ingest=ingest or {}
    )
    return LiveServer(settings)


def upload(url: str, files: list[Path], headers: dict[str, str] | None = None) -> httpx.Response:
    """POST the files as multipart/form-data (field ``files``)."""
    parts = [("files", (f.name, f.read_bytes(), "application/octet-stream")) for f in files]
    return httpx.post(
        f"{url}/v1/documents", files=parts, headers=AUTH if headers is None else headers
    )


def wait_job(url: str, job_id: str, timeout: float = 300) -> dict[str, Any]:
    """Poll the job until it has ended (succeeded, failed, cancelled); its last state."""
    deadline = time.monotonic() + timeout
    while True:
        job: dict[str, Any] = httpx.get(f"{url}/v1/jobs/{job_id}", headers=AUTH).json()
        if job["state"] in ENDED_STATES:
            return job
        assert time.monotonic() < deadline, job
        time.sleep(0.2)


@contextmanager
def raw_upload(live: LiveServer, *, content_length: int, body: bytes) -> Iterator[socket.socket]:
    """A connection that has sent an upload's headers (declaring ``content_length``) and
    ``body``, and nothing more: a client that lies or goes away."""
    host, port = live.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as conn:
        conn.sendall(
            (
                "POST /v1/documents HTTP/1.1\r\nHost: x\r\n"
                f"Authorization: Bearer {KEY}\r\n"
                "Content-Type: multipart/form-data; boundary=zz\r\n"
                f"Content-Length: {content_length}\r\n\r\n"
            ).encode()
            + body
        )
        yield conn


def search(url: str, query: str, **body: Any) -> httpx.Response:
    return httpx.post(f"{url}/v1/search", json={"query": query, **body}, headers=AUTH, timeout=60)


@pytest.fixture(scope="module")
def live(store_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """One server for the module, on its own copy of the session store."""
    with serve_copy(store_path, tmp_path_factory.mktemp("jobs") / "store") as server:
        yield server


def trials(corpus: Path, start: int, n: int) -> list[Path]:
    """``n`` real legacy ClinicalTrials.gov records (a few chunks each)."""
    return sorted((corpus / TRIALS).iterdir())[start : start + n]


def test_upload_becomes_searchable_with_per_file_failures(
    live: LiveServer, corpus: Path, tmp_path: Path
) -> None:
    """Upload → job id → poll → done with counts; the new article is found by search and is
    stored under its uploaded name; a broken file is a report line like ``--report``'s."""
    assert search(live.url, "elife07586", top_k=5).status_code == 200
    broken = tmp_path / "broken.xml"
    broken.write_bytes(b"<clinical_study><id_info>")
    r = upload(live.url, [corpus / ARTICLE, broken])
    assert r.status_code == 202, r.text
    created = r.json()
    assert r.headers["location"] == f"/v1/jobs/{created['id']}"
    assert created["state"] in ("queued", "running")
    assert [f["name"] for f in created["files"]] == ["elife07586.xml", "broken.xml"]
    job = wait_job(live.url, created["id"])
    assert job["state"] == "succeeded", job
    assert job["counts"]["documents"] == {"article": 1}
    assert job["counts"]["failures"] == 1 and job["counts"]["chunks"] > 0
    assert job["entries_total"] == 1
    [entry] = job["entries"]
    assert entry["kind"] == "failure" and entry["file"] == "broken.xml"
    assert "malformed XML" in entry["reason"]
    assert job["points"] >= job["counts"]["chunks"] and job["attempts"] == 1
    # the spooled files of a succeeded job are gone
    jobs_dir = live.settings.store.path / "jobs"
    assert not (jobs_dir / "files" / job["id"]).exists()

    hits = search(live.url, "Correction: Mucosal effects for tenofovir 1% gel", top_k=5)
    assert hits.status_code == 200
    assert hits.json()["passages"][0]["doc_id"] == DOC_ID
    stored = httpx.get(f"{live.url}/v1/documents/{DOC_ID}", headers=AUTH).json()
    # stored under the name it was uploaded as, not the server's spool path
    assert stored["document"]["source_path"] == "elife07586.xml"

    # the same upload again: unchanged, nothing rewritten
    again = wait_job(live.url, upload(live.url, [corpus / ARTICLE]).json()["id"])
    assert again["counts"]["unchanged"] == 1 and again["counts"]["chunks"] == 0


def test_searches_answered_while_a_job_runs_and_a_second_job_queues(
    live: LiveServer, corpus: Path
) -> None:
    first = upload(live.url, trials(corpus, 0, 40)).json()
    second = upload(live.url, trials(corpus, 40, 5)).json()
    assert second["state"] == "queued" and second["position"] >= 1, second
    during: list[int] = []
    while httpx.get(f"{live.url}/v1/jobs/{first['id']}", headers=AUTH).json()["state"] != (
        "succeeded"
    ):
        during.append(search(live.url, "randomized placebo controlled trial").status_code)
    assert during and set(during) == {200}, during
    done_first = wait_job(live.url, first["id"])
    done_second = wait_job(live.url, second["id"])
    assert done_first["counts"]["documents"] == {"trial": 40}
    assert done_second["counts"]["documents"] == {"trial": 5}
    # one writer at a time: the second started once the first had finished
    assert done_second["started_at"] >= done_first["finished_at"]
    listed = httpx.get(f"{live.url}/v1/jobs", headers=AUTH).json()["jobs"]
    assert [j["id"] for j in listed[:2]] == [second["id"], first["id"]]
    assert "entries" not in listed[0]
    nct = trials(corpus, 42, 1)[0].stem
    hits = search(live.url, "trial", filters={"doc_ids": [f"nct:{nct}"]}).json()["passages"]
    assert hits and {h["doc_id"] for h in hits} == {f"nct:{nct}"}


def test_limits_are_clear_413s_and_leave_no_job(live: LiveServer, corpus: Path) -> None:
    before = httpx.get(f"{live.url}/v1/jobs", headers=AUTH).json()["jobs"]
    many = upload(live.url, trials(corpus, 0, MAX_FILES + 1))
    assert many.status_code == 413, many.text
    err = many.json()["error"]
    assert err["type"] == "upload_too_large" and "60 files" in err["message"]
    big = sorted((corpus / "ctgov").iterdir(), key=lambda p: p.stat().st_size)[0]
    assert big.stat().st_size > MAX_FILE_BYTES
    r = upload(live.url, [big])
    assert r.status_code == 413 and "per file" in r.json()["error"]["message"]
    assert r.json()["error"]["param"] == big.name
    # a declared length over the limit is refused before any of the body is read
    with raw_upload(live, content_length=2_000_000, body=b"") as conn:
        answer = ""
        while not answer.endswith("}}") and (block := conn.recv(65536)):
            answer += block.decode()
    assert answer.startswith("HTTP/1.1 413"), answer
    assert "per request" in answer and "upload_too_large" in answer
    assert httpx.get(f"{live.url}/v1/jobs", headers=AUTH).json()["jobs"] == before
    assert list((live.settings.store.path / "jobs" / "incoming").iterdir()) == []


@pytest.mark.parametrize(
    ("headers", "body", "status", "kind"),
    [
        ({"content-type": "application/json"}, b"{}", 415, "unsupported_media_type"),
        ({"content-type": "multipart/form-data"}, b"", 400, "invalid_multipart"),
        (
            {"content-type": "multipart/form-data; boundary=zz"},
            b'--zz\r\nContent-Disposition: form-data; name="files"; filename="a.xml"\r\n\r\n<a',
            400,
            "invalid_multipart",
        ),
        (
            {"content-type": "multipart/form-data; boundary=zz"},
            b"--zz--\r\n",
            422,
            "invalid_request",
        ),
        (
            {"content-type": "multipart/form-data; boundary=zz"},
            b'--zz\r\nContent-Disposition: form-data; name="note"\r\n\r\nhi\r\n--zz--\r\n',
            422,
            "invalid_request",
        ),
    ],
    ids=["json", "no-boundary", "truncated", "no-files", "not-a-file"],
)
def test_bad_multipart_is_a_specific_4xx(
    live: LiveServer, headers: dict[str, str], body: bytes, status: int, kind: str
) -> None:
    r = httpx.post(f"{live.url}/v1/documents", content=body, headers={**AUTH, **headers})
    assert r.status_code == status, r.text
    assert r.json()["error"]["type"] == kind
    assert list((live.settings.store.path / "jobs" / "incoming").iterdir()) == []


def test_api_key_required(live: LiveServer, corpus: Path) -> None:
    for r in (
        upload(live.url, trials(corpus, 0, 1), headers={}),
        upload(live.url, trials(corpus, 0, 1), headers={"X-API-Key": "wrong"}),
        httpx.get(f"{live.url}/v1/jobs"),
        httpx.get(f"{live.url}/v1/jobs/nope"),
    ):
        assert r.status_code == 401, r.text
        assert r.json()["error"]["type"] == "invalid_api_key"
    missing = httpx.get(f"{live.url}/v1/jobs/nope", headers=AUTH)
    assert missing.status_code == 404 and "no ingest job 'nope'" in missing.text


def test_disconnect_mid_upload_creates_no_job(live: LiveServer, corpus: Path) -> None:
    """A client that goes away mid-body: no job, no spooled leftovers (raw socket client)."""
    before = httpx.get(f"{live.url}/v1/jobs", headers=AUTH).json()["jobs"]
    data = (corpus / ARTICLE).read_bytes()
    head = b'--zz\r\nContent-Disposition: form-data; name="files"; filename="a.xml"\r\n\r\n'
    partial = head + data[: len(data) // 2]
    incoming = live.settings.store.path / "jobs" / "incoming"
    with raw_upload(live, content_length=len(head) + len(data) + 100, body=partial):
        deadline = time.monotonic() + 10
        while not list(incoming.rglob("a.xml")) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert list(incoming.rglob("a.xml")), "the server was not spooling the upload"
    deadline = time.monotonic() + 10
    while list(incoming.iterdir()) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert list(incoming.iterdir()) == []
    assert httpx.get(f"{live.url}/v1/jobs", headers=AUTH).json()["jobs"] == before
    # counted as the client's doing (499), not as a 500 of the service
    metrics = httpx.get(f"{live.url}/metrics", headers=AUTH).text
    uploads = [
        line
        for line in metrics.splitlines()
        if line.startswith("litrag_http_requests_total{") and 'route="/v1/documents"' in line
    ]
    assert any('status="499"' in line for line in uploads), uploads
    assert not any('status="500"' in line for line in uploads), uploads


def test_openapi_documents_upload_and_jobs(live: LiveServer) -> None:
    doc = httpx.get(f"{live.url}/openapi.json").json()
    post = doc["paths"]["/v1/documents"]["post"]
    assert "multipart/form-data" in post["requestBody"]["content"]
    assert {"202", "401", "413", "415", "429"} <= set(post["responses"])
    assert "invalid_multipart" in post["responses"]["400"]["description"]
    assert "upload_not_stored" in post["responses"]["503"]["description"]
    assert doc["paths"]["/v1/jobs/{job_id}"]["get"]["responses"]["200"]["content"]
    assert "/v1/jobs" in doc["paths"]


def test_file_names_that_clash_as_file_and_folder_are_both_kept(
    live: LiveServer, corpus: Path
) -> None:
    """``x`` and ``x/y`` (either order) cannot both be spooled as named: the second is renamed,
    no upload is refused and nothing is lost."""
    a, b, c = trials(corpus, 60, 3)
    parts = [
        ("files", ("t.xml", a.read_bytes(), "application/xml")),
        ("files", ("t.xml/inner.xml", b.read_bytes(), "application/xml")),
        ("files", ("d/t.xml", c.read_bytes(), "application/xml")),
        ("files", ("d", a.read_bytes(), "application/xml")),
    ]
    r = httpx.post(f"{live.url}/v1/documents", files=parts, headers=AUTH, timeout=60)
    assert r.status_code == 202, r.text
    assert [f["name"] for f in r.json()["files"]] == [
        "t.xml",
        "2-t.xml/inner.xml",
        "d/t.xml",
        "2-d",
    ]
    job = wait_job(live.url, r.json()["id"])
    assert job["state"] == "succeeded", job
    assert job["counts"]["failures"] == 0
    assert (
        job["counts"]["stored_documents"] + job["counts"]["unchanged"] + job["counts"]["duplicates"]
        == 4
    )


def test_an_upload_the_service_cannot_write_is_a_clear_503(live: LiveServer, corpus: Path) -> None:
    """The jobs folder cannot take the upload (here its ``incoming`` folder is a file; disk full
    and permissions end the same way): 503 with the reason, no job, nothing left behind."""
    incoming = live.settings.store.path / "jobs" / "incoming"
    before = httpx.get(f"{live.url}/v1/jobs", headers=AUTH).json()["jobs"]
    shutil.rmtree(incoming)
    incoming.write_text("not a folder")
    try:
        r = upload(live.url, trials(corpus, 70, 1))
    finally:
        incoming.unlink()
        incoming.mkdir()
    assert r.status_code == 503, r.text
    error = r.json()["error"]
    assert error["type"] == "upload_not_stored"
    assert error["message"].startswith("the upload could not be written to the jobs folder: ")
    assert httpx.get(f"{live.url}/v1/jobs", headers=AUTH).json()["jobs"] == before


def test_a_job_whose_report_cannot_be_read_is_a_503_that_says_so(
    live: LiveServer, corpus: Path
) -> None:
    job = wait_job(live.url, upload(live.url, trials(corpus, 75, 1)).json()["id"])
    report = live.settings.store.path / "jobs" / "jobs" / f"{job['id']}.report.jsonl"
    assert report.is_file()
    report.unlink()
    report.mkdir()  # unreadable as a file (damaged disk, permissions end the same way)
    try:
        r = httpx.get(f"{live.url}/v1/jobs/{job['id']}", headers=AUTH)
    finally:
        report.rmdir()
    assert r.status_code == 503, r.text
    assert (
        f"the report lines of ingest job {job['id']} cannot be read" in r.json()["error"]["message"]
    )
