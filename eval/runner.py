"""Retrieval evaluation runs: every query through :class:`core.retrieval.Retriever`, then metrics.

A run ranks *documents*: each query retrieves chunks with ``per_doc_cap=1`` (the retriever
over-fetches 4x and keeps each document's best chunk), so the top ``top_k`` hits are ``top_k``
distinct documents scored by their best chunk (max aggregation). Chunk ids map back to the set's
own document ids (``eval:<id>`` -> ``<id>``), so the run and the qrels share ids.

Modes:

- ``dense``, ``sparse``, ``hybrid``: the service's own retrieval (hybrid = fused in the store,
  by RRF with ``rrf_k`` or by weighted scores with ``alpha`` as the dense weight).
- ``fusion``: dense and sparse retrieved separately, each query's scores min-max normalised and
  combined as ``alpha * dense + (1 - alpha) * sparse`` (a document missing from one list gets 0
  from it), with :mod:`core.fusion` like the store's weighted fusion, but over documents.
  ``alpha`` is tuned on a train split (``scripts/train_fusion.py``), never on test.

Outputs, in one folder: ``run.trec``, ``summary.json`` (manifest + metrics), ``per_query.json``
and ``summary.md``.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import platform
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, cast

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from core.config import Settings
from core.embedding import CachedEmbedder, Embedder, load_embedder
from core.fusion import Fusion, best_first, minmax_sum, rrf_fuse
from core.retrieval import Retriever
from core.sparse import SparseEncoder
from core.store.base import Mode as StoreMode
from eval.datasets import EvalQuery, EvalSet, load
from eval.index import EvalIndex, open_index, source_doc_id
from eval.metrics import Qrels, Run, evaluate, paired_test, per_query
from eval.trec import write_run

__all__ = [
    "METRICS",
    "MODES",
    "EvalResult",
    "RunMode",
    "RunOptions",
    "attach_compare",
    "compare",
    "fuse_minmax",
    "fuse_rrf",
    "git_commit",
    "judged_only",
    "load_result",
    "make_progress",
    "retrieve",
    "run_eval",
    "score",
    "summary_markdown",
    "warm_query_cache",
    "write_outputs",
]

log = logging.getLogger(__name__)

RunMode = Literal["dense", "sparse", "hybrid", "fusion"]
FusionMethod = Literal["rrf", "weighted"]
MODES: tuple[RunMode, ...] = ("dense", "sparse", "hybrid", "fusion")

#: Reported metrics: (name in summaries, metric of eval.metrics, k).
METRICS: tuple[tuple[str, str, int], ...] = (
    ("ndcg@10", "ndcg", 10),
    ("recall@10", "recall", 10),
    ("recall@100", "recall", 100),
    ("mrr@10", "mrr", 10),
    ("map@100", "map", 100),
)

_REPO = Path(__file__).resolve().parents[1]

#: Called after each query with (queries done, total).
QueryProgress = Callable[[int, int], None]


@dataclass(frozen=True, slots=True)
class RunOptions:
    """How a run retrieves."""

    mode: RunMode = "hybrid"
    top_k: int = 100
    rrf_k: int = 60
    alpha: float = 0.5
    #: how ``hybrid`` fuses in the store (the service's setting); ``alpha`` is the dense weight
    fusion: FusionMethod = "rrf"

    @property
    def weighs(self) -> bool:
        """Whether ``alpha`` takes part: fusion mode, or hybrid with weighted store fusion."""
        return self.mode == "fusion" or (self.mode == "hybrid" and self.fusion == "weighted")

    def label(self) -> str:
        """Short name: ``hybrid``, ``hybrid-rrf20``, ``hybrid-w0.5``, ``fusion-a0.3``."""
        if self.weighs:
            return f"{'fusion-a' if self.mode == 'fusion' else 'hybrid-w'}{self.alpha:g}"
        if self.mode == "hybrid" and self.rrf_k != 60:
            return f"hybrid-rrf{self.rrf_k}"
        return self.mode


@dataclass(slots=True)
class EvalResult:
    """A finished run: where it was written, its summary and its per-query scores."""

    out_dir: Path
    summary: dict[str, Any]
    per_query: dict[str, dict[str, float]]
    run: Run = field(default_factory=dict)

    @property
    def metrics(self) -> dict[str, float]:
        """Mean metrics over the queries."""
        return cast(dict[str, float], self.summary["metrics"])

    @property
    def index_reused(self) -> bool:
        """True when the collection was reused without ingesting anything."""
        return bool(self.summary["index"]["reused"])


# --- retrieval -------------------------------------------------------------------------------


def warm_query_cache(embedder: Embedder, queries: Sequence[EvalQuery]) -> CachedEmbedder:
    """An embedder holding every query's vector, embedded in batches up front.

    One-text forward passes cost far more per text than batches on a small, busy CPU (seconds
    each when other processes compete for the cores); the retriever then finds each query's
    vector in the cache. Timings per query therefore exclude the query embedding.
    """
    cached = CachedEmbedder(embedder)
    cached.embed([q.text for q in queries])
    return cached


def retrieve(
    retriever: Retriever,
    queries: Sequence[EvalQuery],
    mode: StoreMode,
    top_k: int = 100,
    on_query: QueryProgress | None = None,
) -> tuple[Run, float]:
    """Document run of ``queries`` in one store mode, and the mean milliseconds per query."""
    run: Run = {}
    total_ms = 0.0
    for i, q in enumerate(queries, start=1):
        res = retriever.search(q.text, top_k=top_k, mode=mode, per_doc_cap=1)
        total_ms += res.embed_ms + res.search_ms
        docs: dict[str, float] = {}
        for hit in res.chunks:
            doc = source_doc_id(hit.chunk.doc_id)
            if hit.score > docs.get(doc, float("-inf")):
                docs[doc] = float(hit.score)
        run[q.qid] = docs
        if on_query:
            on_query(i, len(queries))
    return run, total_ms / max(len(queries), 1)


def fuse_minmax(dense: Run, sparse: Run, alpha: float, depth: int = 100) -> Run:
    """``alpha * minmax(dense) + (1 - alpha) * minmax(sparse)`` per query, top ``depth`` kept.

    Each query's whole run is normalised, and the fused scores are not rounded (the store rounds
    only so that its backends agree).
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    out: Run = {}
    for qid in dense.keys() | sparse.keys():
        runs = [dense.get(qid, {}).items(), sparse.get(qid, {}).items()]
        out[qid] = dict(best_first(minmax_sum(runs, [alpha, 1.0 - alpha]).items())[:depth])
    return out


