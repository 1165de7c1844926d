"""Schemathesis against the real service (uvicorn on loopback): every check it has, on every
operation of the OpenAPI document, in positive and negative modes — no server error, no response
that breaks the document."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.web.server import Live, live_service

ST = Path(sys.executable).with_name("st")


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Live:
    """The session's real service (sample trials + a PubMed record; API key required)."""
    return live_service(tmp_path_factory, request)


@pytest.mark.slow
def test_schemathesis_finds_no_server_error_and_no_schema_violation(
    live: Live, tmp_path: Path
) -> None:
    cmd = [
        str(ST),
        "run",
        f"{live.base_url}/openapi.json",
        "--checks",
        "all",
        # Two checks left out, both about ingest jobs, the only resources the API creates:
        # - ensure_resource_availability: POST /v1/documents answers 202 with a *job* (resource
        #   GET /v1/jobs/{job_id}, as its Location header and OpenAPI link say), but schemathesis
        #   infers from the path prefix that the job id names a document and reports the 404 of
        #   GET /v1/documents/{job id} as "created resource not found".
        # - use_after_free: DELETE /v1/jobs/{job_id} *cancels* a job and keeps its record (its
        #   state, counts and report lines stay readable, as documented), so a GET after it is a
        #   200 by design, not a deleted resource still served.
        # No other POST creates and no other route deletes anything, so nothing else is lost.
        "--exclude-checks",
        "ensure_resource_availability,use_after_free",
        "--mode",
        "all",
        "--max-examples",
        os.environ.get("LITRAG_SCHEMATHESIS_EXAMPLES", "10"),
        "--seed",
        "20261129",
        "--workers",
        "1",
        "--request-timeout",
        "300",
        # answers embed every candidate sentence on the CPU; speed is measured by benchmarks
        "--max-response-time",
        "240",
        "--header",
        f"Authorization: Bearer {live.api_key}",
        "--report",
        "junit",
        "--report-dir",
        str(tmp_path),
    ]
    # run in tmp_path: schemathesis keeps a crash cache in its working directory
    proc = subprocess.run(
        cmd, capture_output=True, text=True, timeout=1800, check=False, cwd=tmp_path
    )
    (tmp_path / "schemathesis.txt").write_text(proc.stdout + proc.stderr)
    failures = proc.stdout[proc.stdout.find("FAILURES") :]
    assert proc.returncode == 0, failures[:12000] + proc.stderr[-2000:]
