"""Compaction of the manifest: bounded over many reruns, the same state read back, crash-safe.

The manifests are written by real `litrag fetch` runs against the replay server; the crashes are
real (a child process that ends itself with ``os._exit`` at the named point, no clean-up).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import pytest

from ingest.fetch.compact import compacted, maybe_compact, state
from ingest.fetch.manifest import COMPACT_NAME, MANIFEST_NAME, Manifest, Record, now_iso
from tests.ingest.fetch.conftest import Fetch
from tests.ingest.fetch.helpers import events, records
from tests.ingest.fetch.replay import CTGOV, Replay

TRIALS = ["trials", "--query", "Phelan-McDermid Syndrome"]
PMC = ["pmc", "--query", "stem cells"]


def _lines(out: Path) -> int:
    return len((out / MANIFEST_NAME).read_bytes().splitlines())


def test_many_reruns_keep_the_manifest_bounded(fetch: Fetch, replay: Replay) -> None:
    assert fetch(*TRIALS).exit_code == 0
    sizes: list[tuple[int, int]] = []  # (lines, bytes) after each rerun
    compacted_sizes = []
    for _ in range(20):
        result = fetch(*TRIALS)
        assert result.exit_code == 0, result.output
        sizes.append((_lines(fetch.out), (fetch.out / MANIFEST_NAME).stat().st_size))
        if "manifest compacted" in result.output:
            compacted_sizes.append(sizes[-1])
    # each rerun adds a run and a done line (~470 bytes); compacted: 10 records, 1 scope line,
    # the last run's two lines; compacted again once the file is twice that
    assert len(compacted_sizes) >= 2, sizes
    assert {lines for lines, _ in compacted_sizes} == {13}, sizes
    smallest = min(size for _, size in compacted_sizes)
    assert max(size for _, size in sizes) <= 2 * smallest + 500, sizes
    assert len(records(fetch.out)) == 10
    (scope,) = events(fetch.out, "scope")
    assert len(scope["ids"]) == 10
    # the compacted manifest still drives an incremental rerun from the last finished run
    (*_, last) = events(fetch.out, "run")
    before = len(replay.log)
    assert fetch(*TRIALS).exit_code == 0
    (rerun,) = replay.log[before:]
    day = date.fromisoformat(last["started"][:10]) - timedelta(days=1)
    assert rerun.params["filter.advanced"] == f"AREA[LastUpdatePostDate]RANGE[{day},MAX]"


def _trials_manifest(fetch: Fetch, replay: Replay, monkeypatch: pytest.MonkeyPatch) -> None:
    """Finished, rerun, gone, and an unfinished run with a page cursor (CT.gov only: fast)."""
    assert fetch(*TRIALS).exit_code == 0
    page1 = json.loads((CTGOV / "studies_page1_phelan_pageSize5.json").read_bytes())
    replay.update_study(page1["studies"][0], "TERMINATED")
    assert fetch(*TRIALS).exit_code == 0
    replay.removed_studies.add("NCT07281079")
    assert fetch(*TRIALS, "--full").exit_code == 0
    monkeypatch.setenv("LITRAG_FETCH__RETRIES", "0")
    replay.inject("studies", "ok", "drop")
    assert fetch(*TRIALS, "--status", "COMPLETED").exit_code == 1
    monkeypatch.delenv("LITRAG_FETCH__RETRIES")


def _varied_manifest(fetch: Fetch, replay: Replay, monkeypatch: pytest.MonkeyPatch) -> None:
    """Also failed and skipped PMC records, and an unfinished PMC run with a plan."""
    _trials_manifest(fetch, replay, monkeypatch)
    monkeypatch.setenv("LITRAG_FETCH__API_KEY", "replay-key")  # 10 requests/s, same code
    monkeypatch.setenv("LITRAG_FETCH__RETRIES", "0")
    replay.unfetchable["pmc"] = ["1111111"]
    assert fetch(*PMC).exit_code == 1
    replay.modify("pmc", "8435807", lambda b: b.replace(b"nitric oxide", b"NO", 1))
    replay.modify(
        "pmc", "3299399", lambda b: b.replace(b"</article-title>", b" (v2)</article-title>", 1)
    )
    assert fetch(*PMC, "--max", "1").exit_code == 0  # cut after one of three planned ids
    monkeypatch.delenv("LITRAG_FETCH__RETRIES")


def test_compaction_keeps_the_state_and_later_runs_go_on(
    fetch: Fetch, replay: Replay, monkeypatch: pytest.MonkeyPatch
) -> None:
    _varied_manifest(fetch, replay, monkeypatch)
    lines = _lines(fetch.out)
    with Manifest.open(fetch.out) as m:
        before = state(m)
        assert maybe_compact(m) is None  # not grown past twice its compacted size
        assert maybe_compact(m, factor=1.0) == (lines, _lines(fetch.out))
    assert _lines(fetch.out) < lines
    with Manifest.open(fetch.out) as m:
        assert state(m) == before and m.corrupt_lines == 0
    kinds = [e["type"] for e in events(fetch.out) if e["type"] != "record"]
    assert kinds.count("done") == 2 and "plan" in kinds and "cursor" in kinds

    # the unfinished runs resume from the compacted manifest: page 2, the planned ids left
    before_log = len(replay.log)
    assert fetch(*TRIALS, "--status", "COMPLETED").exit_code == 0
    (resumed,) = replay.log[before_log:]
    assert resumed.params["pageToken"]
    before_log = len(replay.log)
    assert fetch(*PMC).exit_code == 1  # 1111111 still fails
    assert [(r.route, r.params.get("id")) for r in replay.log[before_log:]] == [
        ("efetch", "3299399,1111111")
    ]
    assert records(fetch.out)["PMC3299399"]["status"] == "updated"


_CRASH = """
import os, sys
from pathlib import Path
import ingest.fetch.manifest as manifest
from ingest.fetch.compact import maybe_compact
if sys.argv[2] == "before-rename":
    os.replace = lambda *a, **k: os._exit(9)
