"""Choosing the verifier's operating point on the dev splits (never on a test split).

An operating point is a threshold on P(support), whether support must also outweigh contradiction
(``margin``) and whether the key-term check is on (numbers and codes of a supported sentence must
occur in the passage). The rule: the best mean balanced
accuracy over the dev sets among the points that pass a smaller share of contradicted pairs than
v1 (``minilm-cosine+lexical+key-terms/v1``) on *every* dev set, so the new verifier is never
laxer than the old one on the failure that matters most; if no point qualifies, the best mean
balanced accuracy. Ties within 0.005 go to the point passing fewer contradicted pairs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from core.config import EmbeddingSettings
from core.embedding import load_embedder
from core.verify.lexical import LexicalVerifier
from core.verify.nli import PairScorer, decide
from core.verify.terms import missing_terms
from eval.verify_data import Pair
from eval.verify_metrics import summarize

__all__ = ["RULE", "choose_on_dev", "choose_point", "v1_contradicted_passed"]

RULE = (
    "best mean dev balanced accuracy among (threshold, margin, key_terms) points passing fewer "
    "contradicted pairs than v1 on every dev set; ties within 0.005: fewer contradicted passed"
)


def _verdicts(
    probs: np.ndarray, missing: list[bool], t: float, key_terms: bool, margin: bool
) -> list[str]:
    out = []
    for p, m in zip(probs, missing, strict=True):
        v = decide(p, t, margin).value
        out.append("not_supported" if key_terms and m and v == "supported" else v)
    return out


def choose_point(
    probs: dict[str, np.ndarray],
    dev: dict[str, list[Pair]],
    baseline: dict[str, float | None],
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The chosen point and the whole table (every threshold, with and without key terms)."""
    missing = {
        n: [bool(missing_terms(p.claim, p.evidence)) for p in items] for n, items in dev.items()
    }
    table: list[dict[str, Any]] = []
    points = [
        (round(float(t), 2), key_terms, margin)
        for margin in (False, True)
        for key_terms in (False, True)
        for t in np.arange(0.05, 0.951, 0.05)
    ]
    for t, key_terms, margin in points:
        per = {
            n: summarize(
                [p.label for p in dev[n]],
                _verdicts(probs[n], missing[n], t, key_terms, margin),
                [],
            )
            for n in dev
        }
        contra = {n: s["contradicted_passed"] for n, s in per.items()}
        table.append(
            {
                "threshold": t,
                "key_terms": key_terms,
                "margin": margin,
                "mean_balanced_accuracy": round(
                    float(np.mean([s["balanced_accuracy"] for s in per.values()])), 4
                ),
                "balanced_accuracy": {n: round(s["balanced_accuracy"], 4) for n, s in per.items()},
                "contradicted_passed": {
                    n: None if c is None else round(c, 4) for n, c in contra.items()
                },
                "below_v1": all(
                    c is None or baseline.get(n) is None or c < (baseline[n] or 0.0)
                    for n, c in contra.items()
                ),
            }
        )
    pool = [r for r in table if r["below_v1"]] or table
    top = max(r["mean_balanced_accuracy"] for r in pool)
    near = [r for r in pool if r["mean_balanced_accuracy"] >= top - 0.005]

    def worst(r: dict[str, Any]) -> float:
        return float(np.mean([c or 0.0 for c in r["contradicted_passed"].values()]))

    return min(near, key=worst), table


def v1_contradicted_passed(dev: dict[str, list[Pair]]) -> dict[str, float | None]:
    """Share of contradicted dev pairs v1 passes as supported (its default threshold)."""
    from eval.verify_eval import evidence_chunk

    verifier = LexicalVerifier(load_embedder(EmbeddingSettings()), 0.55)
    out: dict[str, float | None] = {}
    for name, items in dev.items():
        contra = [p for p in items if p.label == "contradict"]
        passed = sum(verifier.check(p.claim, [evidence_chunk(p)]).supported for p in contra)
        out[name] = passed / len(contra) if contra else None
    return out


def choose_on_dev(
    model_dir: Path, dev: dict[str, list[Pair]], baseline: dict[str, float | None] | None = None
) -> dict[str, Any]:
    """Manifest fields: the operating point chosen with the exported int8 model (what the service
    runs), the rule, v1's rates and the table behind the choice."""
    scorer = PairScorer(model_dir)
    probs = {n: scorer.score([(p.claim, p.evidence) for p in items]) for n, items in dev.items()}
    base = baseline if baseline is not None else v1_contradicted_passed(dev)
    best, table = choose_point(probs, dev, base)
    return {
        "support_threshold": best["threshold"],
        "key_terms": best["key_terms"],
        "margin": best["margin"],
        "choice_rule": RULE,
        "v1_contradicted_passed": base,
        "chosen": best,
        "operating_points": table,
    }
