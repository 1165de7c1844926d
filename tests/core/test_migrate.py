"""``litrag store migrate`` / ``info`` through the real command line: real documents ingested into
an Edge store are copied to qdrant-client ``:memory:`` without re-embedding and verified."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from core.cli import _load_commands, app
from core.config import Settings, StoreSettings, get_settings
from core.sparse import SparseEncoder
from core.store import meta_for, open_store
from core.store.client import ClientStore
from core.store.migrate import (
    copy_points,
    open_edge,
    parse_spec,
    same_neighbours,
    sample_positions,
    verify,
)
from ingest.pipeline import Pipeline

REPO = Path(__file__).resolve().parents[2]
INPUTS = [
    REPO / "samples" / "ctgov" / "NCT04267848.json",
    REPO / "samples" / "pubmed" / "pubmed-29768149.xml",
]
runner = CliRunner()


@pytest.fixture(scope="module")
def edge_store(tmp_path_factory: pytest.TempPathFactory, embedder) -> tuple[Path, str, int]:  # type: ignore[no-untyped-def]
    """A real Edge store (path, collection, points), ingested by the pipeline and closed."""
    path = tmp_path_factory.mktemp("store")
    settings = Settings(store=StoreSettings(backend="edge", path=path))
    sparse = SparseEncoder(settings.sparse)
    store = open_store(settings.store, meta_for(settings, embedder.name, embedder.dim, sparse.name))
    try:
        stats = Pipeline(settings, store, embedder, sparse).run(INPUTS)
        assert stats.failures == 0 and stats.stored_documents == 2
        store.optimize()
        n = store.count()
    finally:
        store.close()
    return path, store.collection, n


@pytest.fixture(autouse=True)
def _env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.chdir(tmp_path)
    get_settings.cache_clear()
    if not app.registered_commands:
        _load_commands()
    yield
    get_settings.cache_clear()


def _flat(text: str) -> str:
    return " ".join(text.split())


def test_migrate_to_memory(edge_store: tuple[Path, str, int]) -> None:
    path, collection, n = edge_store
    assert n > 20
    result = runner.invoke(
        app, ["store", "migrate", "--from", f"edge:{path}", "--to", ":memory:", "--batch", "16"]
    )
    assert result.exit_code == 0, result.output
    out = _flat(result.stdout)
    assert f"copied {n} points from edge:{path}#{collection} to :memory:#{collection}" in out
    assert f"points: source {n}, target {n} ok" in out
    for i in range(1, 6):
        assert f"sample {i}/5" in out
    assert "FAILED" not in out
    assert out.endswith("verification passed")
    # the Edge store was closed again: it opens
    open_edge(parse_spec(f"edge:{path}")).close()


def test_migrate_named_collections(edge_store: tuple[Path, str, int]) -> None:
    path, collection, _ = edge_store
    result = runner.invoke(
        app,
        ["store", "migrate", "--from", f"edge:{path}/edge#{collection}", "--to", ":memory:#copy"],
    )
    assert result.exit_code == 0, result.output
    assert "to :memory:#copy in" in _flat(result.stdout)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--from", "nonsense", "--to", ":memory:"], "is not a store: use edge:PATH"),
        (["--from", "edge:", "--to", ":memory:"], "'edge:' needs a folder"),
        (["--from", "EDGE", "--to", "ftp://host"], "--to 'ftp://host' is not a store"),
        (["--from", "EDGE", "--to", "edge:/tmp"], "the target must be a Qdrant URL or :memory:"),
        (["--from", "EDGE#missing", "--to", ":memory:"], "no collection 'missing' in"),
        (["--from", "edge:/nonexistent/litrag", "--to", ":memory:"], "no such folder"),
        (["--from", "EDGE", "--to", ":memory:#"], "empty collection name after '#'"),
    ],
)
def test_bad_specs_exit_2(edge_store: tuple[Path, str, int], args: list[str], message: str) -> None:
    path = edge_store[0]
    args = [a.replace("EDGE", f"edge:{path}") for a in args]
    result = runner.invoke(app, ["store", "migrate", *args])
    assert result.exit_code == 2, result.output
    assert message in _flat(result.output)


def test_missing_option_exit_2() -> None:
    result = runner.invoke(app, ["store", "migrate", "--to", ":memory:"])
    assert result.exit_code == 2


def test_info(edge_store: tuple[Path, str, int]) -> None:
    path, collection, n = edge_store
    result = runner.invoke(app, ["store", "info", f"edge:{path}"])
    assert result.exit_code == 0, result.output
    lines = dict(line.split(None, 1) for line in result.stdout.splitlines() if " " in line)
    assert lines["collection"].strip() == collection
    assert lines["points"].strip() == str(n)
    assert lines["embedding_model"].strip() == "all-MiniLM-L6-v2"
    assert lines["dim"].strip() == "384"
    assert "max_tokens=200" in lines["chunking"]
    result = runner.invoke(app, ["store", "info", ":memory:#nothing"])
    assert result.exit_code == 2
    assert "no collection 'nothing' at :memory:" in result.output


def test_verification_catches_a_changed_copy(edge_store: tuple[Path, str, int]) -> None:
    path, _, n = edge_store
    source = open_edge(parse_spec(f"edge:{path}"))
    target = ClientStore(StoreSettings(url=":memory:"), source.collection, source.meta)
    try:
        copied = copy_points(source, target, batch=10, expected=n)
        assert copied.copied == n
        assert [p for p, _ in copied.samples] == sample_positions(n)
        assert verify(source, target, copied.samples).ok
        # tamper with one sampled point in the target: the payload check must see it
        pos, point = copied.samples[2]
        changed = dataclasses.replace(point, payload={**point.payload, "year": 1900})
        target.upsert_raw([changed])
        result = verify(source, target, copied.samples)
        assert not result.ok and result.counts_equal
        bad = [s for s in result.samples if not s.ok]
        assert [s.position for s in bad] == [pos]
        assert bad[0].problems == ["payload differs in year"]
    finally:
        target.close()
        source.close()


def test_same_neighbours_allows_only_ties() -> None:
    a = [("a", 0.9), ("b", 0.8), ("c", 0.8), ("d", 0.7), ("e", 0.6), ("f", 0.6)]
    tied = [("a", 0.9), ("c", 0.8), ("b", 0.8), ("d", 0.7), ("f", 0.6), ("g", 0.6)]
    assert same_neighbours(a, tied, k=5)  # b/c reordered, e/f tie across the cut
    other = [("a", 0.9), ("b", 0.8), ("c", 0.8), ("x", 0.7), ("e", 0.6)]
    assert not same_neighbours(a, other, k=5)
    rescored = [("a", 0.9), ("b", 0.8), ("c", 0.8), ("d", 0.71), ("e", 0.6)]
    assert not same_neighbours(a, rescored, k=5)
