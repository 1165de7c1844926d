"""Retrieval metrics as pure functions of (run, qrels, k), plus a paired significance test.

Conventions (those of trec_eval / pytrec_eval, which BEIR reports, except for ties):

- A run ranks a query's documents by (-score, docid): ties are broken by docid *ascending*, so a
  run file written by :mod:`eval.trec` and the metrics here always agree on one order. trec_eval
  breaks ties by docid descending instead; with distinct scores the two give identical numbers.
- A document is relevant when its relevance is > 0. nDCG uses the graded relevance itself as the
  gain (``gain = rel``, not ``2**rel - 1``) with a ``log2(rank + 1)`` discount and an ideal ranking
  built from every judged document of the query, cut at k (trec_eval's ``ndcg_cut``).
- ``precision@k`` divides by k even when fewer than k documents were retrieved (trec_eval ``P``);
  ``map@k`` divides by the number of relevant documents in the qrels (trec_eval ``map_cut``).
- :func:`evaluate` averages over every query in the qrels; a query the run lacks scores 0 on
  every metric (trec_eval would skip it, which flatters a run that drops hard queries).
"""

from __future__ import annotations

import importlib
import math
import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Literal

Run = dict[str, dict[str, float]]
"""qid -> docid -> score (higher is better)."""
Qrels = dict[str, dict[str, int]]
"""qid -> docid -> graded relevance (> 0 is relevant)."""

MetricFn = Callable[[Mapping[str, float], Mapping[str, int], int], float]
TestMethod = Literal["auto", "wilcoxon", "permutation"]

__all__ = [
    "METRICS",
    "MetricFn",
    "Qrels",
    "Run",
    "average_precision",
    "evaluate",
    "mrr_at_k",
    "ndcg_at_k",
    "paired_test",
    "per_query",
    "permutation_test",
    "precision_at_k",
    "ranked",
    "recall_at_k",
]


def ranked(run_q: Mapping[str, float]) -> list[str]:
    """The query's docids, best first: sorted by (-score, docid)."""
    return sorted(run_q, key=lambda docid: (-run_q[docid], docid))


def _check_k(k: int) -> None:
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")


def _n_relevant(qrels_q: Mapping[str, int]) -> int:
    return sum(1 for rel in qrels_q.values() if rel > 0)


# Each private metric takes the ranking already sorted, so evaluate() sorts a query once.


def _ndcg(ranking: Sequence[str], qrels_q: Mapping[str, int], k: int) -> float:
    ideal = sorted((rel for rel in qrels_q.values() if rel > 0), reverse=True)[:k]
    idcg = sum(rel / math.log2(i + 2) for i, rel in enumerate(ideal))
    if idcg == 0.0:
        return 0.0
    dcg = sum(
        qrels_q[docid] / math.log2(i + 2)
        for i, docid in enumerate(ranking[:k])
        if qrels_q.get(docid, 0) > 0
    )
    return dcg / idcg


def _recall(ranking: Sequence[str], qrels_q: Mapping[str, int], k: int) -> float:
    n_rel = _n_relevant(qrels_q)
    if n_rel == 0:
        return 0.0
    return sum(1 for docid in ranking[:k] if qrels_q.get(docid, 0) > 0) / n_rel


def _precision(ranking: Sequence[str], qrels_q: Mapping[str, int], k: int) -> float:
    return sum(1 for docid in ranking[:k] if qrels_q.get(docid, 0) > 0) / k


def _mrr(ranking: Sequence[str], qrels_q: Mapping[str, int], k: int) -> float:
    for i, docid in enumerate(ranking[:k]):
        if qrels_q.get(docid, 0) > 0:
            return 1.0 / (i + 1)
    return 0.0


def _ap(ranking: Sequence[str], qrels_q: Mapping[str, int], k: int | None) -> float:
    n_rel = _n_relevant(qrels_q)
    if n_rel == 0:
        return 0.0
    hits = 0
    total = 0.0
    for i, docid in enumerate(ranking if k is None else ranking[:k]):
        if qrels_q.get(docid, 0) > 0:
            hits += 1
            total += hits / (i + 1)
    return total / n_rel


def ndcg_at_k(run_q: Mapping[str, float], qrels_q: Mapping[str, int], k: int) -> float:
    """nDCG@k with gain = relevance and a log2(rank + 1) discount (trec_eval ``ndcg_cut``)."""
    _check_k(k)
    return _ndcg(ranked(run_q), qrels_q, k)


def recall_at_k(run_q: Mapping[str, float], qrels_q: Mapping[str, int], k: int) -> float:
    """Relevant documents in the top k over all relevant documents (0 when none is relevant)."""
    _check_k(k)
    return _recall(ranked(run_q), qrels_q, k)


def precision_at_k(run_q: Mapping[str, float], qrels_q: Mapping[str, int], k: int) -> float:
    """Relevant documents in the top k, divided by k."""
    _check_k(k)
    return _precision(ranked(run_q), qrels_q, k)


def mrr_at_k(run_q: Mapping[str, float], qrels_q: Mapping[str, int], k: int) -> float:
    """Reciprocal rank of the first relevant document within the top k, else 0."""
    _check_k(k)
    return _mrr(ranked(run_q), qrels_q, k)


