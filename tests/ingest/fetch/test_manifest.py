"""The manifest survives a crash mid-line and keeps a second fetch out of the same folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.cli import app
from core.config import IngestSettings
from ingest.discover import Skipped, discover
from ingest.fetch.manifest import MANIFEST_NAME, Manifest, ManifestError, Record, now_iso
from ingest.parsers.base import Source
from tests.ingest.fetch.conftest import Fetch, runner
from tests.ingest.fetch.helpers import events
from tests.ingest.fetch.replay import Replay


def test_a_torn_last_line_is_cut_off_and_appending_goes_on(tmp_path: Path) -> None:
    with Manifest.open(tmp_path) as m:
        run = m.start_run("k", "pubmed", {})
        m.add(Record("pubmed", "1", "fetched", run.run, now_iso(), None, "ab", "PMID1.xml"))
    path = tmp_path / MANIFEST_NAME
    with path.open("ab") as fh:  # a crash in the middle of writing the next line
        fh.write(b'{"type":"record","source":"pubmed","id":"2","sta')
    with Manifest.open(tmp_path) as m:
        assert m.have("pubmed", "1") is not None and m.have("pubmed", "2") is None
        assert m.unfinished("k") is not None and m.unfinished("k").handled == {"1"}  # type: ignore[union-attr]
        m.add(Record("pubmed", "3", "fetched", run.run, now_iso(), None, "cd", "PMID3.xml"))
    with Manifest.open(tmp_path) as m:
        assert m.have("pubmed", "3") is not None and m.corrupt_lines == 0


def test_a_second_fetch_into_the_same_folder_is_refused(fetch: Fetch, replay: Replay) -> None:
    with Manifest.open(fetch.out):
        result = fetch("pubmed", "--query", "cancer")
    assert result.exit_code == 2
    assert "in use by another `litrag fetch`" in result.output
    assert not replay.log


def test_the_manifest_is_hidden_from_litrag_ingest(fetch: Fetch) -> None:
    assert fetch("pubmed", "--query", "cancer").exit_code == 0
    assert events(fetch.out, "done")
    found = list(discover([fetch.out], IngestSettings()))
    assert all(isinstance(f, Source | Skipped) for f in found)
    names = sorted(Path(f.name).name for f in found if isinstance(f, Source))
    assert names == sorted(p.name for p in fetch.out.glob("PMID*.xml"))


def test_unwritable_out_dir_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ManifestError, match="cannot use"):
        Manifest.open(blocker / "out")


def test_help_names_the_three_sources_and_the_manifest(fetch: Fetch) -> None:
    result = runner.invoke(app, ["fetch", "--help"])
    assert result.exit_code == 0
    for text in ("pmc", "pubmed", "trials", MANIFEST_NAME, "--full", "gone"):
        assert text in result.output
    for source in ("pmc", "pubmed", "trials"):
        result = runner.invoke(app, ["fetch", source, "--help"])
        assert "--full" in result.output and "--prune" in result.output, source
    result = fetch("trials", "--query", "x", "--server", "http://127.0.0.1:9")
    assert result.exit_code == 2 and "need --ingest" in result.output
