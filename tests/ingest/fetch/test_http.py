"""Retries, backoff, Retry-After and clear network errors, through `litrag fetch pubmed` and the
replay server (its 429 body is NCBI's recorded rate-limit body; 500/503 and dropped connections
are injected by the server)."""

from __future__ import annotations

import email.utils
import itertools
import socket
import threading
import time

import pytest

from ingest.fetch.http import RateLimiter, retry_after_seconds
from tests.ingest.fetch.conftest import Fetch
from tests.ingest.fetch.replay import Replay

PUBMED = ["pubmed", "--query", "cancer"]


def test_429_5xx_and_dropped_connections_are_retried_until_they_pass(
    fetch: Fetch, replay: Replay
) -> None:
    replay.retry_after = "1"
    replay.inject("efetch", "429", "503", "drop", "500")
    result = fetch(*PUBMED)
    assert result.exit_code == 0, result.output
    assert len(list(fetch.out.glob("PMID*.xml"))) == 7
    tries = [r.t for r in replay.requests("efetch")]
    assert len(tries) == 5
    assert tries[1] - tries[0] >= 1.0  # Retry-After: 1 honoured
    # then backoff 0.05 s doubling, +-25 % jitter (and never faster than 3 requests/s)
    assert tries[2] - tries[1] >= 0.1 * 0.75
    assert tries[3] - tries[2] >= 0.2 * 0.75


def test_persistent_failure_is_a_clear_error_with_exit_code_1(
    fetch: Fetch, replay: Replay, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LITRAG_FETCH__RETRIES", "2")
    replay.inject("efetch", "503", "503", "503")
    result = fetch(*PUBMED)
    assert result.exit_code == 1
    out = " ".join(result.output.split())
    assert f"POST {replay.url}/entrez/eutils/efetch.fcgi failed after 3 attempts: HTTP 503" in out
    assert len(replay.requests("efetch")) == 3
    assert not list(fetch.out.glob("PMID*.xml"))


def test_rate_limited_beyond_max_retry_after_stops_clearly(
    fetch: Fetch, replay: Replay, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LITRAG_FETCH__MAX_RETRY_AFTER_S", "30")
    replay.retry_after = "700"
    replay.inject("esearch", "429")
    result = fetch(*PUBMED)
    assert result.exit_code == 1
    out = " ".join(result.output.split())
    assert "the server asks to retry after 700 s" in out
    assert "API rate limit exceeded" in out  # NCBI's recorded body is shown
    assert len(replay.log) == 1


def test_unreachable_server_names_the_url(fetch: Fetch, monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("LITRAG_FETCH__EUTILS_URL", f"http://127.0.0.1:{port}/entrez/eutils")
    monkeypatch.setenv("LITRAG_FETCH__RETRIES", "1")
    result = fetch(*PUBMED)
    assert result.exit_code == 1
    out = " ".join(result.output.split())
    assert f"GET http://127.0.0.1:{port}/entrez/eutils/esearch.fcgi?" in out
    assert "failed after 2 attempts: cannot connect" in out
    assert "tool=litrag" in out


def test_api_key_never_appears_in_messages(
    fetch: Fetch, replay: Replay, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LITRAG_FETCH__API_KEY", "s3cret-key")
    monkeypatch.setenv("LITRAG_FETCH__RETRIES", "0")
    replay.inject("esearch", "503")
    result = fetch(*PUBMED)
    assert result.exit_code == 1 and "esearch.fcgi" in result.output
    assert "s3cret-key" not in result.output
    assert replay.log[0].params["api_key"] == "s3cret-key"


def test_retry_after_forms() -> None:
    assert retry_after_seconds("7") == 7.0
    later = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 28 <= (retry_after_seconds(later) or 0) <= 30
    assert retry_after_seconds("soon") is None and retry_after_seconds(None) is None


def test_rate_limiter_spaces_starts_across_threads() -> None:
    limiter = RateLimiter(20.0)
    starts: list[float] = []
    lock = threading.Lock()

    def go() -> None:
        limiter.wait()
        with lock:
            starts.append(time.monotonic())

    threads = [threading.Thread(target=go) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    starts.sort()
    assert (
        min(b - a for a, b in itertools.pairwise(starts)) >= 0.04
    )  # 0.0525 planned, minus wake-up jitter
    assert starts[-1] - starts[0] >= 5 * 0.0525 - 0.02
