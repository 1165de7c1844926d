"""``litrag ingest --server`` (``ingest.remote``) against a real uvicorn on a copy of the real
Edge store: every report line of a job with more than one page of them, file names that are not
plain ASCII, names the service renames, paths that look like markup."""

from __future__ import annotations

import json
from collections.abc import Iterator
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from ingest.remote import EXIT_FAILURES, EXIT_USAGE, ingest_remote
from service.jobs.manager import ENTRIES_PAGE
from tests.service.test_jobs import KEY, LiveServer, serve_copy, wait_job

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
