"""Ingest throughput vs raw embedding throughput, measured side by side on the same chunks.

    .venv/bin/python benchmarks/ingest_throughput.py [PATH ...]   (default: samples/)

1. parse + chunk PATH once (not timed) to get the exact chunk texts the pipeline embeds;
2. raw: ``model.encode`` over those texts, same batch size, timed;
3. end to end: ``Pipeline.run`` (discover, parse, chunk, embed, BM25, upsert into a fresh Qdrant
   Edge store), timed; the HNSW build (``optimize``) is timed separately.
Prints chunks/s for both and their ratio (goal >= 0.85).
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from core.chunking import chunk_document
from core.config import Settings, StoreSettings
from core.embedding import load_embedder
from core.schemas import Document
from core.sparse import SparseEncoder
from core.store import meta_for, open_store
from ingest.discover import discover
from ingest.formats import parse_source
from ingest.parsers.base import Source
from ingest.pipeline import Pipeline


def main() -> None:
    paths = [Path(p) for p in sys.argv[1:]] or [Path("samples")]
    settings = Settings()
    embedder = load_embedder(settings.embedding)
    texts: list[str] = []
    for item in discover(paths, settings.ingest):
        if isinstance(item, Source):
            for doc in parse_source(item, settings.ingest):
                if isinstance(doc, Document):
                    chunks = chunk_document(doc, settings.chunking, embedder.count_tokens)
                    texts += [c.embed_text for c in chunks]
    embedder.embed(texts[:64])  # warm-up
    t0 = time.perf_counter()
    embedder.embed(texts)
    raw_s = time.perf_counter() - t0
    raw = len(texts) / raw_s

    with tempfile.TemporaryDirectory() as tmp:
        s = settings.model_copy(update={"store": StoreSettings(backend="edge", path=Path(tmp))})
        sparse = SparseEncoder(s.sparse)
        store = open_store(s.store, meta_for(s, embedder.name, embedder.dim, sparse.name))
        t0 = time.perf_counter()
        stats = Pipeline(s, store, embedder, sparse).run(paths)
        e2e_s = time.perf_counter() - t0
        t1 = time.perf_counter()
        store.optimize()
        opt_s = time.perf_counter() - t1
        store.close()
    e2e = stats.chunks / e2e_s
    print(f"inputs: {', '.join(map(str, paths))}")
    batch = settings.embedding.batch_size
    print(f"chunks: {len(texts)} (stored end to end: {stats.chunks}), batch {batch}")
    print(f"raw model.encode      : {raw:8.1f} chunks/s  ({raw_s:.1f} s)")
    print(f"end-to-end ingest     : {e2e:8.1f} chunks/s  ({e2e_s:.1f} s)")
    print(f"HNSW build (optimize) : {opt_s:.1f} s, not included above")
    print(f"ratio end-to-end / raw: {e2e / raw:8.2f}   (goal >= 0.85)")


if __name__ == "__main__":
    main()
