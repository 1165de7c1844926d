"""The LlamaIndex side of ``benchmarks/ingest_peer.py``; runs in its own virtual environment.

    artifacts/peer-venv/bin/python benchmarks/ingest_peer_llamaindex.py \\
        --docs DOCS.jsonl --model MODEL_DIR --store DIR [--input text|files]

Never imported by litrag (LlamaIndex is not a litrag dependency): ``ingest_peer.py`` creates the
environment and starts this script as a subprocess. It builds LlamaIndex's defaults:
``IngestionPipeline(transformations=[SentenceSplitter(), HuggingFaceEmbedding(MODEL_DIR)],
vector_store=QdrantVectorStore(client=QdrantClient(path=DIR)))`` and times ``pipeline.run``.

Input (``--input``): ``text`` = one ``Document`` per article holding the same text litrag parsed
(title, blank line, the sections joined by blank lines; read from DOCS.jsonl, so LlamaIndex does not
pay for parsing); ``files`` = its own ``SimpleDirectoryReader`` over the article files (XML read as
plain text, markup included; reading is timed).

Prints one JSON object on stdout: chunks, wall and CPU seconds (all threads) of the pipeline run
(reading included for ``files``), load seconds, and token counts with the model's tokenizer
(counted after the timing): the tokens of the source texts, of the chunk texts as embedded
(LlamaIndex's embed mode: metadata included), and of what the model actually saw (each chunk
truncated to the model's input).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import time
from pathlib import Path
from typing import Any


def _module(name: str) -> Any:
    # imported by name: the main venv's mypy has no LlamaIndex to check these against
    return importlib.import_module(name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--docs", type=Path, required=True, help="JSONL: doc_id, title, text, file")
    parser.add_argument("--model", type=Path, required=True, help="sentence-transformers folder")
    parser.add_argument("--store", type=Path, required=True, help="empty folder for Qdrant")
    parser.add_argument("--input", choices=["text", "files"], default="text")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

    core = _module("llama_index.core")
    ingestion = _module("llama_index.core.ingestion")
    node_parser = _module("llama_index.core.node_parser")
    schema = _module("llama_index.core.schema")
    hf = _module("llama_index.embeddings.huggingface")
    qdrant_vs = _module("llama_index.vector_stores.qdrant")
    qdrant_client = _module("qdrant_client")

    records = [json.loads(line) for line in args.docs.read_text().splitlines() if line.strip()]
    t0 = time.perf_counter()
    embed_model = hf.HuggingFaceEmbedding(model_name=str(args.model), device="cpu")
    load_s = time.perf_counter() - t0
    client = qdrant_client.QdrantClient(path=str(args.store))
    store = qdrant_vs.QdrantVectorStore(client=client, collection_name="peer")
    splitter = node_parser.SentenceSplitter()
    pipeline = ingestion.IngestionPipeline(
        transformations=[splitter, embed_model], vector_store=store
    )

    t0, c0 = time.perf_counter(), time.process_time()
    if args.input == "text":
        docs = [
            schema.Document(text=f"{r['title']}\n\n{r['text']}", id_=r["doc_id"]) for r in records
        ]
    else:
        files = sorted({r["file"] for r in records})
        docs = core.SimpleDirectoryReader(input_files=files).load_data()
    nodes = pipeline.run(documents=docs)
    seconds = time.perf_counter() - t0
    cpu_seconds = time.process_time() - c0
    points = client.count("peer").count
    client.close()

    # Token counts with the model's own tokenizer, after the timing.
    st_model = embed_model._model  # the SentenceTransformer HuggingFaceEmbedding wraps
    tokenizer = st_model.tokenizer
    max_seq = int(st_model.max_seq_length)
    mode = schema.MetadataMode.EMBED

    def n_tokens(texts: list[str]) -> list[int]:
        out: list[int] = []
        for i in range(0, len(texts), 256):
            enc = tokenizer(texts[i : i + 256], add_special_tokens=False, truncation=False)
            out += [len(ids) for ids in enc["input_ids"]]
        return out

    source = sum(n_tokens([d.get_content(metadata_mode=mode) for d in docs]))
    chunk_tokens = n_tokens([n.get_content(metadata_mode=mode) for n in nodes])
    print(
        json.dumps(
            {
                "input": args.input,
                "documents": len(docs),
                "chunks": len(nodes),
                "points": points,
                "seconds": seconds,
                "cpu_seconds": cpu_seconds,
                "load_seconds": load_s,
                "source_tokens": source,
                "chunk_tokens": sum(chunk_tokens) + 2 * len(chunk_tokens),
                "seen_tokens": sum(min(n + 2, max_seq) for n in chunk_tokens),
                "truncated_chunks": sum(n + 2 > max_seq for n in chunk_tokens),
                "max_seq_length": max_seq,
                "embed_batch_size": embed_model.embed_batch_size,
                "chunk_size": splitter.chunk_size,
                "chunk_overlap": splitter.chunk_overlap,
                "versions": {
                    name: _module(name).__version__
                    for name in ("llama_index.core", "sentence_transformers", "torch")
                },
            }
        )
    )
    sys.stdout.flush()


if __name__ == "__main__":
    main()
