"""An evaluation run end to end on a small real subset of SciFact, through the CLI.

The subset: the first 20 test queries, their relevant abstracts and 200 other abstracts of the
real corpus (the first ones in corpus order), written as a BEIR folder.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from core.config import Settings, StoreSettings
from core.embedding import Embedder
from core.fusion import Fusion
from core.retrieval import Retriever
from core.sparse import SparseEncoder
from eval.cli import register
from eval.datasets import EvalDoc, EvalSet, load_beir
from eval.index import open_index
from eval.metrics import ranked
from eval.runner import RunOptions, fuse_minmax, fuse_rrf, run_queries, warm_query_cache
from eval.trec import read_run

N_QUERIES = 20
N_OTHER = 200


@pytest.fixture(scope="module")
def subset(tmp_path_factory: pytest.TempPathFactory, shared_data: Path) -> Path:
    full = load_beir(shared_data / "eval" / "scifact", "test")
    queries = full.queries[:N_QUERIES]
    relevant = {d for q in queries for d in full.qrels[q.qid]}
    others = [d for d in full.docs if d.doc_id not in relevant][:N_OTHER]
    docs = [d for d in full.docs if d.doc_id in relevant] + others
    root = tmp_path_factory.mktemp("beir") / "scifact-mini"
    (root / "qrels").mkdir(parents=True)
    (root / "corpus.jsonl").write_text(
        "".join(
            json.dumps({"_id": d.doc_id, "title": d.title, "text": d.text}) + "\n" for d in docs
        )
    )
    (root / "queries.jsonl").write_text(
        "".join(json.dumps({"_id": q.qid, "text": q.text}) + "\n" for q in queries)
    )
    rows = [f"{q.qid}\t{d}\t{r}\n" for q in queries for d, r in full.qrels[q.qid].items()]
    (root / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n" + "".join(rows))
    return root


@pytest.fixture
def app() -> typer.Typer:
    root = typer.Typer()

    @root.callback()
    def _root() -> None:
        """litrag (test root)."""

    register(root)
    return root


def _summary(out: Path) -> dict:  # type: ignore[type-arg]
    return json.loads((out / "summary.json").read_text())


def _check_tie_order(path: Path) -> None:
    """Within each query: ranks 1..n, scores non-increasing, equal scores by docid ascending."""
    by_query: dict[str, list[tuple[int, float, str]]] = {}
    for line in path.read_text().splitlines():
        qid, q0, docid, rank, score, _tag = line.split()
        assert q0 == "Q0"
        by_query.setdefault(qid, []).append((int(rank), float(score), docid))
    assert by_query
    for rows in by_query.values():
        assert [r for r, _, _ in rows] == list(range(1, len(rows) + 1))
        for (_, s1, d1), (_, s2, d2) in itertools.pairwise(rows):
            assert s1 > s2 or (s1 == s2 and d1 < d2)


def test_eval_retrieval_end_to_end(
    subset: Path, app: typer.Typer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LITRAG_STORE__PATH", str(tmp_path / "store"))
    monkeypatch.setenv("LITRAG_STORE__BACKEND", "edge")
    runner = CliRunner()

    hybrid = tmp_path / "hybrid"
    base = ["eval", "retrieval", "--dataset", str(subset)]
    res = runner.invoke(app, [*base, "--mode", "hybrid", "--out", str(hybrid)])
    assert res.exit_code == 0, res.output
    for name in ("run.trec", "summary.json", "per_query.json", "summary.md"):
        assert (hybrid / name).is_file(), name
    summary = _summary(hybrid)
    assert summary["index"]["reused"] is False
    assert summary["manifest"]["n_queries"] == N_QUERIES
    assert summary["manifest"]["mode"] == "hybrid"
    assert summary["manifest"]["corpus_hash"]
    metrics = summary["metrics"]
    assert set(metrics) == {"ndcg@10", "recall@10", "recall@100", "mrr@10", "map@100"}
    assert all(0.0 <= v <= 1.0 for v in metrics.values())
    assert metrics["ndcg@10"] > 0.5, metrics
    assert metrics["recall@100"] >= metrics["recall@10"]
    per_query = json.loads((hybrid / "per_query.json").read_text())
    assert len(per_query) == N_QUERIES
    # The run file and the metrics agree: read back, it ranks exactly as scored.
    run = read_run(hybrid / "run.trec")
    assert len(run) == N_QUERIES
    assert all(not d.startswith("eval:") for run_q in run.values() for d in run_q)
    _check_tie_order(hybrid / "run.trec")
    assert "ndcg@10" in (hybrid / "summary.md").read_text()

    # A second run reuses the index: nothing is ingested again.
    sparse = tmp_path / "sparse"
    res = runner.invoke(app, [*base, "--mode", "sparse", "--out", str(sparse)])
    assert res.exit_code == 0, res.output
    assert _summary(sparse)["index"]["reused"] is True
    assert _summary(sparse)["index"]["collection"] == summary["index"]["collection"]
    assert "reused" in res.output
    _check_tie_order(sparse / "run.trec")

    # Store fusion is the service's: RRF and weighted scores; weighted with all weight on dense
    # ranks the top documents exactly as dense mode does.
    runs = {}
    for label, extra in (
        ("dense", ["--mode", "dense"]),
        ("hybrid-rrf", ["--mode", "hybrid", "--fusion", "rrf"]),
        ("hybrid-w1", ["--mode", "hybrid", "--fusion", "weighted", "--alpha", "1"]),
    ):
        res = runner.invoke(app, [*base, *extra, "--out", str(tmp_path / label)])
        assert res.exit_code == 0, res.output
        runs[label] = read_run(tmp_path / label / "run.trec")
    assert _summary(tmp_path / "hybrid-w1")["manifest"]["label"] == "hybrid-w1"
    assert _summary(tmp_path / "hybrid-w1")["manifest"]["fusion"] == "weighted"
    assert _summary(tmp_path / "hybrid-rrf")["manifest"]["alpha"] is None
    for qid, dense_q in runs["dense"].items():
        assert ranked(runs["hybrid-w1"][qid])[:10] == ranked(dense_q)[:10], qid
    assert runs["hybrid-rrf"] != runs["hybrid-w1"]
    res = runner.invoke(app, [*base, "--mode", "hybrid", "--fusion", "max"])
    assert res.exit_code == 2 and "--fusion must be rrf or weighted" in res.output

    # Other BM25 settings make another collection, built from the first one's dense vectors.
    monkeypatch.setenv("LITRAG_SPARSE__B", "0.5")
    bm25 = tmp_path / "bm25-b05"
    res = runner.invoke(app, [*base, "--mode", "sparse", "--out", str(bm25)])
    assert res.exit_code == 0, res.output
    index = _summary(bm25)["index"]
    assert index["reused"] is False
    assert index["dense_from"] == summary["index"]["collection"]
    assert index["n_points"] == summary["index"]["n_points"]
    assert _summary(bm25)["manifest"]["sparse"]["b"] == 0.5
    monkeypatch.delenv("LITRAG_SPARSE__B")

    # --compare prints per-metric deltas and a paired test's p-value.
    again = tmp_path / "hybrid2"
    res = runner.invoke(
        app,
        [
            *base,
            "--mode",
            "hybrid",
            "--out",
            str(again),
            "--compare",
            str(sparse / "summary.json"),
        ],
    )
    assert res.exit_code == 0, res.output
    assert "delta" in res.output and "p = " in res.output
    cmp = _summary(again)["compare"]
    assert set(cmp["metrics"]) == set(metrics)
    assert cmp["test"]["n_queries"] == N_QUERIES
    assert 0.0 <= cmp["test"]["p_value"] <= 1.0
    delta = cmp["metrics"]["ndcg@10"]["delta"]
    assert delta == pytest.approx(metrics["ndcg@10"] - _summary(sparse)["metrics"]["ndcg@10"])

    # A chart of the runs.
    png = tmp_path / "chart.png"
    res = runner.invoke(app, ["eval", "chart", str(hybrid), str(sparse), "--out", str(png)])
    assert res.exit_code == 0, res.output
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "| scifact-mini | test |" in res.output


def test_bad_mode_is_a_usage_error(subset: Path, app: typer.Typer) -> None:
    res = CliRunner().invoke(
        app, ["eval", "retrieval", "--dataset", str(subset), "--mode", "bogus"]
    )
    assert res.exit_code == 2


def test_fusion_helpers() -> None:
    dense = {"q": {"a": 0.9, "b": 0.5, "c": 0.1}}
    sparse = {"q": {"c": 12.0, "d": 6.0, "a": 2.0}}
    only_dense = fuse_minmax(dense, sparse, alpha=1.0)
    assert ranked(only_dense["q"])[:3] == ["a", "b", "c"]
    only_sparse = fuse_minmax(dense, sparse, alpha=0.0)
    assert ranked(only_sparse["q"])[:2] == ["c", "d"]
    half = fuse_minmax(dense, sparse, alpha=0.5)
    assert half["q"]["a"] == pytest.approx(0.5 * 1.0 + 0.5 * 0.0)
    assert half["q"]["c"] == pytest.approx(0.5 * 0.0 + 0.5 * 1.0)
    with pytest.raises(ValueError, match="alpha"):
        fuse_minmax(dense, sparse, alpha=1.5)
    rrf = fuse_rrf([dense, sparse], k=60)
    assert rrf["q"]["a"] == pytest.approx(1 / 61 + 1 / 63)
    assert ranked(rrf["q"])[0] in {"a", "c"}


#: Documents of the one-chunk corpus: fewer than a run's 100, so every list is fused whole.
N_SHORT_DOCS = 80
#: Words kept of each abstract, so that every document is one chunk.
SHORT_WORDS = 60


@pytest.mark.parametrize("backend", ["edge", "memory"])
def test_eval_fusion_ranks_as_the_store_fuses(
    shared_data: Path, embedder: Embedder, tmp_path: Path, backend: str
) -> None:
    """Eval's ``fusion`` mode and the store's weighted hybrid rank documents alike.

    With one chunk per document and every hit inside both fusion depths, fusing document runs
    (eval) and fusing chunk hits in the store are the same computation; the store only rounds
    fused scores to 6 decimals.
    """
    full = load_beir(shared_data / "eval" / "scifact", "test")
    queries = full.queries[:N_QUERIES]
    relevant = {d for q in queries for d in full.qrels[q.qid]}
    picked = [d for d in full.docs if d.doc_id in relevant]
    picked += [d for d in full.docs if d.doc_id not in relevant][: N_SHORT_DOCS - len(picked)]
    docs = [EvalDoc(d.doc_id, d.title, " ".join(d.text.split()[:SHORT_WORDS])) for d in picked]
    qrels = {q.qid: full.qrels[q.qid] for q in queries}
    short = EvalSet("scifact-short", docs, queries, qrels, split="test")
    store = (
        StoreSettings(backend="edge", path=tmp_path / "store")
        if backend == "edge"
        else StoreSettings(backend="qdrant", url=":memory:", path=tmp_path / "store")
    )
    settings = Settings(store=store)
    sparse = SparseEncoder(settings.sparse)
    index = open_index(short, settings, embedder, sparse)
    try:
        assert index.n_points == len(docs) == N_SHORT_DOCS
        cached = warm_query_cache(embedder, queries)
        for alpha in (0.3, 0.5):
            retriever = Retriever(index.store, cached, sparse, Fusion("weighted", 60, alpha))
            in_store, _ = run_queries(
                retriever, queries, RunOptions("hybrid", fusion="weighted", alpha=alpha)
            )
            in_eval, _ = run_queries(retriever, queries, RunOptions("fusion", alpha=alpha))
            assert in_store.keys() == in_eval.keys()
            for qid, eval_q in in_eval.items():
                assert ranked(in_store[qid]) == ranked(eval_q), (alpha, qid)
                for doc, score in eval_q.items():
                    assert in_store[qid][doc] == round(score, 6), (alpha, qid, doc)
    finally:
        index.close()
