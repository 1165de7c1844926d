"""Fixtures: the replay server, settings pointing at it, and ``litrag fetch`` through its CLI."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from core.cli import _load_commands, app
from core.config import get_settings
from tests.ingest.fetch import replay as replay_mod
from tests.ingest.fetch.replay import Replay

runner = CliRunner()


@pytest.fixture
def replay() -> Iterator[Replay]:
    """A fresh replay server per test (real HTTP on 127.0.0.1)."""
    state, server = replay_mod.start()
    yield state
    server.shutdown()
    server.server_close()


@pytest.fixture
def fetch_env(replay: Replay, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """LITRAG_FETCH__* pointing at the replay server; short backoff (same code path)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LITRAG_FETCH__EUTILS_URL", f"{replay.url}/entrez/eutils")
    monkeypatch.setenv("LITRAG_FETCH__PMC_OA_URL", f"{replay.url}/pmc/utils/oa/oa.fcgi")
    monkeypatch.setenv("LITRAG_FETCH__CTGOV_URL", f"{replay.url}/api/v2")
    monkeypatch.setenv("LITRAG_FETCH__BACKOFF_S", "0.05")
    monkeypatch.setenv("LITRAG_FETCH__CTGOV_REQUESTS_PER_SECOND", "10")
    monkeypatch.setenv("LITRAG_FETCH__EMAIL", "tests@example.org")
    monkeypatch.setenv("LITRAG_STORE__PATH", str(tmp_path / "store"))
    get_settings.cache_clear()
    if not app.registered_commands:
        _load_commands()
    yield
    get_settings.cache_clear()


@dataclass
class Fetch:
    """Runs ``litrag fetch …`` in-process through the real Typer app."""

    out: Path

    def __call__(self, *args: str) -> Result:
        """``litrag fetch ARGS… OUT`` (OUT appended)."""
        return runner.invoke(app, ["fetch", *args, str(self.out)])


@pytest.fixture
def fetch(fetch_env: None, tmp_path: Path) -> Fetch:
    """``litrag fetch`` into tmp_path/out."""
    return Fetch(tmp_path / "out")
