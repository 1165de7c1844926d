"""TREC run files and BEIR qrels files: the hand-off format between retrieval and evaluation.

A run line is ``qid Q0 docid rank score tag``. Queries are written in sorted qid order and each
query's documents by (-score, docid), the same order :func:`eval.metrics.ranked` gives, so a run
read back ranks identically. Scores are written with ``repr`` (shortest exact round trip): a
rounded score could turn two distinct scores into a tie and reorder them on reading.
"""

from __future__ import annotations

from pathlib import Path

from core.errors import ParseError
from eval.metrics import Qrels, Run, ranked

__all__ = ["read_qrels_tsv", "read_run", "write_run"]


def _check_token(value: str, what: str) -> None:
    if not value or value != value.strip() or any(c.isspace() for c in value):
        raise ValueError(f"{what} must be non-empty without whitespace, got {value!r}")


def write_run(path: Path | str, run: Run, tag: str, depth: int = 1000) -> None:
    """Write the top ``depth`` documents of every query as ``qid Q0 docid rank score tag``."""
    if depth < 1:
        raise ValueError(f"depth must be >= 1, got {depth}")
    _check_token(tag, "tag")
    lines: list[str] = []
    for qid in sorted(run):
        _check_token(qid, "qid")
        run_q = run[qid]
        for rank, docid in enumerate(ranked(run_q)[:depth], start=1):
            _check_token(docid, "docid")
            lines.append(f"{qid} Q0 {docid} {rank} {float(run_q[docid])!r} {tag}\n")
    Path(path).write_text("".join(lines), encoding="utf-8")


def read_run(path: Path | str) -> Run:
    """Read a TREC run file. Ranks are ignored, as trec_eval does: the scores define the order."""
    run: Run = {}
    with Path(path).open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            fields = line.split()
            if not fields:
                continue
            if len(fields) != 6:
                raise ParseError(
                    str(path), f"expected 6 fields, got {len(fields)}", f"line {lineno}"
                )
            qid, _q0, docid, _rank, score, _tag = fields
            try:
                value = float(score)
            except ValueError:
                raise ParseError(str(path), f"bad score {score!r}", f"line {lineno}") from None
            run_q = run.setdefault(qid, {})
            if docid in run_q:
                raise ParseError(str(path), f"docid {docid} repeated for {qid}", f"line {lineno}")
            run_q[docid] = value
    return run


def read_qrels_tsv(path: Path | str) -> Qrels:
    """Read BEIR qrels: a tab-separated ``query-id corpus-id score`` header, then one row each."""
    qrels: Qrels = {}
    with Path(path).open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            fields = line.rstrip("\r\n").split("\t")
            if lineno == 1 and fields[0] == "query-id":
                continue
            if len(fields) != 3:
                raise ParseError(
                    str(path), f"expected 3 fields, got {len(fields)}", f"line {lineno}"
                )
            qid, docid, score = fields
            try:
                rel = int(score)
            except ValueError:
                raise ParseError(str(path), f"bad relevance {score!r}", f"line {lineno}") from None
            qrels.setdefault(qid, {})[docid] = rel
    return qrels
