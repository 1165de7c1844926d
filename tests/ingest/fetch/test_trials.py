"""`litrag fetch trials` against the replay server: the two recorded ClinicalTrials.gov v2 pages
(Phelan-McDermid, pageSize 5), chained by their recorded nextPageToken. Page 2's own token is
removed by the server so the listing ends there (no third page was recorded); a changed study is
derived from a recorded one (its overallStatus edited), as named in each test."""

from __future__ import annotations

import copy
import json

import pytest

from tests.ingest.fetch.conftest import Fetch
from tests.ingest.fetch.helpers import doc_ids, events, records
from tests.ingest.fetch.replay import CTGOV, Replay

TOKEN = "ZVt07cGHkvI2wRk2CJf6_LLq14bEL8swd7KrgP4dnDeTsPkw"  # page 1's recorded nextPageToken
QUERY = ["trials", "--query", "Phelan-McDermid Syndrome"]


def _recorded_ids() -> list[str]:
    ids = []
    for name in ("studies_page1_phelan_pageSize5.json", "studies_page2_phelan_pageToken.json"):
        page = json.loads((CTGOV / name).read_bytes())
        ids += [s["protocolSection"]["identificationModule"]["nctId"] for s in page["studies"]]
    return ids


def test_pages_are_followed_and_each_study_is_a_parseable_file(
    fetch: Fetch, replay: Replay
) -> None:
    result = fetch(*QUERY, "--status", "recruiting", "--status", "Completed")
    assert result.exit_code == 0, result.output
    ids = _recorded_ids()
    assert len(ids) == 10
    assert sorted(p.stem for p in fetch.out.glob("NCT*.json")) == sorted(ids)
    for nct in ids:
        assert doc_ids(fetch.out / f"{nct}.json") == [f"nct:{nct}"]
    recs = records(fetch.out)
    assert {r["status"] for r in recs.values()} == {"fetched"} and len(recs) == 10
    first, second = replay.requests("studies")
    assert first.params["query.term"] == "Phelan-McDermid Syndrome"
    assert first.params["filter.overallStatus"] == "RECRUITING,COMPLETED"
    assert first.params["countTotal"] == "true" and first.params["format"] == "json"
    assert first.params["pageSize"] == "100" and "pageToken" not in first.params
    assert second.params["pageToken"] == TOKEN and "countTotal" not in second.params
    cursor = events(fetch.out, "cursor")
    assert [c["cursor"] for c in cursor] == [{"page_token": TOKEN, "page": 2}]


def test_rerun_reads_the_pages_and_writes_only_a_changed_study(
    fetch: Fetch, replay: Replay
) -> None:
    assert fetch(*QUERY).exit_code == 0
    before = len(replay.log)
    result = fetch(*QUERY)
    assert result.exit_code == 0, result.output
    assert [r.route for r in replay.log[before:]] == ["studies", "studies"]  # the listing only
    assert len(events(fetch.out, "record")) == 10  # nothing written, nothing recorded

    page1 = json.loads((CTGOV / "studies_page1_phelan_pageSize5.json").read_bytes())
    changed = copy.deepcopy(page1["studies"][0])  # derived: a recorded study, status edited
    changed["protocolSection"]["statusModule"]["overallStatus"] = "TERMINATED"
    nct = changed["protocolSection"]["identificationModule"]["nctId"]
    replay.study_overrides[nct] = changed
    other = fetch.out / f"{_recorded_ids()[1]}.json"
    mtime = other.stat().st_mtime_ns
    assert fetch(*QUERY).exit_code == 0
    rec = records(fetch.out)[nct]
    assert rec["status"] == "updated"
    assert json.loads((fetch.out / f"{nct}.json").read_bytes()) == changed
    assert len(events(fetch.out, "record")) == 11
    assert other.stat().st_mtime_ns == mtime


def test_interrupted_listing_resumes_at_the_saved_page_token(
    fetch: Fetch, replay: Replay, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LITRAG_FETCH__RETRIES", "0")
    replay.inject("studies", "ok", "drop")
    result = fetch(*QUERY)
    assert result.exit_code == 1
    assert "connection lost" in result.output
    assert len(list(fetch.out.glob("NCT*.json"))) == 5
    before = len(replay.log)
    result = fetch(*QUERY)
    assert result.exit_code == 0, result.output
    (resumed,) = replay.log[before:]  # page 1 is not asked for again
    assert resumed.params["pageToken"] == TOKEN
    assert len(list(fetch.out.glob("NCT*.json"))) == 10
    assert len(events(fetch.out, "done")) == 1


def test_a_client_error_page_is_shown_and_not_retried(fetch: Fetch, replay: Replay) -> None:
    """The 400 text is the replay server's own (no CT.gov 400 body was recorded): page 2's real
    nextPageToken is kept, and the server does not know a third page."""
    replay.ctgov_end_after_page2 = False
    result = fetch(*QUERY)
    assert result.exit_code == 1
    out = " ".join(result.output.split())
    assert "failed: HTTP 400: unknown pageToken" in out and "/api/v2/studies?" in out
    assert len(replay.requests("studies")) == 3
    assert len(list(fetch.out.glob("NCT*.json"))) == 10  # both pages kept


def test_unknown_status_is_a_usage_error(fetch: Fetch, replay: Replay) -> None:
    result = fetch(*QUERY, "--status", "sleeping")
    assert result.exit_code == 2
    assert "unknown trial status 'sleeping'" in result.output
    assert not replay.log


def test_since_filters_on_the_last_update_posted(fetch: Fetch, replay: Replay) -> None:
    assert fetch(*QUERY, "--since", "2024-01-31").exit_code == 0
    first = replay.requests("studies")[0]
    assert first.params["filter.advanced"] == "AREA[LastUpdatePostDate]RANGE[2024-01-31,MAX]"
    result = fetch(*QUERY, "--since", "2024-02-31")
    assert result.exit_code == 2 and "invalid date '2024-02-31'" in result.output
