"""Compare finished runs: a markdown table and a PNG bar chart with published reference points."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.config import SparseSettings

__all__ = [
    "REFERENCES",
    "RunSummary",
    "comparison_table",
    "load_summaries",
    "plot_comparison",
]


@dataclass(frozen=True, slots=True)
class Reference:
    """A published result: nDCG@10 (a range when ``low`` < ``high``)."""

    name: str
    low: float
    high: float


#: Published nDCG@10 on SciFact test (BEIR and model cards), for context in charts.
REFERENCES: dict[str, tuple[Reference, ...]] = {
    "scifact": (
        Reference("BM25 (published)", 0.665, 0.679),
        Reference("SPLADE++", 0.704, 0.704),
        Reference("bge-small-en-v1.5", 0.713, 0.713),
        Reference("bge-base-en-v1.5", 0.741, 0.741),
    ),
}
#: The project's quality goal on SciFact test (nDCG@10).
GOAL = {"scifact": 0.75}


#: BM25 settings a label leaves unsaid: the defaults.
_DEFAULT_BM25 = SparseSettings().model_dump()


@dataclass(frozen=True, slots=True)
class RunSummary:
    """One run's ``summary.json`` and where it was read from."""

    path: Path
    summary: dict[str, Any]

    @property
    def dataset(self) -> str:
        return str(self.summary["manifest"]["dataset"])

    @property
    def split(self) -> str:
        return str(self.summary["manifest"]["split"])

    @property
    def label(self) -> str:
        m = self.summary["manifest"]
        label = str(m["label"])
        sparse = m.get("sparse") or {}
        if m["mode"] != "dense" and any(
            key in sparse and float(sparse[key]) != value for key, value in _DEFAULT_BM25.items()
        ):
            label += f" +BM25 k1 {sparse['k1']:g} b {sparse['b']:g} avg {sparse['avg_len']:g}"
        return f"{label} ({m['model']['name']})" if m["mode"] != "sparse" else label

    def metric(self, key: str) -> float:
        metrics = self.summary["metrics"]
        if key not in metrics:
            raise KeyError(f"{self.path} has no metric {key!r}; it has {sorted(metrics)}")
        return float(metrics[key])


def load_summaries(paths: Sequence[Path]) -> list[RunSummary]:
    """Each path is a ``summary.json`` or a run folder holding one."""
    if not paths:
        raise ValueError("give at least one summary.json or run folder")
    out: list[RunSummary] = []
    for path in paths:
        file = path / "summary.json" if path.is_dir() else path
        if not file.is_file():
            raise ValueError(f"no summary.json at {path}")
        data = json.loads(file.read_text(encoding="utf-8"))
        if not isinstance(data, dict) or "metrics" not in data or "manifest" not in data:
            raise ValueError(f"{file} is not a litrag eval summary")
        out.append(RunSummary(file, data))
    return out


def comparison_table(runs: Sequence[RunSummary]) -> str:
    """Markdown table: one row per run, one column per metric."""
    keys: list[str] = []
    for r in runs:
        keys += [k for k in r.summary["metrics"] if k not in keys]
    lines = [
        "| dataset | split | setting | " + " | ".join(keys) + " |",
        "|---|---|---|" + "---:|" * len(keys),
    ]
    for r in runs:
        cells = [
            f"{r.summary['metrics'][k]:.4f}" if k in r.summary["metrics"] else "n/a" for k in keys
        ]
        lines.append(f"| {r.dataset} | {r.split} | {r.label} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot_comparison(
    runs: Sequence[RunSummary],
    out: Path,
    *,
    metric: str = "ndcg@10",
    references: bool = True,
) -> Path:
    """Horizontal bars of ``metric`` per run; on SciFact test nDCG@10, the published points too."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    datasets = {r.dataset for r in runs}
    one_set = datasets.pop() if len(datasets) == 1 else None
    show_refs = (
        references
        and metric == "ndcg@10"
        and one_set in REFERENCES
        and all(r.split == "test" for r in runs)
    )
    labels: list[str] = []
    lows: list[float] = []
    highs: list[float] = []
    colors: list[str] = []
    for r in runs:
        value = r.metric(metric)
        labels.append(r.label if one_set else f"{r.dataset}/{r.split}: {r.label}")
        lows.append(value)
        highs.append(value)
        colors.append("#1f77b4")
    if show_refs and one_set is not None:
        for ref in REFERENCES[one_set]:
            labels.append(ref.name)
            lows.append(ref.low)
            highs.append(ref.high)
            colors.append("#9a9a9a")

    width = max(8.0, 5.0 + 0.075 * max(len(label) for label in labels))
    fig, ax = plt.subplots(figsize=(width, 0.45 * len(labels) + 1.6))
    ys = list(range(len(labels)))[::-1]
    ax.barh(ys, lows, color=colors, height=0.6)
    for y, lo, hi, c in zip(ys, lows, highs, colors, strict=True):
        if hi > lo:  # a published range: the span drawn lighter on top of the bar
            ax.barh([y], [hi - lo], left=[lo], color=c, alpha=0.45, height=0.6, hatch="//")
        text = f"{lo:.3f}" if hi == lo else f"{lo:.3f}-{hi:.3f}"
        ax.text(hi + 0.005, y, text, va="center", fontsize=9)
    if show_refs and one_set in GOAL:
        goal = GOAL[one_set]
        ax.axvline(goal, color="#d62728", linestyle="--", linewidth=1)
        ax.text(goal, len(labels) - 0.45, f" goal {goal}", color="#d62728", fontsize=8)
    ax.set_yticks(ys)
    ax.set_yticklabels(labels)
    top = max([*highs, GOAL.get(one_set or "", 0.0)])
    # Zoom in when every value is high: differences of 0.01 must stay visible.
    low = min(lows)
    left = 0.0 if low < 0.3 else math.floor((low - 0.08) * 20) / 20
    ax.set_xlim(left, min(1.0, top + 0.06) if top < 0.94 else 1.04)
    ax.set_ylim(-0.6, len(labels) - 0.1)
    split = runs[0].split if len({r.split for r in runs}) == 1 else "mixed splits"
    ax.set_xlabel(metric)
    ax.set_title(f"{one_set or 'several sets'} ({split}): {metric}")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out
