"""Metrics: hand-computed cases, edge cases, and agreement with trec_eval (pytrec_eval)."""

from __future__ import annotations

import itertools
import json
import math
import random
from pathlib import Path

import pytest

from eval import metrics
from eval.metrics import (
    Qrels,
    Run,
    average_precision,
    evaluate,
    mrr_at_k,
    ndcg_at_k,
    paired_test,
    per_query,
    permutation_test,
    precision_at_k,
    ranked,
    recall_at_k,
)
from eval.trec import read_qrels_tsv

# Ranking a, b, c with relevances a=2, b=unjudged, c=1; z=0 is judged non-relevant, never retrieved.
RUN_Q = {"a": 3.0, "b": 2.0, "c": 1.0}
QRELS_Q = {"a": 2, "c": 1, "z": 0}


def test_ndcg_by_hand() -> None:
    # DCG@3  = 2/log2(2) + 0/log2(3) + 1/log2(4) = 2 + 0 + 0.5 = 2.5
    # IDCG@3 = 2/log2(2) + 1/log2(3)             = 2 + 0.6309297535714575 = 2.6309297535714575
    # nDCG@3 = 2.5 / 2.6309297535714575          = 0.9502344167898356
    assert ndcg_at_k(RUN_Q, QRELS_Q, 3) == pytest.approx(0.9502344167898356, abs=1e-12)
    # gain = rel, not 2**rel - 1: that convention would give (3 + 1/2) / (3 + 1/log2(3)) = 0.9639
    assert ndcg_at_k(RUN_Q, QRELS_Q, 3) != pytest.approx((3 + 0.5) / (3 + 1 / math.log2(3)))
    # @1: DCG = 2, IDCG = 2 -> 1.0.  @2: DCG = 2, IDCG = 2 + 1/log2(3) -> 2 / 2.6309 = 0.76018
    assert ndcg_at_k(RUN_Q, QRELS_Q, 1) == 1.0
    assert ndcg_at_k(RUN_Q, QRELS_Q, 2) == pytest.approx(2 / (2 + 1 / math.log2(3)), abs=1e-12)


def test_recall_precision_mrr_ap_by_hand() -> None:
    # Relevant (rel > 0): a (rank 1) and c (rank 3); 2 in the qrels.
    assert recall_at_k(RUN_Q, QRELS_Q, 2) == 0.5  # a only: 1/2
    assert recall_at_k(RUN_Q, QRELS_Q, 3) == 1.0  # a and c: 2/2
    assert precision_at_k(RUN_Q, QRELS_Q, 2) == 0.5  # 1/2
    assert precision_at_k(RUN_Q, QRELS_Q, 3) == pytest.approx(2 / 3)  # 2/3
    assert precision_at_k(RUN_Q, QRELS_Q, 10) == 0.2  # divides by k: 2/10
    assert mrr_at_k(RUN_Q, QRELS_Q, 10) == 1.0  # a at rank 1
    # AP = (P@1 + P@3) / 2 = (1/1 + 2/3) / 2 = 0.8333...; AP@2 = (1/1) / 2 = 0.5
    assert average_precision(RUN_Q, QRELS_Q) == pytest.approx(5 / 6, abs=1e-12)
    assert average_precision(RUN_Q, QRELS_Q, 2) == 0.5


def test_mrr_rank_three_and_cutoff() -> None:
    run_q = {"x": 0.9, "y": 0.8, "c": 0.7}
    assert mrr_at_k(run_q, QRELS_Q, 10) == pytest.approx(1 / 3)  # c at rank 3
    assert mrr_at_k(run_q, QRELS_Q, 2) == 0.0  # c is cut off


def test_ties_broken_by_docid_ascending() -> None:
    run_q = {"b": 1.0, "a": 1.0, "c": 2.0}
    assert ranked(run_q) == ["c", "a", "b"]
    # b is third: 1/3 whatever the dict's insertion order.
    assert mrr_at_k(run_q, {"b": 1}, 10) == pytest.approx(1 / 3)
    assert mrr_at_k(dict(reversed(run_q.items())), {"b": 1}, 10) == pytest.approx(1 / 3)