def fuse_rrf(runs: Sequence[Run], k: int = 60, depth: int = 100) -> Run:
    """Reciprocal rank fusion of document runs: ``sum 1 / (k + rank)``.

    Ranks are 1-based positions with ties by document id (the run files' ranks), not the store's
    0-based ranks shared by tied scores.
    """
    out: Run = {}
    for qid in set().union(*(r.keys() for r in runs)):
        rankings = [
            {doc: rank for rank, (doc, _) in enumerate(best_first(r.get(qid, {}).items()), 1)}
            for r in runs
        ]
        out[qid] = dict(rrf_fuse(rankings, k, depth))
    return out


def judged_only(eval_set: EvalSet) -> EvalSet:
    """The set with its corpus cut to the documents judged for its queries (a small, easy
    subset for sets too large to index here, e.g. BioASQ 7b: its questions and its documents)."""
    judged = {doc for qrels_q in eval_set.qrels.values() for doc in qrels_q}
    return EvalSet(
        name=f"{eval_set.name}-{eval_set.split}-judged",
        docs=[d for d in eval_set.docs if d.doc_id in judged],
        queries=eval_set.queries,
        qrels=eval_set.qrels,
        split=eval_set.split,
    )


def run_queries(
    retriever: Retriever,
    queries: Sequence[EvalQuery],
    options: RunOptions,
    on_query: QueryProgress | None = None,
) -> tuple[Run, float]:
    """The document run of ``options`` and the mean milliseconds per query."""
    if options.mode != "fusion":
        return retrieve(retriever, queries, options.mode, options.top_k, on_query)
    n = len(queries)

    def half(offset: int) -> QueryProgress | None:
        return (lambda i, _t: on_query(offset + i, 2 * n)) if on_query else None

    dense, ms_d = retrieve(retriever, queries, "dense", options.top_k, half(0))
    sparse, ms_s = retrieve(retriever, queries, "sparse", options.top_k, half(n))
    return fuse_minmax(dense, sparse, options.alpha, options.top_k), ms_d + ms_s


# --- metrics ---------------------------------------------------------------------------------


def score(run: Run, qrels: Qrels) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
    """Mean metrics (:data:`METRICS`) and the per-query scores behind them."""
    means = evaluate(run, qrels, ks=sorted({k for _, _, k in METRICS}))
    metrics = {key: means[f"{name}@{k}"] for key, name, k in METRICS}
    columns = {key: per_query(run, qrels, name, k) for key, name, k in METRICS}
    by_query = {qid: {key: columns[key][qid] for key, _, _ in METRICS} for qid in sorted(qrels)}
    return metrics, by_query


# --- manifest and outputs --------------------------------------------------------------------


