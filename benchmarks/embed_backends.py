"""Embedding backends side by side: chunks/s on litrag's own chunks, one-query latency, agreement.

    .venv/bin/python benchmarks/embed_backends.py [--max-docs 20] [--rounds 3] [--queries 200]
        [--extra NAME=FOLDER ...]

The chunks are the exact texts ``litrag ingest`` embeds for the first ``--max-docs`` JATS articles
of ../shared/data/corpus/jats (header included); the queries are real PubMedQA questions. Backends
run interleaved, round after round, so load on a shared machine hits them alike; each figure is the
median over rounds. Chunks per CPU-second (process time, all threads) is printed too: on a busy
machine it measures the work a backend needs better than wall time does. ``--extra`` adds other
models (torch backend), e.g. a fine-tuned MiniLM or EmbeddingGemma, for the quality-per-speed
table in docs/eval.md (their agreement is not reported: another model's vectors live in another
space).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from core.chunking import chunk_document
from core.config import EmbeddingSettings, Settings
from core.embedding import Embedder, SentenceTransformerEmbedder
from core.onnx_embedding import OnnxEmbedder
from core.schemas import Document
from ingest.discover import discover
from ingest.formats import parse_source
from ingest.parsers.base import Source

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def chunk_texts(max_docs: int, count: Callable[[Sequence[str]], list[int]]) -> list[str]:
    """The embed texts of the first ``max_docs`` JATS articles, as the pipeline chunks them."""
    settings = Settings()
    files = sorted((SHARED / "corpus" / "jats").rglob("*.xml"))[:max_docs]
    texts: list[str] = []
    for item in discover(files, settings.ingest):
        if isinstance(item, Source):
            for doc in parse_source(item, settings.ingest):
                if isinstance(doc, Document):
                    chunks = chunk_document(doc, settings.chunking, count)
                    texts += [c.embed_text for c in chunks]
    return texts


def questions(n: int) -> list[str]:
    """Real PubMedQA questions."""
    root = SHARED / "eval" / "pubmedqa"
    for path in sorted(root.rglob("*.json")):
        data = json.loads(path.read_text())
        if isinstance(data, dict):
            found = [
                v["QUESTION"] for v in data.values() if isinstance(v, dict) and "QUESTION" in v
            ]
            if found:
                return found[:n]
    raise SystemExit(f"no PubMedQA questions under {root}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--max-docs", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--extra", action="append", default=[], metavar="NAME=FOLDER")
    args = ap.parse_args()

    torch_cpu = SentenceTransformerEmbedder(EmbeddingSettings(backend="torch", device="cpu"))
    backends: dict[str, Embedder] = {
        "torch fp32": torch_cpu,
        "onnx fp32": OnnxEmbedder(EmbeddingSettings(backend="onnx", quantize=False)),
        "onnx int8": OnnxEmbedder(EmbeddingSettings(backend="onnx")),
    }
    for spec in args.extra:
        name, _, folder = spec.partition("=")
        backends[f"{name} (torch)"] = SentenceTransformerEmbedder(
            EmbeddingSettings(backend="torch", device="cpu", model=folder)
        )
    texts = chunk_texts(args.max_docs, torch_cpu.count_tokens)
    if not texts:
        raise SystemExit("no chunks: is ../shared/data/corpus/jats there?")
    qs = questions(args.queries)
    tokens = sum(torch_cpu.count_tokens(texts))
    print(
        f"{len(texts)} chunks ({tokens} tokens) from {args.max_docs} JATS articles; "
        f"{len(qs)} questions; load {os.getloadavg()[0]:.1f}; cores {os.cpu_count()}"
    )
    for e in backends.values():
        e.embed(texts[:32])  # warm-up: allocations, lazy kernels
    rates: dict[str, list[float]] = {k: [] for k in backends}
    cpu_rates: dict[str, list[float]] = {k: [] for k in backends}
    query_ms: dict[str, list[float]] = {k: [] for k in backends}
    for r in range(args.rounds):
        for name, e in backends.items():
            t0, c0 = time.perf_counter(), time.process_time()
            e.embed(texts)
            rates[name].append(len(texts) / (time.perf_counter() - t0))
            cpu_rates[name].append(len(texts) / (time.process_time() - c0))
            for q in qs[r :: args.rounds]:
                t1 = time.perf_counter()
                e.embed([q])
                query_ms[name].append((time.perf_counter() - t1) * 1000)
        print(f"round {r + 1}/{args.rounds} done, load {os.getloadavg()[0]:.1f}")
    ref = torch_cpu.embed(texts)
    base = statistics.median(rates["torch fp32"])
    print()
    print(
        "| backend | chunks/s | vs torch | chunks per CPU-s | vs torch | query p50 ms | "
        "query p95 ms | cos vs torch min / mean |"
    )
    print("|---|---|---|---|---|---|---|---|")
    cpu_base = statistics.median(cpu_rates["torch fp32"])
    for name, e in backends.items():
        rate, cpu_rate = statistics.median(rates[name]), statistics.median(cpu_rates[name])
        ms = sorted(query_ms[name])
        p50, p95 = ms[len(ms) // 2], ms[int(len(ms) * 0.95)]
        if name.endswith("(torch)"):
            agree = "-"
        else:
            cos = (e.embed(texts) * ref).sum(axis=1)
            agree = f"{float(np.min(cos)):.4f} / {float(np.mean(cos)):.4f}"
        print(
            f"| {name} | {rate:.1f} | {rate / base:.2f} | {cpu_rate:.1f} | "
            f"{cpu_rate / cpu_base:.2f} | {p50:.1f} | {p95:.1f} | {agree} |"
        )
    print(f"\nload at end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