def test_no_relevant_retrieved_and_no_relevant_judged() -> None:
    run_q = {"x": 1.0, "y": 0.5}
    for fn in (ndcg_at_k, recall_at_k, precision_at_k, mrr_at_k, average_precision):
        assert fn(run_q, QRELS_Q, 10) == 0.0
        assert fn(RUN_Q, {"a": 0}, 10) == 0.0  # nothing relevant: 0, not a division by zero
        assert fn({}, QRELS_Q, 10) == 0.0


def test_k_must_be_positive() -> None:
    with pytest.raises(ValueError, match="k must be"):
        ndcg_at_k(RUN_Q, QRELS_Q, 0)
    with pytest.raises(ValueError, match="k must be"):
        evaluate({"q": RUN_Q}, {"q": QRELS_Q}, ks=(0,))


def test_evaluate_counts_missing_queries_as_zero() -> None:
    qrels: Qrels = {"q1": {"d1": 1}, "q2": {"d2": 1}}
    run: Run = {"q1": {"d1": 1.0}, "other": {"d2": 1.0}}  # q2 missing; "other" is not judged
    scores = evaluate(run, qrels, ks=(10,))
    assert list(scores) == ["ndcg@10", "recall@10", "precision@10", "mrr@10", "map@10"]
    assert scores["ndcg@10"] == 0.5  # (1 + 0) / 2
    assert scores["recall@10"] == 0.5
    assert scores["precision@10"] == pytest.approx(0.05)  # (1/10 + 0) / 2
    assert per_query(run, qrels, "mrr", 10) == {"q1": 1.0, "q2": 0.0}
    with pytest.raises(ValueError, match="unknown metric"):
        per_query(run, qrels, "bpref", 10)
    with pytest.raises(ValueError, match="no queries"):
        evaluate(run, {})


def test_evaluate_is_mean_of_per_query() -> None:
    qrels: Qrels = {"q": QRELS_Q, "r": {"b": 3, "c": 1}}
    run: Run = {"q": RUN_Q, "r": {"c": 5.0, "b": 4.0, "a": 4.0}}
    scores = evaluate(run, qrels, ks=(1, 3))
    for name in metrics.METRICS:
        for k in (1, 3):
            values = per_query(run, qrels, name, k)
            assert scores[f"{name}@{k}"] == pytest.approx(sum(values.values()) / 2, abs=1e-15)


# --- agreement with trec_eval ---------------------------------------------------------------


@pytest.fixture(scope="module")
def scifact_qrels(shared_data: Path) -> Qrels:
    return read_qrels_tsv(shared_data / "eval" / "scifact" / "qrels" / "test.tsv")


@pytest.fixture(scope="module")
def scifact_doc_ids(shared_data: Path) -> list[str]:
    with (shared_data / "eval" / "scifact" / "corpus.jsonl").open() as fh:
        return [str(json.loads(line)["_id"]) for line in fh]


def test_matches_pytrec_eval_on_scifact(scifact_qrels: Qrels, scifact_doc_ids: list[str]) -> None:
    pytrec_eval = pytest.importorskip("pytrec_eval", reason="pytrec-eval-terrier (dev extra)")
    rng = random.Random(0)
    run: Run = {}
    for i, (qid, qrels_q) in enumerate(sorted(scifact_qrels.items())):
        docs = rng.sample(scifact_doc_ids, 100)
        if i % 2 == 0:  # half the queries retrieve their relevant documents somewhere
            docs = [d for d in docs if d not in qrels_q][: 100 - len(qrels_q)] + list(qrels_q)
        run[qid] = {d: rng.random() for d in docs}
        # Distinct scores: trec_eval breaks ties by docid descending, we by docid ascending.
        assert len(set(run[qid].values())) == len(run[qid])
    ks = (1, 10, 100)
    measures = {f"{m}.{','.join(map(str, ks))}" for m in ("ndcg_cut", "recall", "P", "map_cut")}
    theirs = pytrec_eval.RelevanceEvaluator(scifact_qrels, measures | {"map"}).evaluate(run)
    names = {"ndcg": "ndcg_cut", "recall": "recall", "precision": "P", "map": "map_cut"}
    for name, trec_name in names.items():
        for k in ks:
            ours = per_query(run, scifact_qrels, name, k)
            for qid in scifact_qrels:
                assert ours[qid] == pytest.approx(theirs[qid][f"{trec_name}_{k}"], abs=1e-9)
    for qid, qrels_q in scifact_qrels.items():
        assert average_precision(run[qid], qrels_q) == pytest.approx(theirs[qid]["map"], abs=1e-9)
    # trec_eval has no cut-off MRR: recip_rank of the run truncated to its top k is MRR@k.
    for k in ks:
        top_k = {qid: {d: run_q[d] for d in ranked(run_q)[:k]} for qid, run_q in run.items()}
        rr = pytrec_eval.RelevanceEvaluator(scifact_qrels, {"recip_rank"}).evaluate(top_k)
        ours = per_query(run, scifact_qrels, "mrr", k)
        for qid in scifact_qrels:
            assert ours[qid] == pytest.approx(rr[qid]["recip_rank"], abs=1e-9)
    # Every query is in the run, so the means agree too.
    mean = evaluate(run, scifact_qrels, ks=(10,))
    expected = sum(theirs[q]["ndcg_cut_10"] for q in scifact_qrels) / len(scifact_qrels)
    assert mean["ndcg@10"] == pytest.approx(expected, abs=1e-9)
    assert 0.0 < mean["ndcg@10"] < 1.0


