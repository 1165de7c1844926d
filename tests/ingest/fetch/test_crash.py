"""A `litrag fetch` process killed with SIGKILL mid-run (a real crash, no clean-up) resumes:
the next run does not search again and does not fetch what the manifest already records."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from ingest.fetch.manifest import MANIFEST_NAME
from tests.ingest.fetch.conftest import Fetch
from tests.ingest.fetch.helpers import events, records
from tests.ingest.fetch.replay import Replay

_RUN = "import sys; from core.cli import main; sys.argv = ['litrag', *sys.argv[1:]]; main()"


def test_killed_fetch_resumes_from_the_manifest(fetch: Fetch, replay: Replay) -> None:
    env = {**os.environ, "LITRAG_FETCH__PUBMED_BATCH": "1"}  # fetch_env set the replay URLs
    proc = subprocess.Popen(
        [sys.executable, "-c", _RUN, "fetch", "pubmed", "--query", "cancer", str(fetch.out)],
        env=env,
        cwd=Path.cwd(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        manifest = fetch.out / MANIFEST_NAME
        # wait for a record line, not just a file: a file is renamed into place before its line
        # is appended, and a kill between the two leaves nothing recorded (fetched again later)
        while time.monotonic() < deadline and not (
            manifest.is_file() and b'"type":"record"' in manifest.read_bytes()
        ):
            time.sleep(0.01)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    recorded = set(records(fetch.out))
    assert recorded and not events(fetch.out, "done")  # killed after >= 1 record, before the end
    (plan,) = events(fetch.out, "plan")
    before = len(replay.log)

    result = fetch("pubmed", "--query", "cancer")
    assert result.exit_code == 0, result.output
    resumed = replay.log[before:]
    assert "esearch" not in [r.route for r in resumed]
    asked = [uid for r in resumed for uid in r.params["id"].split(",")]
    assert not set(asked) & recorded  # nothing the manifest records is fetched again
    assert set(asked) | recorded == set(plan["ids"])
    assert len(list(fetch.out.glob("PMID*.xml"))) == 7
    assert len(events(fetch.out, "done")) == 1