def git_commit() -> str | None:
    """``git rev-parse HEAD`` of the checkout, or None outside a git checkout."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=_REPO,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def _fmt(value: float) -> str:
    return f"{value:.4f}"


def summary_markdown(summary: Mapping[str, Any]) -> str:
    """A short markdown report of one run: setting, then a table of the metrics."""
    m = summary["manifest"]
    metrics: Mapping[str, float] = summary["metrics"]
    lines = [
        f"# {m['dataset']} ({m['split']}) — {m['label']}",
        "",
        f"- model: `{m['model']['name']}` (dim {m['model']['dim']}), "
        f"sparse: `{m['sparse']['name']}`",
        f"- chunking: {', '.join(f'{k}={v}' for k, v in m['chunking'].items())}",
        f"- mode: {m['mode']}, top_k: {m['top_k']} documents, rrf_k: {m['rrf_k']}"
        + (f", alpha: {m['alpha']}" if m["mode"] == "fusion" else ""),
        f"- queries: {m['n_queries']}, corpus: {m['n_docs']} documents, "
        f"{summary['index']['n_points']} chunks (`{summary['index']['collection']}`)",
        f"- corpus sha256: `{m['corpus_hash'][:16]}…`, commit: `{m['git_commit'] or 'unknown'}`",
        f"- date: {m['date']}",
        "",
        "| " + " | ".join(metrics) + " |",
        "|" + "---:|" * len(metrics),
        "| " + " | ".join(_fmt(v) for v in metrics.values()) + " |",
        "",
    ]
    cmp = summary.get("compare")
    if cmp:
        lines += compare_markdown(cmp)
    return "\n".join(lines)


def compare_markdown(cmp: Mapping[str, Any]) -> list[str]:
    """Markdown lines for a comparison made by :func:`compare`."""
    lines = [
        f"## Compared with {cmp['other_label']} ({cmp['other']})",
        "",
        "| metric | this | other | delta |",
        "|---|---:|---:|---:|",
    ]
    for key, row in cmp["metrics"].items():
        lines.append(
            f"| {key} | {_fmt(row['this'])} | {_fmt(row['other'])} | {row['delta']:+.4f} |"
        )
    t = cmp["test"]
    lines += [
        "",
        f"Paired {t['method']} test on per-query {t['metric']} over {t['n_queries']} queries: "
        f"mean delta {t['mean_delta']:+.4f}, p = {t['p_value']:.4g}.",
        "",
    ]
    return lines


def write_outputs(
    out_dir: Path, run: Run, summary: Mapping[str, Any], by_query: Mapping[str, Any]
) -> None:
    """``run.trec``, ``summary.json``, ``per_query.json`` and ``summary.md`` in ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    write_run(out_dir / "run.trec", run, tag=f"litrag-{summary['manifest']['label']}")
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    (out_dir / "per_query.json").write_text(
        json.dumps(by_query, indent=1, sort_keys=True) + "\n", encoding="utf-8"
    )
    (out_dir / "summary.md").write_text(summary_markdown(summary), encoding="utf-8")


def attach_compare(result: EvalResult, cmp: Mapping[str, Any]) -> None:
    """Record a comparison in the run's ``summary.json`` and ``summary.md``."""
    result.summary["compare"] = dict(cmp)
    write_outputs(result.out_dir, result.run, result.summary, result.per_query)


def load_result(path: Path) -> EvalResult:
    """A finished run from its folder or its ``summary.json`` (``per_query.json`` beside it)."""
    summary_path = path / "summary.json" if path.is_dir() else path
    if not summary_path.is_file():
        raise ValueError(f"no summary.json at {path}")
    summary = json.loads(summary_path.read_text(encoding="utf-8"))
    pq_path = summary_path.parent / "per_query.json"
    by_query = json.loads(pq_path.read_text(encoding="utf-8")) if pq_path.is_file() else {}
    return EvalResult(out_dir=summary_path.parent, summary=summary, per_query=by_query)


def compare(this: EvalResult, other: EvalResult, metric: str = "ndcg@10") -> dict[str, Any]:
    """Per-metric deltas (this - other) and a paired test on the per-query ``metric``.

    The test pairs the queries both runs scored; runs on different query sets are refused.
    """
    if this.summary["manifest"]["dataset"] != other.summary["manifest"]["dataset"] or (
        this.summary["manifest"]["split"] != other.summary["manifest"]["split"]
    ):
        raise ValueError("runs on different datasets or splits cannot be compared")
    if not other.per_query:
        raise ValueError(f"no per_query.json in {other.out_dir}")
    common = this.per_query.keys() & other.per_query.keys()
    if not common:
        raise ValueError("the two runs share no query")
    a = {q: this.per_query[q][metric] for q in common}
    b = {q: other.per_query[q][metric] for q in common}
    mean_delta, p = paired_test(a, b)
    # paired_test("auto") uses Wilcoxon when scipy is importable, else a permutation test.
    method = "Wilcoxon signed-rank" if importlib.util.find_spec("scipy") else "permutation"
    return {
        "other": str(other.out_dir),
        "other_label": other.summary["manifest"]["label"],
        "metrics": {
            key: {
                "this": this.metrics[key],
                "other": float(other.metrics[key]),
                "delta": this.metrics[key] - float(other.metrics[key]),
            }
            for key in this.metrics
            if key in other.metrics
        },
        "test": {
            "metric": metric,
            "method": method,
            "n_queries": len(common),
            "mean_delta": mean_delta,
            "p_value": p,
        },
    }


