"""Time to verify one answer: 6 sentences citing 8 retrieved passages, v1 vs the NLI verifier.

    .venv/bin/python benchmarks/verify_latency.py [ROUNDS]

The passages are real chunks (litrag's chunker, MiniLM token budget) of SciFact abstracts; the
sentences are SciFact dev claims about them. Four sentences cite one passage and two cite two
(8 sentence-passage pairs). Each round builds a fresh verifier, as each request does (the model
itself is loaded once per process), and verifies the whole answer with ``compose``'s own
``check_all``.
Both methods run in the same process, alternating, so the ratio is fair on a noisy machine.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from collections.abc import Callable, Sequence

from core.chunking import chunk_document
from core.config import AnswerSettings, ChunkingSettings, EmbeddingSettings
from core.embedding import CachedEmbedder, load_embedder
from core.schemas import DocumentMeta, ScoredChunk
from core.verify import Verifier, make_verifier
from eval.datasets import load_beir, shared_data_dir
from eval.index import to_document
from service.answer.compose import check_all

Answer = list[tuple[str, list[ScoredChunk]]]


def build_answer() -> Answer:
    """6 claims with the chunks of the abstracts they are about (8 cited chunks)."""
    data = shared_data_dir()
    beir = load_beir(data / "eval" / "scifact", "test")
    claims = [
        json.loads(line)
        for line in (data / "eval" / "verify" / "scifact_abstract.dev.jsonl").open()
    ]
    embedder = load_embedder(EmbeddingSettings())
    docs = {d.doc_id: d for d in beir.docs}
    answer: Answer = []
    for row in claims:
        doc_key = row["id"].split("-")[3]
        if doc_key not in docs:
            continue
        doc = to_document(docs[doc_key])
        chunks = chunk_document(doc, ChunkingSettings(), embedder.count_tokens)
        meta = DocumentMeta.of(doc, len(chunks))
        scored = [ScoredChunk(chunk=c, doc=meta, score=1.0) for c in chunks]
        want = 2 if len(answer) >= 4 else 1
        if len(scored) >= want:
            answer.append((row["claim"], scored[:want]))
        if len(answer) == 6:
            return answer
    raise SystemExit("not enough SciFact dev claims with chunked abstracts")


def main(rounds: int) -> None:
    answer = build_answer()
    pairs = sum(len(c) for _, c in answer)
    tokens = [c.chunk.n_tokens for _, cited in answer for c in cited]
    print(f"{len(answer)} sentences, {pairs} cited passages, {statistics.mean(tokens):.0f} tokens")
    embedder = load_embedder(EmbeddingSettings())
    makers: dict[str, Callable[[], Verifier]] = {
        "v1": lambda: make_verifier(AnswerSettings(verifier="v1"), CachedEmbedder(embedder)),
        "nli": lambda: make_verifier(AnswerSettings(), CachedEmbedder(embedder)),
    }
    times: dict[str, list[float]] = {k: [] for k in makers}
    for make in makers.values():  # warm-up: model loads, first-call allocations
        check_all(make(), answer)
    for _ in range(rounds):
        for name, make in makers.items():
            v = make()
            t = time.perf_counter()
            check_all(v, answer)
            times[name].append((time.perf_counter() - t) * 1000)
    print("| method | median ms | p95 ms | ratio to v1 |")
    print("|---|---:|---:|---:|")
    base = statistics.median(times["v1"])
    for name, ms in times.items():
        p95 = sorted(ms)[int(0.95 * (len(ms) - 1))]
        med = statistics.median(ms)
        print(f"| {name} | {med:.1f} | {p95:.1f} | {med / base:.2f} |")


def _rounds(argv: Sequence[str]) -> int:
    return int(argv[1]) if len(argv) > 1 else 30


if __name__ == "__main__":
    main(_rounds(sys.argv))
