"""Crash recovery: after a ``litrag ingest`` process dies (SIGKILL, no cleanup) the next run leaves
exactly the chunks a clean ingest stores. The dying runs are real subprocesses on a real Qdrant Edge
store; the store is reopened from disk afterwards."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from core.config import Settings, StoreSettings
from core.sparse import SparseEncoder
from core.store import meta_for, open_store
from ingest.pipeline import Pipeline
from ingest.stats import IngestStats

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
ARTICLE = "jats/elife/elife07586.xml"  # small real eLife article (CC-BY)
LITRAG = Path(sys.executable).parent / "litrag"

# Runs `litrag ingest ARGS...` in this interpreter after the hook above it is installed.
_RUN_CLI = """
from core.cli import main
sys.argv = ["litrag", "ingest", *sys.argv[1:]]
main()
"""

# The process kills itself at its first stale-tail delete: a changed document's new chunks are
# written, its old tail is not deleted yet.
_DIE_BEFORE_TAIL_DELETE = """
import os, signal, sys
from core.store.edge import EdgeStore

def _die(self, doc_id, from_ordinal=0):
    os.kill(os.getpid(), signal.SIGKILL)

EdgeStore.delete_doc_chunks = _die
"""

# Prints the number of points of every upsert once they are written, for the test to follow.
_TELL_UPSERTS = """
import sys
from core.store.edge import EdgeStore

_upsert = EdgeStore.upsert

def _upsert_and_tell(self, points):
    _upsert(self, points)
    print(len(points), flush=True)

EdgeStore.upsert = _upsert_and_tell
"""


def _settings(store_path: Path) -> Settings:
    return Settings(store=StoreSettings(backend="edge", path=store_path))


def _env(store_path: Path) -> dict[str, str]:
    return {**os.environ, "LITRAG_STORE__PATH": str(store_path)}


def _ingest(store_path: Path, embedder, paths: list[Path]) -> IngestStats:  # type: ignore[no-untyped-def]
    """One run of the real pipeline, in this process, into the Edge store at ``store_path``."""
    settings = _settings(store_path)
    sparse = SparseEncoder(settings.sparse)
    store = open_store(settings.store, meta_for(settings, embedder.name, embedder.dim, sparse.name))
    try:
        return Pipeline(settings, store, embedder, sparse).run(paths)
    finally:
        store.close()


def _points(store_path: Path, embedder) -> dict[str, tuple[str, int, str]]:  # type: ignore[no-untyped-def]
    """Every stored point: id -> (content hash, ordinal, chunk text)."""
    settings = _settings(store_path)
    meta = meta_for(settings, embedder.name, embedder.dim, SparseEncoder(settings.sparse).name)
    store = open_store(settings.store, meta, create=False)
    try:
        return {
            p.point_id: (pl["content_hash"], pl["ordinal"], pl["chunk"]["text"])
            for p in store.iter_points()
            if (pl := p.payload)
        }
    finally:
        store.close()


def test_rerun_after_crash_before_tail_delete_keeps_only_current_chunks(
    tmp_path: Path,
    corpus: Path,
    embedder,  # type: ignore[no-untyped-def]
) -> None:
    docs = tmp_path / "in"
    docs.mkdir()
    article = docs / "article.xml"
    shutil.copy(corpus / ARTICLE, article)
    crashed, clean = tmp_path / "crashed", tmp_path / "clean"
    _ingest(crashed, embedder, [docs])
    long_version = _points(crashed, embedder)

    # a shorter version; `litrag ingest` dies after writing it, before deleting the old tail
    xml = article.read_text()
    body = xml.index("<body>") + len("<body>")
    article.write_text(xml[:body] + "<p>Only one paragraph now.</p>" + xml[xml.index("</body>") :])
    died = subprocess.run(
        [sys.executable, "-c", _DIE_BEFORE_TAIL_DELETE + _RUN_CLI, str(docs), "--no-optimize"],
        env=_env(crashed),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert died.returncode == -signal.SIGKILL, died.stderr
    crashed_state = _points(crashed, embedder)
    old_hash = {h for h, _, _ in long_version.values()}
    assert crashed_state.keys() == long_version.keys()  # the new chunks overwrote the head only
    stale = {pid for pid, (h, _, _) in crashed_state.items() if h in old_hash}
    assert stale and len(stale) < len(crashed_state)

    rerun = _ingest(crashed, embedder, [docs])
    assert (rerun.unchanged, rerun.replaced_docs) == (0, 1)
    _ingest(clean, embedder, [docs])
    recovered = _points(crashed, embedder)
    assert recovered == _points(clean, embedder)
    assert sorted(o for _, o, _ in recovered.values()) == list(range(len(recovered)))
    assert not stale & recovered.keys()
    assert any("Only one paragraph now." in text for _, _, text in recovered.values())
    # and the run after that finds the document complete
    assert _ingest(crashed, embedder, [docs]).unchanged == 1


@pytest.fixture
def sample_subset(tmp_path: Path) -> Path:
    """Every format of samples/ (trials JSON and legacy XML zip, MEDLINE, PDF) and two of its JATS
    articles: about half of its chunks, so that three ingests fit in a test."""
    d = tmp_path / "samples"
    shutil.copytree(SAMPLES, d, ignore=shutil.ignore_patterns("journal.p[cgmop]*.xml"))
    return d


@pytest.mark.slow
@pytest.mark.timeout(1800)  # three ingests: about 2 minutes idle, 10 on a loaded 2-core machine
def test_kill_9_at_40_percent_then_rerun_matches_clean_ingest(
    tmp_path: Path,
    sample_subset: Path,
    embedder,  # type: ignore[no-untyped-def]
) -> None:
    crashed, clean = tmp_path / "crashed", tmp_path / "clean"
    reference = _ingest(clean, embedder, [sample_subset])
    total = reference.chunks
    assert reference.stored_documents > 150

    stderr = tmp_path / "killed.stderr"
    argv = [str(sample_subset), "--batch-size", "32"]  # small batches: many points to stop at
    with stderr.open("w") as err:
        proc = subprocess.Popen(
            [sys.executable, "-c", _TELL_UPSERTS + _RUN_CLI, *argv],
            env=_env(crashed),
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
        )
        assert proc.stdout is not None
        written = 0
        for line in proc.stdout:  # one line per upsert, so no waiting on a clock
            written += int(line) if line.strip().isdigit() else 0
            if written >= 0.4 * total:
                proc.send_signal(signal.SIGKILL)
                break
        proc.stdout.close()
        proc.wait()
    assert proc.returncode == -signal.SIGKILL, stderr.read_text()
    assert 0.4 * total <= written < total

    rerun = subprocess.run(
        [str(LITRAG), "ingest", str(sample_subset)],
        env=_env(crashed),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert rerun.returncode == (1 if reference.failures else 0), rerun.stdout + rerun.stderr
    assert _points(crashed, embedder) == _points(clean, embedder)
