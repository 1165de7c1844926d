"""Documents removed at the source: `--full` records them as gone, an incomplete run never does.

Removal is derived: the replay server leaves a recorded study out of its pages
(``removed_studies``) or drops a recorded article from the esearch/efetch catalog; everything
else is served as recorded (see replay.py).
"""

from __future__ import annotations

import pytest

from core.config import IngestSettings
from ingest.discover import discover
from ingest.parsers.base import Source
from tests.ingest.fetch.conftest import Fetch
from tests.ingest.fetch.helpers import events, records
from tests.ingest.fetch.replay import Replay

TRIALS = ["trials", "--query", "Phelan-McDermid Syndrome"]
PUBMED = ["pubmed", "--query", "cancer"]
STUDY = "NCT05105685"  # recorded on page 1
LATE_STUDY = "NCT07281079"  # recorded on page 2


@pytest.fixture(autouse=True)
def _ncbi_at_10_per_second(monkeypatch: pytest.MonkeyPatch) -> None:
    """An NCBI API key (the replay server ignores it): 10 requests/s instead of 3, same code."""
    monkeypatch.setenv("LITRAG_FETCH__API_KEY", "replay-key")


def _gone(fetch: Fetch) -> dict[str, dict[str, object]]:
    return {k: r for k, r in records(fetch.out).items() if r["status"] == "gone"}


def test_full_trials_listing_marks_a_removed_study_gone(fetch: Fetch, replay: Replay) -> None:
    assert fetch(*TRIALS).exit_code == 0
    replay.removed_studies.add(STUDY)
    assert fetch(*TRIALS).exit_code == 0  # a date-filtered rerun cannot tell
    assert not _gone(fetch)

    result = fetch(*TRIALS, "--full")
    assert result.exit_code == 0, result.output
    out = " ".join(result.output.split())
    assert f"gone {STUDY}: no longer listed by the query" in out
    assert "gone (no longer listed) │ 1" in out
    (rec,) = _gone(fetch).values()
    assert rec["id"] == STUDY and rec["file"] == f"{STUDY}.json" and rec["sha256"]
    assert (fetch.out / f"{STUDY}.json").is_file()  # kept by default
    *_, done = events(fetch.out, "done")
    assert done["counts"]["gone"] == 1

    assert fetch(*TRIALS, "--full").exit_code == 0  # already gone: not marked again
    assert len([e for e in events(fetch.out, "record") if e["status"] == "gone"]) == 1

    replay.removed_studies.clear()  # listed again: fetched again
    assert fetch(*TRIALS, "--full").exit_code == 0
    assert records(fetch.out)[STUDY]["status"] == "fetched"


