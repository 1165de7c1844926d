"""Quality per unit of speed: SciFact test nDCG@10 (dense) and chunks/s of several embedding models.

    .venv/bin/python benchmarks/model_quality.py [--distractors 700] [--seed 13]
        [--model NAME=SPEC ...] [--out FILE.json]

SPEC is ``minilm:torch``, ``minilm:onnx`` (int8) or ``FOLDER[:torch]`` (a sentence-transformers
folder, e.g. a fine-tuned MiniLM or EmbeddingGemma-300M). The corpus is every SciFact document
judged for the test queries plus ``--distractors`` others drawn with ``--seed`` — one subset for all
models, because a 300M-parameter model cannot embed the 5,183 abstracts on a 2-core CPU in a
session; the full-corpus numbers of the MiniLM variants come from ``litrag eval retrieval``.
Documents are chunked exactly as ``litrag eval`` chunks them (MiniLM token budget, so every model
reads the same passages), a document scores its best chunk, search is exact (no HNSW), and a model
whose sentence-transformers config defines ``query`` / ``document`` prompts gets them. chunks/s is
timed on the subset's chunks, so it is comparable between the rows of one run.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import time
from pathlib import Path
from typing import Any

import numpy as np

from core.chunking import chunk_document
from core.config import EmbeddingSettings, Settings
from core.embedding import SentenceTransformerEmbedder
from core.onnx_embedding import OnnxEmbedder
from eval.datasets import EvalSet, load_beir
from eval.index import to_document
from eval.metrics import evaluate

SCIFACT = Path(__file__).resolve().parents[2] / "shared" / "data" / "eval" / "scifact"


class _Model:
    """One row of the table: embeds documents and queries (with the model's prompts if any)."""

    def __init__(self, spec: str) -> None:
        folder, _, backend = spec.partition(":")
        if folder == "minilm":
            folder, backend = "all-MiniLM-L6-v2", backend or "torch"
        settings = EmbeddingSettings(model=folder, backend=backend or "torch", device="cpu")
        self.inner: OnnxEmbedder | SentenceTransformerEmbedder
        self.prompts: dict[str, str] = {}
        if settings.backend == "onnx":
            self.inner = OnnxEmbedder(settings)
        else:
            self.inner = SentenceTransformerEmbedder(settings)
            prompts = getattr(self.inner._model, "prompts", None) or {}
            self.prompts = {k: prompts[k] for k in ("query", "document") if k in prompts}

    def docs(self, texts: list[str]) -> np.ndarray:
        return self.inner.embed([self.prompts.get("document", "") + t for t in texts])

    def queries(self, texts: list[str]) -> np.ndarray:
        return self.inner.embed([self.prompts.get("query", "") + t for t in texts])


def subset(test: EvalSet, distractors: int, seed: int) -> list[Any]:
    """Judged documents plus ``distractors`` others, in corpus order."""
    judged = {d for q in test.qrels.values() for d in q}
    others = [d.doc_id for d in test.docs if d.doc_id not in judged]
    keep = judged | set(random.Random(seed).sample(others, min(distractors, len(others))))
    return [d for d in test.docs if d.doc_id in keep]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--distractors", type=int, default=700)
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--model", action="append", default=[], metavar="NAME=SPEC")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    specs = [m.partition("=")[::2] for m in args.model] or [
        ("MiniLM torch", "minilm:torch"),
        ("MiniLM ONNX int8", "minilm:onnx"),
    ]
    test = load_beir(SCIFACT, "test")
    docs = subset(test, args.distractors, args.seed)
    counter = OnnxEmbedder(EmbeddingSettings(backend="onnx"))  # MiniLM's tokenizer sets chunks
    chunks = [
        (d.doc_id, c.embed_text)
        for d in docs
        for c in chunk_document(to_document(d), Settings().chunking, counter.count_tokens)
    ]
    owners = np.array([o for o, _ in chunks])
    texts = [t for _, t in chunks]
    print(
        f"SciFact test: {len(test.queries)} queries, {len(docs)} documents "
        f"({len(docs) - args.distractors} judged + {args.distractors} drawn, seed {args.seed}), "
        f"{len(texts)} chunks; load {os.getloadavg()[0]:.1f}",
        flush=True,
    )
    rows = []
    for name, spec in specs:
        model = _Model(spec)
        model.docs(texts[:16])  # warm-up
        t0 = time.perf_counter()
        dvec = model.docs(texts)
        rate = len(texts) / (time.perf_counter() - t0)
        qvec = model.queries([q.text for q in test.queries])
        sims = qvec @ dvec.T
        run: dict[str, dict[str, float]] = {}
        for q, row in zip(test.queries, sims, strict=True):
            best: dict[str, float] = {}
            for owner, s in zip(owners, row, strict=True):
                if s > best.get(owner, -2.0):
                    best[str(owner)] = float(s)
            run[q.qid] = best
        metrics = evaluate(run, test.qrels, ks=(10, 100))
        rows.append({"model": name, "spec": spec, "chunks_per_s": rate, **metrics})
        print(
            f"| {name} | {metrics['ndcg@10']:.4f} | {metrics['recall@100']:.4f} | {rate:.1f} | "
            f"load {os.getloadavg()[0]:.1f}",
            flush=True,
        )
    if args.out:
        args.out.write_text(json.dumps({"docs": len(docs), "chunks": len(texts), "rows": rows}))


if __name__ == "__main__":
    main()