else:
    manifest._fsync_dir = lambda path: os._exit(9)
maybe_compact(manifest.Manifest.open(Path(sys.argv[1])), factor=0.0)
"""


@pytest.mark.parametrize("where", ["before-rename", "after-rename"])
def test_a_crash_during_compaction_leaves_a_whole_manifest(
    fetch: Fetch, replay: Replay, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    _trials_manifest(fetch, replay, monkeypatch)
    old = (fetch.out / MANIFEST_NAME).read_bytes()
    with Manifest.open(fetch.out) as m:
        before, new = state(m), compacted(m)
    proc = subprocess.run(
        [sys.executable, "-c", _CRASH, str(fetch.out), where], env=dict(os.environ), check=False
    )
    assert proc.returncode == 9
    after = (fetch.out / MANIFEST_NAME).read_bytes()
    if where == "before-rename":
        assert after == old and (fetch.out / COMPACT_NAME).read_bytes() == new
    else:
        assert after == new and not (fetch.out / COMPACT_NAME).exists()
    with Manifest.open(fetch.out) as m:
        assert state(m) == before and m.corrupt_lines == 0
    assert not (fetch.out / COMPACT_NAME).exists()  # a leftover copy is removed on open
    assert fetch(*TRIALS).exit_code == 0  # and fetching goes on


def test_an_unfinished_run_keeps_what_it_handled_when_another_run_recorded_it_later(
    tmp_path: Path,
) -> None:
    """A resumable run fetched PMID 1; another query's run recorded PMID 1 after it. The last
    record per document is the other run's, but the resumed run must still know it has PMID 1
    (else it fetches it again)."""
    m = Manifest.open(tmp_path)
    unfinished = m.start_run("pubmed|q1|since=", "pubmed", {})
    m.set_plan(unfinished, ["1", "2"])
    m.add(Record("pubmed", "1", "fetched", unfinished.run, now_iso(), None, "h", "PMID1.xml"))
    other = m.start_run("pubmed|q2|since=", "pubmed", {})
    m.set_plan(other, ["1"])
    m.add(Record("pubmed", "1", "unchanged", other.run, now_iso(), None, "h", "PMID1.xml"))
    m.finish(other, {})
    back = Manifest.parse(tmp_path, compacted(m))
    assert back.runs[unfinished.run].handled == {"1"}
    assert state(back) == state(m)