# --- paired test ----------------------------------------------------------------------------


def test_paired_test_identical_and_mismatched() -> None:
    a = {"q1": 0.5, "q2": 0.2}
    assert paired_test(a, dict(a)) == (0.0, 1.0)
    assert permutation_test(a, dict(a)) == (0.0, 1.0)
    with pytest.raises(ValueError, match="same queries"):
        paired_test(a, {"q1": 0.5})
    with pytest.raises(ValueError, match="at least one"):
        paired_test({}, {})


def test_permutation_test_close_to_exact_enumeration() -> None:
    deltas = [0.3, 0.1, -0.05, 0.2, 0.15, -0.1, 0.25, 0.05, 0.12, -0.02]
    a = {f"q{i}": 0.5 + d for i, d in enumerate(deltas)}
    b = {f"q{i}": 0.5 for i in range(len(deltas))}
    mean_delta, p = permutation_test(a, b)
    assert mean_delta == pytest.approx(sum(deltas) / len(deltas))
    # Exact two-sided p over all 2**10 sign patterns (deltas recomputed as a - b, as the test does).
    exact_deltas = [a[q] - b[q] for q in sorted(a)]
    observed = abs(sum(exact_deltas))
    flips = list(itertools.product((1, -1), repeat=len(deltas)))
    exact = sum(
        abs(sum(s * d for s, d in zip(signs, exact_deltas, strict=True))) >= observed - 1e-12
        for signs in flips
    ) / len(flips)
    assert p == pytest.approx(exact, abs=0.01)  # 10,000 draws: standard error < 0.005
    assert permutation_test(a, b) == (mean_delta, p)  # seed 0: reproducible
    assert permutation_test(b, a) == pytest.approx((-mean_delta, p))


def test_paired_test_uses_wilcoxon_when_scipy_is_there() -> None:
    stats = pytest.importorskip("scipy.stats")
    a = {f"q{i}": 0.1 * i for i in range(12)}
    b = {f"q{i}": 0.1 * i - (0.05 if i % 3 else -0.01) for i in range(12)}
    mean_delta, p = paired_test(a, b)
    deltas = [a[q] - b[q] for q in sorted(a)]
    assert mean_delta == pytest.approx(sum(deltas) / 12)
    assert p == pytest.approx(float(stats.wilcoxon(deltas).pvalue))
    assert paired_test(a, b, method="wilcoxon") == (mean_delta, p)


def test_paired_test_falls_back_to_permutation(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(metrics, "_wilcoxon_p", lambda deltas: None)  # as if scipy were absent
    a = {"q1": 0.9, "q2": 0.8, "q3": 0.7, "q4": 0.95}
    b = {"q1": 0.5, "q2": 0.6, "q3": 0.4, "q4": 0.5}
    assert paired_test(a, b) == permutation_test(a, b)
    assert paired_test(a, b, method="permutation") == permutation_test(a, b)
    with pytest.raises(ImportError, match="scipy"):
        paired_test(a, b, method="wilcoxon")
