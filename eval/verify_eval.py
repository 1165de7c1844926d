"""``litrag eval verifier``: the citation verifier judged on labelled claim-evidence pairs.

The verifier is the one the service builds (``core.verify.make_verifier`` from the answer
settings); each pair is checked as the service checks an answer sentence: ``check(claim, [chunk])``
with the evidence as the one cited chunk. Outputs ``summary.json`` (manifest, metrics, balanced
accuracy by evidence length) and ``pairs.jsonl`` (one verdict per pair) in one folder.
"""

from __future__ import annotations

import json
import platform
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from core.config import Settings
from core.embedding import load_embedder
from core.schemas import Chunk, DocumentMeta, ScoredChunk, SourceType
from core.verify import Verifier, make_verifier
from eval.runner import git_commit
from eval.verify_data import Pair, file_sha256, load_pairs, resolve_dataset
from eval.verify_metrics import summarize

__all__ = [
    "LENGTH_BUCKETS",
    "METHODS",
    "VerifierRunOptions",
    "evidence_chunk",
    "run_verifier_eval",
    "verifier_markdown",
]

Method = Literal["nli", "nli+terms", "nli-terms", "v1"]
#: nli = as shipped (its verifier.json operating point); +terms / -terms force the key-term check
METHODS: tuple[str, ...] = ("nli", "nli+terms", "nli-terms", "v1")
#: Evidence length buckets (words): upper bounds, the last open.
LENGTH_BUCKETS: tuple[tuple[str, int], ...] = (
    ("<40", 40),
    ("40-99", 100),
    ("100-199", 200),
    (">=200", 10**9),
)
ProgressFn = Callable[[int, int], None]


@dataclass(slots=True)
class VerifierRunOptions:
    """What to run: a dataset (name or JSONL path), a method and its overrides."""

    dataset: str
    split: str | None = None
    method: Method = "nli"
    threshold: float | None = None
    model: Path | None = None
    limit: int | None = None


def evidence_chunk(pair: Pair) -> ScoredChunk:
    """The evidence as the one chunk a sentence cites."""
    doc_id = f"eval:{pair.id}"
    chunk = Chunk(
        chunk_id=str(uuid.uuid5(uuid.NAMESPACE_URL, doc_id)),
        doc_id=doc_id,
        ordinal=0,
        text=pair.evidence,
        header="",
        char_start=0,
        char_end=len(pair.evidence),
    )
    meta = DocumentMeta(
        doc_id=doc_id, source_type=SourceType.ABSTRACT, title="", content_hash="", n_chunks=1
    )
    return ScoredChunk(chunk=chunk, doc=meta, score=1.0)


def _verifier(settings: Settings, opts: VerifierRunOptions) -> Verifier:
    answer = settings.answer.model_copy(
        update={
            "verifier": "v1" if opts.method == "v1" else "nli",
            "verifier_key_terms": {"nli+terms": True, "nli-terms": False}.get(opts.method),
            **({"verifier_model": opts.model} if opts.model else {}),
            **(
                {"verifier_threshold": opts.threshold}
                if opts.threshold is not None and opts.method != "v1"
                else {}
            ),
            **(
                {"support_threshold": opts.threshold}
                if opts.threshold is not None and opts.method == "v1"
                else {}
            ),
        }
    )
    # v1 needs the retrieval embedder; nli does not load it
    embedder = load_embedder(settings.embedding) if opts.method == "v1" else None
    return make_verifier(answer, embedder)  # type: ignore[arg-type]


def _bucket(words: int) -> str:
    return next(name for name, upper in LENGTH_BUCKETS if words < upper)


def run_verifier_eval(
    settings: Settings,
    opts: VerifierRunOptions,
    out_dir: Path | None = None,
    progress: ProgressFn | None = None,
) -> tuple[dict[str, Any], Path]:
    """Check every pair; write ``summary.json`` and ``pairs.jsonl``; return the summary."""
    path = resolve_dataset(opts.dataset, opts.split)
    pairs = load_pairs(path)[: opts.limit]
    verifier = _verifier(settings, opts)
    verdicts: list[str] = []
    ms: list[float] = []
    rows: list[dict[str, Any]] = []
    for i, pair in enumerate(pairs, 1):
        chunk = evidence_chunk(pair)
        t = time.perf_counter()
        verifier.prepare([chunk])
        support = verifier.check(pair.claim, [chunk])
        ms.append((time.perf_counter() - t) * 1000)
        verdicts.append(support.verdict.value)
        rows.append(
            {
                "id": pair.id,
                "label": pair.label,
                "verdict": support.verdict.value,
                "score": round(support.score, 4),
                "reason": support.reason,
            }
        )
        if progress is not None:
            progress(i, len(pairs))
    gold = [p.label for p in pairs]
    metrics = summarize(gold, verdicts, ms)
    by_length: dict[str, Any] = {}
    for name, _ in LENGTH_BUCKETS:
        idx = [i for i, p in enumerate(pairs) if _bucket(len(p.evidence.split())) == name]
        if idx:
            s = summarize([gold[i] for i in idx], [verdicts[i] for i in idx], [])
            by_length[name] = {
                "n": s["n"],
                "labels": s["labels"],
                "balanced_accuracy": s["balanced_accuracy"],
                "contradicted_passed": s["contradicted_passed"],
            }
    manifest = {
        "dataset": path.stem,
        "file": str(path),
        "sha256": file_sha256(path),
        "n_pairs": len(pairs),
        "method": verifier.method,
        "method_option": opts.method,
        "threshold": opts.threshold,
        "model": str(opts.model) if opts.model else None,
        "git_commit": git_commit(),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
    }
    summary = {**metrics, "by_evidence_length": by_length, "manifest": manifest}
    out = out_dir or (
        Path("artifacts")
        / "eval"
        / f"verifier-{path.stem}-{opts.method}-{datetime.now(UTC):%Y%m%dT%H%M%SZ}"
    )
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    with (out / "pairs.jsonl").open("w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    return summary, out


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x:.3f}"


def verifier_markdown(summaries: Sequence[dict[str, Any]]) -> str:
    """One table row per run: the metrics docs/eval.md reports."""
    lines = [
        "| set | method | n | precision | recall | F1 | balanced acc. | contradicted passed "
        "| ms/pair |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for s in summaries:
        m = s["manifest"]
        lines.append(
            f"| {m['dataset']} | {m['method']} | {s['n']} | {_pct(s['precision'])} | "
            f"{_pct(s['recall'])} | {_pct(s['f1'])} | {_pct(s['balanced_accuracy'])} | "
            f"{_pct(s['contradicted_passed'])} | {s['ms_per_pair']:.1f} |"
        )
    return "\n".join(lines)