def average_precision(
    run_q: Mapping[str, float], qrels_q: Mapping[str, int], k: int | None = None
) -> float:
    """Average precision over the relevant (rel > 0) documents; ``k`` cuts the ranking first.

    Precision is summed at each relevant document retrieved (within the top k) and divided by the
    number of relevant documents in the qrels, so relevant documents never retrieved count 0
    (trec_eval ``map`` for ``k=None``, ``map_cut_k`` otherwise).
    """
    if k is not None:
        _check_k(k)
    return _ap(ranked(run_q), qrels_q, k)


METRICS: dict[str, MetricFn] = {
    "ndcg": ndcg_at_k,
    "recall": recall_at_k,
    "precision": precision_at_k,
    "mrr": mrr_at_k,
    "map": average_precision,
}
"""Metric name -> per-query function; :func:`evaluate` reports each as ``f"{name}@{k}"``."""

_RANKED_METRICS: dict[str, Callable[[Sequence[str], Mapping[str, int], int], float]] = {
    "ndcg": _ndcg,
    "recall": _recall,
    "precision": _precision,
    "mrr": _mrr,
    "map": _ap,
}


def per_query(run: Run, qrels: Qrels, metric: str, k: int) -> dict[str, float]:
    """``metric@k`` for every query in the qrels (0 for a query the run lacks)."""
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; choose from {sorted(METRICS)}")
    fn = METRICS[metric]
    return {qid: fn(run.get(qid, {}), qrels_q, k) for qid, qrels_q in qrels.items()}


def evaluate(run: Run, qrels: Qrels, ks: Iterable[int] = (10, 100)) -> dict[str, float]:
    """Mean of every metric at every k over the queries in the qrels.

    Keys are ``"ndcg@10"``, ``"recall@10"``, ``"precision@10"``, ``"mrr@10"``, ``"map@10"``, ...
    in the order of ``ks``. A query missing from the run counts as 0.
    """
    cutoffs = list(ks)
    for k in cutoffs:
        _check_k(k)
    if not qrels:
        raise ValueError("qrels has no queries")
    sums = {f"{name}@{k}": 0.0 for k in cutoffs for name in _RANKED_METRICS}
    for qid, qrels_q in qrels.items():
        ranking = ranked(run.get(qid, {}))
        for k in cutoffs:
            for name, fn in _RANKED_METRICS.items():
                sums[f"{name}@{k}"] += fn(ranking, qrels_q, k)
    return {key: total / len(qrels) for key, total in sums.items()}


def _paired_deltas(a: Mapping[str, float], b: Mapping[str, float]) -> list[float]:
    if set(a) != set(b):
        only = sorted(set(a) ^ set(b))
        raise ValueError(f"paired test needs the same queries in both; differing: {only[:5]}")
    if not a:
        raise ValueError("paired test needs at least one query")
    return [a[qid] - b[qid] for qid in sorted(a)]


def permutation_test(
    a: Mapping[str, float],
    b: Mapping[str, float],
    *,
    n_permutations: int = 10_000,
    seed: int = 0,
) -> tuple[float, float]:
    """Paired two-sided randomization test (random sign flips of the per-query deltas).

    Returns ``(mean(a - b), p)`` with ``p = (1 + #{|mean flipped| >= |mean observed|}) /
    (1 + n_permutations)``; the fixed seed makes it reproducible. Pure Python, no scipy.
    """
    deltas = _paired_deltas(a, b)
    n = len(deltas)
    observed = sum(deltas)
    if all(d == 0.0 for d in deltas):
        return 0.0, 1.0
    rng = random.Random(seed)
    # Flipping the sign of the deltas in set S turns the sum into observed - 2 * sum(S).
    tolerance = 1e-12 * max(1.0, sum(abs(d) for d in deltas))
    threshold = abs(observed) - tolerance
    at_least = 0
    for _ in range(n_permutations):
        bits = rng.getrandbits(n)
        flipped = sum(d for i, d in enumerate(deltas) if bits >> i & 1)
        if abs(observed - 2.0 * flipped) >= threshold:
            at_least += 1
    return observed / n, (at_least + 1) / (n_permutations + 1)


def _wilcoxon_p(deltas: Sequence[float]) -> float | None:
    """Two-sided Wilcoxon signed-rank p-value, or None when scipy is not installed."""
    try:
        # Imported by name: scipy is optional and ships no type information.
        stats = importlib.import_module("scipy.stats")
    except ImportError:
        return None
    return float(stats.wilcoxon(deltas).pvalue)


def paired_test(
    a: Mapping[str, float],
    b: Mapping[str, float],
    *,
    method: TestMethod = "auto",
) -> tuple[float, float]:
    """Paired two-sided test of per-query scores ``a`` against ``b`` (same queries in both).

    Returns ``(mean_delta, p_value)`` where ``mean_delta = mean(a[q] - b[q])``. ``"auto"`` uses
    the Wilcoxon signed-rank test (scipy) when scipy is importable, else :func:`permutation_test`
    (10,000 sign flips, seed 0). Identical scores give ``(0.0, 1.0)``.
    """
    deltas = _paired_deltas(a, b)
    mean_delta = sum(deltas) / len(deltas)
    if all(d == 0.0 for d in deltas):
        return 0.0, 1.0
    if method in ("auto", "wilcoxon"):
        p = _wilcoxon_p(deltas)
        if p is not None:
            return mean_delta, p
        if method == "wilcoxon":
            raise ImportError("method='wilcoxon' needs scipy")
    return permutation_test(a, b)
