"""`litrag fetch pmc` against the replay server (recorded E-utilities and PMC OA bodies).

The esearch answers are derived from a real recorded esearch (its IdList rewritten to the three
PMC articles whose efetch was recorded), and efetch answers combine those recorded ``<article>``
elements; see tests/ingest/fetch/replay.py. PMC3040717's OA-service answer is as recorded.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import pytest

from tests.ingest.fetch.conftest import Fetch
from tests.ingest.fetch.helpers import doc_ids, events, records
from tests.ingest.fetch.replay import EUTILS, Replay

QUERY = ["pmc", "--query", "stem cells"]


def test_fetch_writes_jats_files_the_parser_reads_and_a_manifest(
    fetch: Fetch, replay: Replay
) -> None:
    result = fetch(*QUERY)
    assert result.exit_code == 0, result.output
    out = fetch.out
    assert sorted(p.name for p in out.glob("*.nxml")) == ["PMC3299399.nxml", "PMC8435807.nxml"]
    assert doc_ids(out / "PMC8435807.nxml") == ["pmc:PMC8435807"]
    assert doc_ids(out / "PMC3299399.nxml") == ["pmc:PMC3299399"]
    recs = records(out)
    for pmcid in ("PMC8435807", "PMC3299399"):
        rec = recs[pmcid]
        assert rec["status"] == "fetched" and rec["file"] == f"{pmcid}.nxml"
        assert rec["sha256"] == hashlib.sha256((out / rec["file"]).read_bytes()).hexdigest()
        assert rec["fetched"].endswith("+00:00")
    # not open access: skipped with the OA service's own reason, no file, exit code still 0
    skipped = recs["PMC3040717"]
    assert skipped["status"] == "skipped" and skipped["file"] is None
    assert "idIsNotOpenAccess" in skipped["reason"] and "is not Open Access" in skipped["reason"]
    assert "skipped PMC3040717" in result.output
    assert [e["type"] for e in events(out) if e["type"] != "record"] == ["run", "plan", "done"]

    (search,) = replay.requests("esearch")
    assert search.params["db"] == "pmc" and search.params["usehistory"] == "y"
    assert search.params["term"] == "(stem cells) AND open access[filter]"
    assert search.params["tool"] == "litrag" and search.params["email"] == "tests@example.org"
    assert "api_key" not in search.params and "mindate" not in search.params
    (efetch,) = replay.requests("efetch")
    assert efetch.method == "POST" and efetch.params["id"] == "8435807,3299399,3040717"
    # only the article without PMC's open_access mark is checked with the OA service
    assert [r.params["id"] for r in replay.requests("oa")] == ["PMC3040717"]


def test_rerun_lists_only_changes_and_refetches_a_modified_article(
    fetch: Fetch, replay: Replay
) -> None:
    assert fetch(*QUERY).exit_code == 0
    kept = fetch.out / "PMC3299399.nxml"
    mtime = kept.stat().st_mtime_ns
    before = len(replay.log)

    result = fetch(*QUERY)
    assert result.exit_code == 0, result.output
    rerun = replay.log[before:]
    assert [r.route for r in rerun] == ["esearch"]  # nothing new: the search is the only request
    yesterday = (datetime.now(UTC).date() - timedelta(days=1)).strftime("%Y/%m/%d")
    assert rerun[0].params["datetype"] == "mdat" and rerun[0].params["mindate"] == yesterday

    replay.modify("pmc", "8435807", lambda b: b.replace(b"nitric oxide", b"nitric oxide (NO)", 1))
    before = len(replay.log)
    result = fetch(*QUERY)
    assert result.exit_code == 0, result.output
    assert [(r.route, r.params.get("id")) for r in replay.log[before:]] == [
        ("esearch", None),
        ("efetch", "8435807"),
    ]
    assert records(fetch.out)["PMC8435807"]["status"] == "updated"
    assert b"nitric oxide (NO)" in (fetch.out / "PMC8435807.nxml").read_bytes()
    assert kept.stat().st_mtime_ns == mtime

    # modified again but with the same content: listed, fetched, recorded unchanged, not rewritten
    replay.modify("pmc", "8435807")
    changed = fetch.out / "PMC8435807.nxml"
    mtime = changed.stat().st_mtime_ns
    assert fetch(*QUERY).exit_code == 0
    assert records(fetch.out)["PMC8435807"]["status"] == "unchanged"
    assert changed.stat().st_mtime_ns == mtime


def test_interrupted_run_resumes_without_refetching(
    fetch: Fetch, replay: Replay, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LITRAG_FETCH__PMC_BATCH", "1")
    monkeypatch.setenv("LITRAG_FETCH__RETRIES", "0")
    replay.inject("efetch", "ok", "drop")
    result = fetch(*QUERY)
    assert result.exit_code == 1
    assert "connection lost" in result.output and "efetch.fcgi" in result.output
    assert "run the same command again to resume" in result.output
    assert [p.name for p in fetch.out.glob("*.nxml")] == ["PMC8435807.nxml"]
    assert not events(fetch.out, "done")

    before = len(replay.log)
    result = fetch(*QUERY)
    assert result.exit_code == 0, result.output
    resumed = [(r.route, r.params.get("id")) for r in replay.log[before:]]
    # no new search, and the article fetched before the interruption is not asked for again
    assert resumed == [("efetch", "3299399"), ("efetch", "3040717"), ("oa", "PMC3040717")]
    assert sorted(p.name for p in fetch.out.glob("*.nxml")) == [
        "PMC3299399.nxml",
        "PMC8435807.nxml",
    ]
    assert len(events(fetch.out, "run")) == 1 and len(events(fetch.out, "done")) == 1


def test_max_cuts_the_run_and_the_next_run_continues(fetch: Fetch, replay: Replay) -> None:
    result = fetch(*QUERY, "--max", "1")
    assert result.exit_code == 0, result.output
    assert "not finished" in result.output
    assert [p.name for p in fetch.out.glob("*.nxml")] == ["PMC8435807.nxml"]
    before = len(replay.log)
    assert fetch(*QUERY).exit_code == 0
    assert [r.route for r in replay.log[before:]] == ["efetch", "oa"]
    assert (fetch.out / "PMC3299399.nxml").is_file()


def test_an_ncbi_error_page_ends_the_run_clearly(fetch: Fetch, replay: Replay) -> None:
    replay.esearch_files["fleegle"] = EUTILS / "error_esearch_invalid_db_fleegle.xml"
    result = fetch("pmc", "--query", "fleegle")
    assert result.exit_code == 1
    assert "NCBI error: Invalid db name specified: fleegle" in result.output
    assert not list(fetch.out.glob("*.nxml"))


def test_an_article_the_oa_service_lists_is_kept(fetch: Fetch, replay: Replay) -> None:
    """Derived: the OA service's answer for PMC3040717 is the recorded ``<record>`` of another
    article with its id replaced (no single-id success answer was recorded)."""
    replay.oa_open.add("PMC3040717")
    assert fetch(*QUERY).exit_code == 0
    assert doc_ids(fetch.out / "PMC3040717.nxml") == ["pmc:PMC3040717"]
    assert records(fetch.out)["PMC3040717"]["version"] == "PMC3040717.1"


def test_an_id_efetch_does_not_return_fails_and_is_asked_for_again(
    fetch: Fetch, replay: Replay
) -> None:
    replay.unfetchable["pmc"] = ["1111111"]
    result = fetch(*QUERY)
    assert result.exit_code == 1
    assert "failed PMC1111111: efetch db=pmc returned no record for id 1111111" in result.output
    assert len(list(fetch.out.glob("*.nxml"))) == 2
    assert events(fetch.out, "done")  # the run finished; the failure is recorded

    replay.unfetchable.clear()  # the rerun lists nothing new, but retries the failed id
    before = len(replay.log)
    result = fetch(*QUERY)
    assert result.exit_code == 1
    assert [(r.route, r.params.get("id")) for r in replay.log[before:]] == [
        ("esearch", None),
        ("efetch", "1111111"),
    ]