def test_an_interrupted_or_max_limited_full_run_marks_nothing_gone(
    fetch: Fetch, replay: Replay, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert fetch(*TRIALS).exit_code == 0
    replay.removed_studies.add(LATE_STUDY)
    (fetch.out / "NCT02710084.json").unlink()  # so that --max has something to cut

    assert fetch(*TRIALS, "--full", "--max", "1").exit_code == 0
    assert not _gone(fetch)

    monkeypatch.setenv("LITRAG_FETCH__RETRIES", "0")
    replay.inject("studies", "drop")  # the resumed --max run loses page 1 (page token: none)
    assert fetch(*TRIALS, "--full").exit_code == 1
    assert not _gone(fetch)

    replay.inject("studies", "ok", "drop")  # page 1 read, page 2 lost
    assert fetch(*TRIALS, "--full").exit_code == 1
    assert not _gone(fetch)
    before = len(replay.log)
    result = fetch(*TRIALS, "--full")  # resumes at page 2; page 1's ids come from the cursor
    assert result.exit_code == 0, result.output
    (resumed,) = replay.log[before:]
    assert resumed.params["pageToken"]
    assert list(_gone(fetch)) == [LATE_STUDY]


def test_a_listing_shorter_than_its_total_count_marks_nothing_gone(
    fetch: Fetch, replay: Replay
) -> None:
    """The server's totalCount is one more than it lists (as when a study moves between pages
    while they are read)."""
    assert fetch(*TRIALS).exit_code == 0
    replay.removed_studies.add(STUDY)
    replay.ctgov_total_offset = 1
    result = fetch(*TRIALS, "--full")
    assert result.exit_code == 0, result.output
    assert "listed 9 studies but counted 10" in " ".join(result.output.split())
    assert not _gone(fetch)


def test_prune_moves_the_files_of_gone_studies_out_of_the_way(fetch: Fetch, replay: Replay) -> None:
    assert fetch(*TRIALS).exit_code == 0
    replay.removed_studies.update({STUDY, LATE_STUDY})
    assert fetch(*TRIALS, "--full").exit_code == 0  # gone, files kept
    assert (fetch.out / f"{STUDY}.json").is_file()

    result = fetch(*TRIALS, "--prune")
    assert result.exit_code == 2 and "--prune needs --full" in result.output

    replay.removed_studies.discard(LATE_STUDY)
    result = fetch(*TRIALS, "--full", "--prune")
    assert result.exit_code == 0, result.output
    assert not (fetch.out / f"{STUDY}.json").exists()
    assert (fetch.out / ".gone" / f"{STUDY}.json").is_file()  # marked by the earlier run
    rec = records(fetch.out)[STUDY]
    assert rec["status"] == "gone" and rec["file"] == f".gone/{STUDY}.json"
    assert records(fetch.out)[LATE_STUDY]["status"] == "fetched"  # listed again
    found = [f.name for f in discover([fetch.out], IngestSettings()) if isinstance(f, Source)]
    assert len(found) == 9 and not any(".gone" in name for name in found)


def test_full_pubmed_searches_twice_and_marks_a_removed_citation_gone(
    fetch: Fetch, replay: Replay
) -> None:
    assert fetch(*PUBMED).exit_code == 0
    del replay.catalogs["pubmed"]["9997"]
    (fetch.out / "PMID1234567.xml").unlink()  # deleted by hand: --full fetches it again
    assert fetch(*PUBMED).exit_code == 0
    assert not _gone(fetch)

    before = len(replay.log)
    result = fetch(*PUBMED, "--full")
    assert result.exit_code == 0, result.output
    asked = [(r.route, r.params.get("mindate"), r.params.get("id")) for r in replay.log[before:]]
    (changed_since,) = [m for route, m, _ in asked if route == "esearch" and m]
    # the complete listing, what changed since the last run, and the missing file only
    assert asked == [
        ("esearch", None, None),
        ("esearch", changed_since, None),
        ("efetch", None, "1234567"),
    ]
    assert (fetch.out / "PMID1234567.xml").is_file()
    assert list(_gone(fetch)) == ["9997"]
    *_, plan = events(fetch.out, "plan")
    assert "9997" not in plan["listed"] and len(plan["listed"]) == 6


def test_a_failed_id_the_complete_listing_lacks_is_gone_not_retried(
    fetch: Fetch, replay: Replay
) -> None:
    replay.unfetchable["pmc"] = ["1111111"]
    assert fetch("pmc", "--query", "stem cells").exit_code == 1
    replay.unfetchable.clear()
    del replay.catalogs["pmc"]["3040717"]  # the skipped one (not open access) is withdrawn
    before = len(replay.log)
    result = fetch("pmc", "--query", "stem cells", "--full")
    assert result.exit_code == 0, result.output
    assert [r.route for r in replay.log[before:]] == ["esearch", "esearch"]  # nothing fetched
    gone = _gone(fetch)
    assert sorted(gone) == ["PMC1111111", "PMC3040717"]
    assert gone["PMC3040717"]["file"] is None


def test_a_document_another_query_recorded_is_left_alone(fetch: Fetch, replay: Replay) -> None:
    """The replay server ignores the term: both queries list the same seven citations."""
    assert fetch(*PUBMED).exit_code == 0
    assert fetch("pubmed", "--query", "tumour").exit_code == 0
    del replay.catalogs["pubmed"]["9997"]
    del replay.catalogs["pubmed"]["1234567"]
    assert fetch(*PUBMED, "--full").exit_code == 0
    assert not _gone(fetch)


def test_an_empty_complete_listing_marks_nothing_gone(fetch: Fetch, replay: Replay) -> None:
    assert fetch(*PUBMED).exit_code == 0
    replay.catalogs["pubmed"].clear()
    result = fetch(*PUBMED, "--full")
    assert result.exit_code == 0, result.output
    assert "the complete listing is empty" in " ".join(result.output.split())
    assert not _gone(fetch)
