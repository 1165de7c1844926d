"""``litrag ingest --server`` (``ingest.remote``) against a real uvicorn on a copy of the real
Edge store: every report line of a job with more than one page of them, file names that are not
plain ASCII, names the service renames, paths that look like markup."""

from __future__ import annotations

import json
import os
import resource
from collections.abc import Iterator
from io import StringIO
from pathlib import Path
from typing import Any

import httpx
import pytest
from rich.console import Console

from ingest.remote import EXIT_FAILURES, EXIT_USAGE, ingest_remote
from service.jobs.manager import ENTRIES_PAGE
from tests.service.test_jobs import AUTH, KEY, LiveServer, serve_copy, wait_job

BROKEN = b"<clinical_study><id_info>"
MANY = ENTRIES_PAGE + 150


@pytest.fixture(scope="module")
def live(store_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with serve_copy(
        store_path,
        tmp_path_factory.mktemp("jobs-remote") / "store",
        max_upload_files=MANY + 10,
    ) as server:
        yield server


def _ingest(live: LiveServer, paths: list[Path], report: Path) -> tuple[int, str]:
    out = StringIO()
    code = ingest_remote(
        paths, server=live.url, api_key=KEY, report=report, console=Console(file=out, width=250)
    )
    return code, out.getvalue()


def _report(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_every_report_line_of_a_long_job_comes_back(live: LiveServer, tmp_path: Path) -> None:
    """More report lines than one GET returns: the ones after the first page are read too."""
    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(MANY):
        (folder / f"b{i:04}.xml").write_bytes(BROKEN)
    code, out = _ingest(live, [folder], tmp_path / "report.jsonl")
    assert code == EXIT_FAILURES, out[-2000:]
    lines = _report(tmp_path / "report.jsonl")
    assert len(lines) == MANY
    assert {e["file"] for e in lines} == {str(p) for p in folder.iterdir()}
    assert out.count("failed ") >= MANY


def test_names_arrive_as_they_are_and_report_lines_name_the_local_files(
    live: LiveServer, tmp_path: Path
) -> None:
    """Non-ASCII, ``%`` and ``"`` are stored as sent (not percent-encoded); a name the service
    renames (``a`` and ``a/b.xml`` clash as file and folder) still maps to its local file."""
    odd = tmp_path / 'café 50% "q".xml'
    odd.write_bytes(BROKEN)
    (tmp_path / "one").mkdir()
    (tmp_path / "two" / "a").mkdir(parents=True)
    plain = tmp_path / "one" / "a"
    plain.write_bytes(BROKEN)
    nested = tmp_path / "two" / "a" / "b.xml"
    nested.write_bytes(BROKEN)
    report = tmp_path / "report.jsonl"
    code, out = _ingest(live, [odd, plain, tmp_path / "two" / "a"], report)
    assert code == EXIT_FAILURES, out
    job_id = out.split("job ", 1)[1].split(":", 1)[0]
    job = wait_job(live.url, job_id)
    assert [f["name"] for f in job["files"]] == ['café 50% "q".xml', "a", "2-a/b.xml"]
    failed = {e["file"] for e in _report(report) if e["kind"] == "failure"}
    assert {str(odd), str(nested)} <= failed, failed
    assert not any(f.startswith(("2-a", "a/")) for f in failed), failed


def test_a_missing_path_that_looks_like_markup_is_printed_as_it_is(
    live: LiveServer, tmp_path: Path
) -> None:
    missing = tmp_path / "x[/]y"
    code, out = _ingest(live, [missing], tmp_path / "r.jsonl")
    assert code == EXIT_USAGE
    assert f"no such file or directory: {missing}" in out


def _parts(names: list[str]) -> tuple[bytes, dict[str, str]]:
    body = b"".join(
        f'--zz\r\nContent-Disposition: form-data; name="files"; filename="{n}"\r\n\r\n'.encode()
        + BROKEN
        + b"\r\n"
        for n in names
    )
    headers = {**AUTH, "Content-Type": "multipart/form-data; boundary=zz"}
    return body + b"--zz--\r\n", headers


def test_many_small_files_hold_one_file_open_at_a_time(live: LiveServer) -> None:
    """An upload of many tiny files is spooled with at most one of them open: it fits under a
    limit of open files far below its file count (before, every file stayed open to the end)."""
    body, headers = _parts([f"d/{i}.xml" for i in range(MANY)])
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    in_use = len(os.listdir("/proc/self/fd"))
    resource.setrlimit(resource.RLIMIT_NOFILE, (in_use + 64, hard))
    try:
        response = httpx.post(f"{live.url}/v1/documents", content=body, headers=headers)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    assert response.status_code == 202, response.text
    assert len(response.json()["files"]) == MANY
    wait_job(live.url, response.json()["id"])


def test_long_non_ascii_names_are_cut_to_what_a_file_system_takes(live: LiveServer) -> None:
    """Components are cut to 240 bytes of UTF-8 (NAME_MAX is 255 bytes, not characters), the
    extension kept, no character split; before, 200 'é' (400 bytes) was a 503."""
    body, headers = _parts(["é" * 200 + ".xml", "d/" + "€" * 100 + "x" * 7])
    response = httpx.post(f"{live.url}/v1/documents", content=body, headers=headers)
    assert response.status_code == 202, response.text
    first, second = (f["name"] for f in response.json()["files"])
    assert first == "é" * 118 + ".xml" and len(first.encode()) == 240
    assert second.startswith("d/€") and len(second.split("/")[1].encode()) <= 240
    wait_job(live.url, response.json()["id"])
