"""``litrag ingest`` through its real command line: exit codes, summary, report, clear errors."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from core.cli import _load_commands, app
from core.config import Settings, StoreSettings, get_settings
from core.sparse import SparseEncoder
from core.store import meta_for, open_store

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


# `litrag ingest ARGS...` that says on exit whether sentence-transformers (the model loader) was
# ever imported: it is imported only to load the model.
_INGEST_TELLING_MODEL_LOAD = """
import atexit, sys
atexit.register(lambda: print("model loaded:", "sentence_transformers" in sys.modules))
from core.cli import main
sys.argv = ["litrag", "ingest", *sys.argv[1:]]
main()
"""


@pytest.mark.parametrize("collection", [None, "mine"], ids=["derived-name", "named"])
def test_store_held_by_another_process_fails_before_the_model_loads(
    tmp_path: Path,
    corpus: Path,
    embedder,  # type: ignore[no-untyped-def]
    collection: str | None,
) -> None:
    settings = Settings(store=StoreSettings(backend="edge", path=tmp_path / "store"))
    sparse = SparseEncoder(settings.sparse)
    meta = meta_for(settings, embedder.name, embedder.dim, sparse.name)
    held = open_store(settings.store, meta, collection=collection)  # this process holds it
    try:
        named = ["--collection", collection] if collection else []
        result = subprocess.run(
            [sys.executable, "-c", _INGEST_TELLING_MODEL_LOAD, str(corpus / "pubmed"), *named],
            env={**os.environ, "LITRAG_STORE__PATH": str(tmp_path / "store")},
            cwd=tmp_path,
            capture_output=True,
            text=True,
            check=False,
        )
    finally:
        held.close()
    assert result.returncode == 2, result.stdout + result.stderr
    error = " ".join(result.stderr.split())  # the console wraps long lines
    assert "is open in another process" in error
    assert f"pid {os.getpid()}" in error
    assert "model loaded: False" in result.stdout
