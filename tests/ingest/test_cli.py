"""``litrag ingest`` through its real command line: exit codes, summary, report, clear errors."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from core.cli import _load_commands, app
from core.config import get_settings

runner = CliRunner()


@pytest.fixture(autouse=True)
def _env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LITRAG_STORE__PATH", str(tmp_path / "store"))
    get_settings.cache_clear()
    if not app.registered_commands:
        _load_commands()
    yield
    get_settings.cache_clear()


def test_help_lists_commands() -> None:
    result = runner.invoke(app, ["ingest", "--help"])
    assert result.exit_code == 0
    for option in ("--collection", "--batch-size", "--recreate", "--report"):
        assert option in result.output


def test_exit_codes_and_report(tmp_path: Path, corpus: Path, embedder) -> None:  # type: ignore[no-untyped-def]
    good = tmp_path / "good"
    good.mkdir()
    shutil.copy(corpus / "ctgov-legacy-xml" / "NCT00000102.xml", good)
    result = runner.invoke(app, ["ingest", str(good)])
    assert result.exit_code == 0, result.output
    assert "documents stored: trial" in result.output

    (good / "broken.xml").write_bytes(b"<clinical_study><id_info>")
    report = tmp_path / "report.jsonl"
    result = runner.invoke(app, ["ingest", str(good), "--report", str(report)])
    assert result.exit_code == 1, result.output
    lines = [json.loads(x) for x in report.read_text().splitlines()]
    assert [(x["kind"], Path(x["file"]).name) for x in lines] == [("failure", "broken.xml")]
    assert "skipped: unchanged" in result.output

    result = runner.invoke(app, ["ingest", str(tmp_path / "missing")])
    assert result.exit_code == 2
    assert "no such file or directory" in result.output


def test_config_error_exit_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LITRAG_CHUNKING__MAX_TOKENS", "400")
    result = runner.invoke(app, ["ingest", str(tmp_path)])
    assert result.exit_code == 2
    assert "exceeds the model input of 256 tokens" in result.output
