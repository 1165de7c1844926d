"""`litrag fetch pubmed` against the replay server, and NCBI's request-rate rules measured.

esearch answers are derived from the recorded ``esearch_pubmed_cancer_usehistory.xml`` (IdList
rewritten to the seven PMIDs whose efetch was recorded); efetch answers are those recorded
``<PubmedArticle>`` elements, combined (see replay.py). The ErrorList answer is as recorded.
"""

from __future__ import annotations

import itertools

import pytest

from tests.ingest.fetch.conftest import Fetch
from tests.ingest.fetch.helpers import doc_ids, records
from tests.ingest.fetch.replay import EUTILS, Replay

PMIDS = ["12091962", "9997", "11748933", "11700088", "1234567", "22351513", "29915538"]


def _max_in_window(times: list[float], window: float = 1.0) -> int:
    """The most request arrivals in any window of ``window`` seconds (closed at both ends)."""
    return max(sum(1 for u in times if t <= u <= t + window) for t in times)


def test_fetch_writes_one_medline_file_per_citation(fetch: Fetch, replay: Replay) -> None:
    result = fetch("pubmed", "--query", "cancer")
    assert result.exit_code == 0, result.output
    for pmid in PMIDS:
        path = fetch.out / f"PMID{pmid}.xml"
        assert doc_ids(path) == [f"pmid:{pmid}"], pmid
    recs = records(fetch.out)
    assert recs["9997"]["version"] == "2019-06-09"  # DateRevised of that citation
    assert {r["status"] for r in recs.values()} == {"fetched"}
    (efetch,) = replay.requests("efetch")
    assert efetch.params["db"] == "pubmed" and efetch.params["id"].split(",") == PMIDS

    before = len(replay.log)
    result = fetch("pubmed", "--query", "cancer")
    assert result.exit_code == 0 and [r.route for r in replay.log[before:]] == ["esearch"]


def test_phrase_not_found_is_a_warning_not_a_failure(fetch: Fetch, replay: Replay) -> None:
    replay.esearch_files["abcXYZ"] = EUTILS / "esearch_protein_no_results_errorlist.xml"
    result = fetch("pubmed", "--query", "abcXYZ")
    assert result.exit_code == 0, result.output
    assert "warning: esearch: PhraseNotFound 'abcXYZ'" in result.output
    assert [r.route for r in replay.log] == ["esearch"]


def test_without_api_key_at_most_3_requests_in_any_second(
    fetch: Fetch, replay: Replay, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LITRAG_FETCH__PUBMED_BATCH", "1")  # 1 esearch + 7 efetch requests
    assert fetch("pubmed", "--query", "cancer").exit_code == 0
    times = [r.t for r in replay.log]
    assert len(times) == 8
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert _max_in_window(times) <= 3, [round(g, 4) for g in gaps]
    assert min(gaps) >= 0.30  # spaced evenly (1.05/3 s apart, minus arrival jitter), no bursts
    assert all("api_key" not in r.params for r in replay.log)


def test_with_api_key_at_most_10_requests_in_any_second(
    fetch: Fetch, replay: Replay, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LITRAG_FETCH__API_KEY", "k3y")
    monkeypatch.setenv("LITRAG_FETCH__PUBMED_BATCH", "1")
    monkeypatch.setenv("LITRAG_FETCH__SEARCH_PAGE_SIZE", "1")  # 7 esearch pages + 7 efetch
    assert fetch("pubmed", "--query", "cancer").exit_code == 0
    times = [r.t for r in replay.log]
    assert len(times) == 14
    gaps = [b - a for a, b in itertools.pairwise(times)]
    shown = [round(g, 4) for g in gaps]
    assert _max_in_window(times) <= 10, shown
    assert min(gaps) >= 0.08, shown  # 0.105 s planned, minus arrival jitter
    assert times[-1] - times[0] < 13 / 3  # faster than the keyless rate: the key is used
    assert all(r.params.get("api_key") == "k3y" for r in replay.log)
    searches = replay.requests("esearch")
    assert [r.params["retstart"] for r in searches] == [str(i) for i in range(7)]


def test_a_rate_above_ncbis_limit_is_a_configuration_error(
    fetch: Fetch, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LITRAG_FETCH__NCBI_REQUESTS_PER_SECOND", "5")
    result = fetch("pubmed", "--query", "cancer")
    assert result.exit_code == 2
    assert "exceeds NCBI's limit of 3/s without an api_key" in " ".join(result.output.split())


def test_a_search_past_pubmeds_9999_ids_lists_what_it_can(
    fetch: Fetch, replay: Replay, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PubMed's esearch refuses a retstart above 9998 (the replay server answers as NCBI does):
    the run lists the first 9,999 ids, says so, and fetches; it never asks past the limit."""
    monkeypatch.setenv("LITRAG_FETCH__API_KEY", "replay-key")
    replay.unfetchable["pubmed"] = [str(50_000_000 + i) for i in range(12_000)]
    result = fetch("pubmed", "--query", "cancer", "--max", "3")
    assert result.exit_code == 0, result.output
    out = " ".join(result.output.split())
    assert "PubMed lists only the first 9999 of the 12007 records of a search" in out
    pages = [
        (int(r.params["retstart"]), int(r.params["retmax"])) for r in replay.requests("esearch")
    ]
    assert pages and all(start <= 9998 and start + size <= 9999 for start, size in pages), pages
    assert sum(1 for r in records(fetch.out).values() if r["status"] == "fetched") == 3


def test_a_listing_that_changes_while_paged_marks_nothing_gone(
    fetch: Fetch, replay: Replay, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each esearch page runs the search again: a record withdrawn after the first page moves
    every later id up one place, and one id is never listed. The run must not take that listing
    as complete (with --full it would mark the skipped, still existing, record gone)."""
    monkeypatch.setenv("LITRAG_FETCH__API_KEY", "replay-key")
    monkeypatch.setenv("LITRAG_FETCH__SEARCH_PAGE_SIZE", "2")
    assert fetch("pubmed", "--query", "cancer", "--full").exit_code == 0
    replay.withdrawn_after_first_page["pubmed"] = PMIDS[0]
    result = fetch("pubmed", "--query", "cancer", "--full")
    assert result.exit_code == 0, result.output
    assert "the result set changed while paging" in " ".join(result.output.split())
    assert not [k for k, r in records(fetch.out).items() if r["status"] == "gone"]