# --- one evaluation run ----------------------------------------------------------------------


def make_progress(console: Console) -> Progress:
    """The progress display used for ingestion and queries."""
    return Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[info]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
    )


def default_out_dir(eval_set: EvalSet, options: RunOptions, root: Path | None = None) -> Path:
    """``artifacts/eval/<dataset>-<split>-<label>-<UTC timestamp>``."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    base = root or Path("artifacts") / "eval"
    return base / f"{eval_set.name}-{eval_set.split}-{options.label()}-{stamp}"


def run_eval(
    dataset: str | Path | EvalSet,
    settings: Settings,
    options: RunOptions,
    *,
    split: str = "test",
    out_dir: Path | None = None,
    progress: Progress | None = None,
    embedder: Embedder | None = None,
    reindex: bool = False,
) -> EvalResult:
    """Index the set's corpus (or reuse its index), run every query, score and write outputs."""
    eval_set = dataset if isinstance(dataset, EvalSet) else load(dataset, split)
    embedder = embedder or load_embedder(settings.embedding)
    sparse = SparseEncoder(settings.sparse)
    t0 = time.perf_counter()

    index_task = None
    if progress is not None:
        index_task = progress.add_task(
            f"indexing {eval_set.name}", total=len(eval_set.docs), info="", visible=False
        )

    def on_index(done: int, total: int, chunks: int) -> None:
        if progress is not None and index_task is not None:
            elapsed = max(time.perf_counter() - t0, 1e-9)
            progress.update(
                index_task,
                completed=done,
                total=total,
                visible=True,
                info=f"{chunks} chunks · {chunks / elapsed:.1f} chunks/s",
            )

    index: EvalIndex = open_index(
        eval_set, settings, embedder, sparse, on_progress=on_index, force=reindex
    )
    try:
        query_task = None
        if progress is not None:
            n = len(eval_set.queries) * (2 if options.mode == "fusion" else 1)
            query_task = progress.add_task(f"queries ({options.label()})", total=n, info="")

        def on_query(done: int, total: int) -> None:
            if progress is not None and query_task is not None:
                progress.update(query_task, completed=done, total=total)

        t1 = time.perf_counter()
        cached = warm_query_cache(embedder, eval_set.queries)
        embed_s = time.perf_counter() - t1
        retriever = Retriever(
            index.store, cached, sparse, Fusion(options.fusion, options.rrf_k, options.alpha)
        )
        run, ms_per_query = run_queries(retriever, eval_set.queries, options, on_query)
        query_s = time.perf_counter() - t1
    finally:
        index.close()

    metrics, by_query = score(run, eval_set.qrels)
    manifest = {
        "dataset": eval_set.name,
        "split": eval_set.split,
        "label": options.label(),
        "mode": options.mode,
        "top_k": options.top_k,
        "rrf_k": options.rrf_k,
        "fusion": options.fusion if options.mode == "hybrid" else None,
        "alpha": options.alpha if options.weighs else None,
        "aggregation": "max chunk score per document (per_doc_cap=1)",
        "model": {"name": embedder.name, "dim": embedder.dim},
        "chunking": settings.chunking.model_dump(),
        "sparse": {"name": sparse.name, **settings.sparse.model_dump()},
        "store_backend": settings.store.backend,
        "git_commit": git_commit(),
        "corpus_hash": index.corpus_hash,
        "n_docs": index.n_docs,
        "n_queries": len(eval_set.queries),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
    }
    summary: dict[str, Any] = {
        "manifest": manifest,
        "metrics": metrics,
        "index": {
            "collection": index.collection,
            "meta_key": index.meta.key(),
            "reused": index.reused,
            "dense_from": index.dense_from,
            "n_points": index.n_points,
            "seconds": round(index.seconds, 2),
        },
        "timings": {
            "index_s": round(index.seconds, 2),
            "query_embedding_s": round(embed_s, 2),
            "queries_s": round(query_s, 2),
            "ms_per_query": round(ms_per_query, 2),
            "total_s": round(time.perf_counter() - t0, 2),
        },
    }
    out = out_dir or default_out_dir(eval_set, options)
    write_outputs(out, run, summary, by_query)
    return EvalResult(out_dir=out, summary=summary, per_query=by_query, run=run)
