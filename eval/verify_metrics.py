"""Scores of a verifier on labelled pairs: "supported" against the gold label.

Binary view (what a reader relies on): positive = gold ``support``, predicted positive = verdict
``supported``. ``balanced_accuracy`` = mean of recall on support pairs and of the rejection rate on
the others; ``contradicted_passed`` = share of gold ``contradict`` pairs given ``supported`` (None
when the set has none). The 3x3 confusion matrix is gold label by verdict.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from core.verify.base import Verdict

__all__ = ["VERDICTS", "summarize"]

VERDICTS: tuple[str, ...] = (
    Verdict.SUPPORTED.value,
    Verdict.CONTRADICTED.value,
    Verdict.NOT_SUPPORTED.value,
)
_GOLD = ("support", "contradict", "nei")


def _ratio(a: int, b: int) -> float | None:
    return a / b if b else None


def summarize(gold: Sequence[str], predicted: Sequence[str], ms: Sequence[float]) -> dict[str, Any]:
    """Precision, recall, F1 of supported; balanced accuracy; contradicted passed; confusion."""
    if len(gold) != len(predicted):
        raise ValueError(f"{len(gold)} labels but {len(predicted)} verdicts")
    confusion = {g: {v: 0 for v in VERDICTS} for g in _GOLD}
    for g, v in zip(gold, predicted, strict=True):
        confusion[g][str(v)] += 1
    tp = confusion["support"][Verdict.SUPPORTED]
    pos = sum(confusion["support"].values())
    pred_pos = sum(confusion[g][Verdict.SUPPORTED] for g in _GOLD)
    neg = len(gold) - pos
    tn = neg - (pred_pos - tp)
    precision, recall = _ratio(tp, pred_pos), _ratio(tp, pos)
    f1 = (
        2 * precision * recall / (precision + recall)
        if precision is not None and recall is not None and precision + recall > 0
        else 0.0
    )
    specificity = _ratio(tn, neg)
    parts = [x for x in (recall, specificity) if x is not None]
    n_con = sum(confusion["contradict"].values())
    return {
        "n": len(gold),
        "labels": {g: sum(confusion[g].values()) for g in _GOLD},
        "precision": precision if precision is not None else 0.0,
        "recall": recall if recall is not None else 0.0,
        "f1": f1,
        "balanced_accuracy": sum(parts) / len(parts) if parts else 0.0,
        "contradicted_passed": _ratio(confusion["contradict"][Verdict.SUPPORTED], n_con),
        "contradict_recall": _ratio(confusion["contradict"][Verdict.CONTRADICTED], n_con),
        "confusion": confusion,
        "ms_per_pair": sum(ms) / len(ms) if ms else None,
    }
