"""Tune fusion on a TRAIN split only (never on test): weighted min-max fusion alpha, and RRF k.

    .venv/bin/python scripts/train_fusion.py --dataset scifact --split train
    LITRAG_SPARSE__K1=0.9 LITRAG_SPARSE__B=0.4 .venv/bin/python scripts/train_fusion.py ...

It opens (or builds) the set's evaluation index exactly like ``litrag eval retrieval``, retrieves
the train queries once in dense and in sparse mode (top 100 documents each), then scores on the
train qrels: sparse, dense, min-max fusion for every alpha, document-level RRF for every k, and
the store's own hybrid (chunk-level RRF) for each ``--store-rrf-ks``. The best setting is printed;
apply it on test with ``litrag eval retrieval --mode fusion --alpha A`` (or ``--rrf-k K``).
Results go to ``artifacts/eval/train/<set>-<split>-<sparse settings>.json``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from core.config import Settings
from core.embedding import load_embedder
from core.retrieval import Retriever
from core.sparse import SparseEncoder
from core.store.base import Fusion
from eval.datasets import load
from eval.index import open_index
from eval.runner import fuse_minmax, fuse_rrf, retrieve, score, warm_query_cache


def _floats(text: str) -> list[float]:
    return [float(x) for x in text.split(",") if x]


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--dataset", default="scifact")
    ap.add_argument("--split", default="train")
    ap.add_argument("--alphas", type=_floats, default=[i / 20 for i in range(21)])
    ap.add_argument("--rrf-ks", type=_ints, default=[1, 5, 10, 20, 40, 60, 100])
    ap.add_argument("--store-rrf-ks", type=_ints, default=[], help="store hybrid RRF k to try")
    ap.add_argument("--top-k", type=int, default=100)
    ap.add_argument("--out", type=Path, default=Path("artifacts/eval/train"))
    args = ap.parse_args()
    if args.split == "test":
        raise SystemExit("tune on a train split, never on test")

    settings = Settings()
    eval_set = load(args.dataset, args.split)
    embedder = load_embedder(settings.embedding)
    sparse_enc = SparseEncoder(settings.sparse)
    t0 = time.perf_counter()
    index = open_index(eval_set, settings, embedder, sparse_enc)
    print(f"index {index.collection}: reused={index.reused} ({time.perf_counter() - t0:.0f} s)")
    results: dict[str, dict[str, float]] = {}
    try:
        retriever = Retriever(index.store, warm_query_cache(embedder, eval_set.queries), sparse_enc)
        t1 = time.perf_counter()
        dense, _ = retrieve(retriever, eval_set.queries, "dense", args.top_k)
        sparse, _ = retrieve(retriever, eval_set.queries, "sparse", args.top_k)
        print(f"{len(eval_set.queries)} queries x 2 modes in {time.perf_counter() - t1:.0f} s")
        for k in args.store_rrf_ks:
            retriever.fusion = Fusion("rrf", k)
            hybrid, _ = retrieve(retriever, eval_set.queries, "hybrid", args.top_k)
            results[f"hybrid (store RRF k={k})"] = score(hybrid, eval_set.qrels)[0]
    finally:
        index.close()

    results["dense"] = score(dense, eval_set.qrels)[0]
    results["sparse"] = score(sparse, eval_set.qrels)[0]
    for alpha in args.alphas:
        fused = fuse_minmax(dense, sparse, alpha, args.top_k)
        results[f"fusion alpha={alpha:g}"] = score(fused, eval_set.qrels)[0]
    for k in args.rrf_ks:
        fused = fuse_rrf([dense, sparse], k, args.top_k)
        results[f"doc RRF k={k}"] = score(fused, eval_set.qrels)[0]

    keys = list(next(iter(results.values())))
    print(f"\n{eval_set.name} {eval_set.split}, sparse: {sparse_enc.name}")
    print(f"{'setting':32s}" + "".join(f"{k:>11s}" for k in keys))
    for name, metrics in results.items():
        print(f"{name:32s}" + "".join(f"{metrics[k]:11.4f}" for k in keys))
    best = max(results, key=lambda n: results[n]["ndcg@10"])
    print(f"\nbest on {eval_set.split} by ndcg@10: {best} ({results[best]['ndcg@10']:.4f})")

    args.out.mkdir(parents=True, exist_ok=True)
    s = settings.sparse
    path = args.out / f"{eval_set.name}-{eval_set.split}-k{s.k1:g}-b{s.b:g}-avg{s.avg_len:g}.json"
    report: dict[str, Any] = {
        "dataset": eval_set.name,
        "split": eval_set.split,
        "collection": index.collection,
        "sparse": sparse_enc.name,
        "model": embedder.name,
        "n_queries": len(eval_set.queries),
        "results": results,
        "best": best,
    }
    path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"written: {path}")


if __name__ == "__main__":
    main()
