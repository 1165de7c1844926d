"""`litrag fetch trials` against the replay server: the two recorded ClinicalTrials.gov v2 pages
(Phelan-McDermid, pageSize 5), chained by their recorded nextPageToken. Page 2's own token is
removed by the server so the listing ends there (no third page was recorded); a changed study is
derived from a recorded one (its overallStatus edited, its last update posted today), and the
server answers a LastUpdatePostDate range from those dates, as replay.py describes."""

from __future__ import annotations

import json
from datetime import date, timedelta

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
    (cursor,) = events(fetch.out, "cursor")
    assert cursor["cursor"] == {"page_token": TOKEN, "page": 2, "total": 10}
    assert cursor["ids"] == ids[:5]  # page 1's studies: a resumed run still knows them
    assert "filter.advanced" not in first.params  # a first run lists everything


def _range(day: date) -> str:
    return f"AREA[LastUpdatePostDate]RANGE[{day.isoformat()},MAX]"


def _day_before(run: dict[str, str]) -> date:
    """The day before a run event's start (UTC)."""
    return date.fromisoformat(run["started"][:10]) - timedelta(days=1)


def test_rerun_asks_only_for_studies_updated_since_the_last_run(
    fetch: Fetch, replay: Replay
) -> None:
    args = [*QUERY, "--status", "completed", "--since", "2020-01-01"]
    assert fetch(*args).exit_code == 0
    (first_run,) = events(fetch.out, "run")
    first = replay.requests("studies")[0]
    assert first.params["filter.advanced"] == _range(date(2020, 1, 1))  # --since alone

    before = len(replay.log)
    result = fetch(*args)
    assert result.exit_code == 0, result.output
    (rerun,) = replay.log[before:]  # one page: nothing updated since the last run
    # the day before the last finished run started is later than --since: it wins
    assert rerun.params["filter.advanced"] == _range(_day_before(first_run))
    assert rerun.params["query.term"] == "Phelan-McDermid Syndrome"
    assert rerun.params["filter.overallStatus"] == "COMPLETED"
    assert len(events(fetch.out, "record")) == 10  # nothing written, nothing recorded
    assert "updated since" in " ".join(result.output.split())

    page1 = json.loads((CTGOV / "studies_page1_phelan_pageSize5.json").read_bytes())
    nct = replay.update_study(page1["studies"][0], "TERMINATED")
    other = fetch.out / f"{_recorded_ids()[1]}.json"
    mtime = other.stat().st_mtime_ns
    before = len(replay.log)
    assert fetch(*args).exit_code == 0
    assert len(replay.log[before:]) == 1
    rec = records(fetch.out)[nct]
    assert rec["status"] == "updated" and rec["version"] == date.today().isoformat()
    assert json.loads((fetch.out / f"{nct}.json").read_bytes()) == replay.study_overrides[nct]
    assert len(events(fetch.out, "record")) == 11
    assert other.stat().st_mtime_ns == mtime


def test_a_later_since_wins_over_the_last_run(fetch: Fetch, replay: Replay) -> None:
    later = date.today() + timedelta(days=30)
    assert fetch(*QUERY, "--since", later.isoformat()).exit_code == 0
    assert fetch(*QUERY, "--since", later.isoformat()).exit_code == 0
    assert [r.params["filter.advanced"] for r in replay.log] == [_range(later)] * 2


def test_full_rerun_reads_the_complete_listing(fetch: Fetch, replay: Replay) -> None:
    assert fetch(*QUERY).exit_code == 0
    before = len(replay.log)
    result = fetch(*QUERY, "--full")
    assert result.exit_code == 0, result.output
    full = replay.log[before:]
    assert [r.params.get("pageToken") for r in full] == [None, TOKEN]
    assert all("filter.advanced" not in r.params for r in full)
    assert len(events(fetch.out, "record")) == 10  # nothing changed, nothing recorded
    *_, full_run = events(fetch.out, "run")
    assert full_run["full"] is True
    # the next plain rerun counts from the --full run
    before = len(replay.log)
    assert fetch(*QUERY).exit_code == 0
    (rerun,) = replay.log[before:]
    assert rerun.params["filter.advanced"] == _range(_day_before(full_run))


def test_another_query_into_the_same_folder_does_not_reuse_a_date(
    fetch: Fetch, replay: Replay
) -> None:
    assert fetch(*QUERY).exit_code == 0
    for other in (["--query", "Phelan-McDermid"], [*QUERY[1:], "--status", "COMPLETED"]):
        before = len(replay.log)
        assert fetch("trials", *other).exit_code == 0
        first = replay.log[before]
        assert "filter.advanced" not in first.params, other  # its own first run: everything
    keys = [e["key"] for e in events(fetch.out, "run")]
    assert len(set(keys)) == 3
    before = len(replay.log)
    assert fetch(*QUERY).exit_code == 0
    assert "filter.advanced" in replay.log[before].params


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
