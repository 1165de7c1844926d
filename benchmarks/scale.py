"""A million chunks in one embedded Qdrant Edge store: load, optimize, disk, RSS, search latency.

    .venv/bin/python benchmarks/scale.py [--n 1000000] [--out DIR] [--source STORE]
        [--quantization int8|none] [--vectors-on-disk | --no-vectors-on-disk] ...

Builds a store of N chunks through litrag's own store classes (``open_store``, ``upsert_raw``,
``optimize``), so what is measured is what litrag runs. The chunks are the real points of an
ingested store (``--source``; it is read, never written: copy a store that a process holds),
repeated with distinct document ids: copy r of document ``D`` is ``D~r`` with its own chunk ids.
Copy 0 keeps the real dense vectors; every other copy gets the real vector plus Gaussian noise
(``--noise`` per dimension), re-normalised. Sparse BM25 vectors and payloads are copied.

Then a fresh process (the "server") opens the finished store and runs every query of a few
hundred real questions (PubMedQA, LitQA2; embedded once, cached in ``DIR/queries.npz``) through
:class:`core.retrieval.Retriever` as the service does: dense, sparse, hybrid, hybrid filtered by
source type and by year. It reports its RSS after opening and after searching (anonymous and
file-backed), and dense recall@10 against exact top 10 computed in numpy while loading.
Results: printed, and ``DIR/results.json``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.config import Settings, StoreSettings  # noqa: E402 - after the path fix above
from core.ids import chunk_id  # noqa: E402
from core.retrieval import Retriever  # noqa: E402
from core.schemas import SearchFilter, SourceType  # noqa: E402
from core.sparse import SparseEncoder  # noqa: E402
from core.store import RawPoint, StoreMeta, open_store  # noqa: E402
from core.store.edge import EdgeStore  # noqa: E402
from core.store.migrate import read_edge_meta, resolve_edge  # noqa: E402

Matrix = npt.NDArray[np.float32]
DATA = Path(os.environ.get("LITRAG_SHARED_DATA", ROOT.parent / "shared" / "data"))
COLLECTION = "scale"
K = 10


def log(msg: str) -> None:
    """A timestamped progress line (the long runs are read from a log file)."""
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def proc_status() -> dict[str, float]:
    """This process's memory from /proc/self/status, in MiB."""
    out: dict[str, float] = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM", "RssAnon", "RssFile"):
            out[key] = int(rest.split()[0]) / 1024
    return out


def du_mib(path: Path) -> float:
    """Allocated size of a folder tree, in MiB."""
    total = 0
    for dirpath, _, files in os.walk(path):
        for f in files:
            st = os.lstat(os.path.join(dirpath, f))
            total += st.st_blocks * 512
    return total / 2**20


def pct(values: Sequence[float], p: float) -> float:
    """The p-th percentile (nearest rank)."""
    s = sorted(values)
    return s[min(len(s) - 1, max(0, math.ceil(p / 100 * len(s)) - 1))]


def real_questions(n: int) -> list[str]:
    """Distinct real biomedical questions: LitQA2, then PubMedQA, ``n`` at most."""
    qs: list[str] = []
    with (DATA / "eval" / "litqa2" / "litqa-v2-public.jsonl").open() as fh:
        qs += [json.loads(line)["question"] for line in fh]
    pqa = json.loads((DATA / "eval" / "pubmedqa" / "ori_pqal.json").read_text())
    qs += [v["QUESTION"] for v in pqa.values()]
    return list(dict.fromkeys(qs))[:n]


def query_vectors(out: Path, n: int) -> tuple[list[str], Matrix]:
    """The questions and their dense vectors, embedded once by the configured embedder."""
    cache = out / "queries.npz"
    if cache.is_file():
        data = np.load(cache)
        texts = [str(t) for t in data["texts"]]
        if len(texts) == n:
            return texts, data["vectors"].astype(np.float32)
    # In a child process: the model's memory stays out of this process's peak RSS.
    subprocess.run(
        [sys.executable, __file__, "--embed-queries", str(n), "--out", str(out)], check=True
    )
    return query_vectors(out, n)


def embed_queries(out: Path, n: int) -> None:
    from core.embedding import load_embedder

    texts = real_questions(n)
    vectors = load_embedder(Settings().embedding).embed(texts)
    out.mkdir(parents=True, exist_ok=True)
    np.savez(out / "queries.npz", texts=np.array(texts), vectors=vectors)


# -- the source corpus ---------------------------------------------------------------------------
@dataclass(slots=True)
class Source:
    """The real points, with dense vectors as one matrix."""

    meta: StoreMeta
    points: list[RawPoint]
    dense: Matrix


def read_source(path: Path) -> Source:
    root, name = resolve_edge(path, None)
    meta = read_edge_meta(root, name)
    store = EdgeStore(root, name, meta, create=False)
    try:
        points = list(store.iter_points(batch=1000))
    finally:
        store.close()
    dense = np.asarray([p.dense for p in points], dtype=np.float32)
    # The vectors live in the matrix; lists of Python floats would take ~10x the memory.
    points = [RawPoint(p.point_id, p.payload, [], p.sparse) for p in points]
    return Source(meta, points, dense)


def copy_of(point: RawPoint, copy: int, dense: list[float]) -> RawPoint:
    """Copy ``copy`` of a point: document ``D~copy``, its own chunk id, the given vector."""
    if copy == 0:
        return RawPoint(point.point_id, point.payload, dense, point.sparse)
    payload = dict(point.payload)
    doc_id = f"{payload['doc_id']}~{copy}"
    new_id = chunk_id(doc_id, int(payload["ordinal"]))
    payload["doc_id"] = doc_id
    payload["chunk"] = {**payload["chunk"], "doc_id": doc_id, "chunk_id": new_id}
    payload["doc"] = {**payload["doc"], "doc_id": doc_id}
    return RawPoint(new_id, payload, dense, point.sparse)


def noisy(vectors: Matrix, sigma: float, rng: np.random.Generator) -> Matrix:
    """``vectors`` plus N(0, sigma) per dimension, re-normalised to unit length."""
    v = vectors + rng.normal(0.0, sigma, size=vectors.shape).astype(np.float32)
    out: Matrix = (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)
    return out


def batches(
    src: Source, n: int, size: int, sigma: float, seed: int
) -> Iterator[tuple[list[RawPoint], Matrix]]:
    """``n`` points in batches of ``size``: the source repeated with noisy vectors."""
    rng = np.random.default_rng(seed)
    total = len(src.points)
    made = 0
    copy = 0
    while made < n:
        for start in range(0, total, size):
            stop = min(start + size, total, start + n - made)
            vecs = src.dense[start:stop]
            if copy:
                vecs = noisy(vecs, sigma, rng)
            pts = [
                copy_of(p, copy, v)
                for p, v in zip(src.points[start:stop], vecs.tolist(), strict=True)
            ]
            made += len(pts)
            yield pts, vecs
            if made >= n:
                return
        copy += 1


class ExactTopK:
    """Exact cosine top-k of each query over every vector seen (the recall ground truth)."""

    def __init__(self, queries: Matrix, k: int = K) -> None:
        self.q = queries
        self.k = k
        self.scores = np.full((len(queries), 0), -np.inf, dtype=np.float32)
        self.ids = np.empty((len(queries), 0), dtype=object)

    def add(self, ids: Sequence[str], vectors: Matrix) -> None:
        s = np.concatenate([self.scores, self.q @ vectors.T], axis=1)
        i = np.concatenate([self.ids, np.tile(np.array(ids, dtype=object), (len(self.q), 1))], 1)
        keep = np.argsort(-s, axis=1, kind="stable")[:, : self.k]
        self.scores = np.take_along_axis(s, keep, 1)
        self.ids = np.take_along_axis(i, keep, 1)

    def top(self) -> list[list[str]]:
        return [[str(x) for x in row] for row in self.ids]


# -- build ---------------------------------------------------------------------------------------
def store_settings(args: argparse.Namespace) -> StoreSettings:
    return StoreSettings(
        backend="edge",
        path=args.out / "store",
        collection=COLLECTION,
        quantization=args.quantization,
        vectors_on_disk=args.vectors_on_disk,
        sparse_on_disk=args.sparse_on_disk,
        hnsw_m=args.hnsw_m,
        hnsw_ef_construct=args.ef_construct,
        hnsw_ef=args.hnsw_ef,
        quantization_oversampling=args.oversampling,
    )


def build(args: argparse.Namespace) -> dict[str, Any]:
    texts, qvecs = query_vectors(args.out, args.queries)
    log(f"{len(texts)} query vectors")
    t0 = time.perf_counter()
    src = read_source(args.source)
    log(f"source: {len(src.points)} points read in {time.perf_counter() - t0:.1f} s")
    settings = store_settings(args)
    if not args.resume:
        shutil.rmtree(settings.path, ignore_errors=True)
    store = open_store(settings, src.meta, create=not args.resume)
    truth = ExactTopK(qvecs)
    upsert_s = 0.0
    upsert_cpu_s = 0.0
    done = 0
    t_load = time.perf_counter()
    next_report = 0.0
    for pts, vecs in batches(src, args.n, args.batch, args.noise, args.seed):
        truth.add([p.point_id for p in pts], vecs)
        if args.resume:
            continue  # loaded by an earlier run: the same points, the same order
        t, c = time.perf_counter(), time.process_time()
        store.upsert_raw(pts)
        upsert_s += time.perf_counter() - t
        upsert_cpu_s += time.process_time() - c
        done += len(pts)
        if time.perf_counter() - t_load >= next_report or done == args.n:
            rate = done / upsert_s
            log(f"upserted {done:,} ({rate:,.0f} points/s in upsert, {proc_status()})")
            next_report += 30.0
    load_s = time.perf_counter() - t_load
    after_load = proc_status()
    upsert_s = upsert_s or math.nan
    del src
    count = store.count()
    log(f"loaded {count:,} points in {load_s:.1f} s; optimizing")
    t, c = time.perf_counter(), time.process_time()
    store.optimize()
    optimize_s = time.perf_counter() - t
    optimize_cpu_s = time.process_time() - c  # all threads: the engine's too
    log(f"optimize {optimize_s:.1f} s, CPU {optimize_cpu_s:.1f} s ({proc_status()})")
    assert isinstance(store, EdgeStore)
    config = store.shard_config()
    store.close()
    built = proc_status()
    disk = du_mib(settings.path)
    (args.out / "truth.json").write_text(json.dumps(truth.top()))
    return {
        "n": count,
        "settings": settings.model_dump(mode="json", exclude={"api_key"}),
        "shard_config": config,
        "upsert_points_per_s": done / upsert_s,
        "load_points_per_s": done / load_s,
        "load_s": load_s,
        "optimize_s": optimize_s,
        "optimize_cpu_s": optimize_cpu_s,
        "upsert_cpu_s": upsert_cpu_s,
        "disk_mib": disk,
        "build_rss_after_load_mib": after_load["VmRSS"],
        "build_peak_rss_mib": built["VmHWM"],
    }


# -- serve: a fresh process opens the store and searches ---------------------------------------
class _CachedVectors:
    """The Embedder protocol over precomputed query vectors (no model in the server process)."""

    def __init__(self, texts: Sequence[str], vectors: Matrix) -> None:
        self._by_text = dict(zip(texts, vectors, strict=True))
        self.dim = vectors.shape[1]

    def embed(self, texts: Sequence[str]) -> Matrix:
        return np.stack([self._by_text[t] for t in texts])


def serve(args: argparse.Namespace) -> dict[str, Any]:
    texts, qvecs = query_vectors(args.out, args.queries)
    before = proc_status()
    settings = store_settings(args)
    meta = read_edge_meta(settings.path / "edge", COLLECTION)
    t = time.perf_counter()
    store = open_store(settings, meta, create=False)
    open_s = time.perf_counter() - t
    opened = proc_status()
    cfg = Settings()
    retriever = Retriever(store, _CachedVectors(texts, qvecs), SparseEncoder(cfg.sparse))  # type: ignore[arg-type]
    cases: dict[str, tuple[str, SearchFilter | None]] = {
        "dense": ("dense", None),
        "sparse": ("sparse", None),
        "hybrid": ("hybrid", None),
        "hybrid source_type=trial": ("hybrid", SearchFilter(source_types=[SourceType.TRIAL])),
        "hybrid year>=2020": ("hybrid", SearchFilter(year_from=2020)),
    }
    first_pass = []
    for q in texts:  # the first search of each query reads cold pages: timed apart
        t = time.perf_counter()
        retriever.search(q, top_k=K)
        first_pass.append((time.perf_counter() - t) * 1000)
    latency: dict[str, dict[str, float]] = {
        "hybrid (first pass)": {
            "p50_ms": pct(first_pass, 50),
            "p95_ms": pct(first_pass, 95),
            "mean_ms": statistics.fmean(first_pass),
        }
    }
    filtered_share: dict[str, float] = {}
    for name, (mode, flt) in cases.items():
        times = []
        cpu = []  # CPU time of all the process's threads: what a query costs on an idle core
        empty = 0
        for q in texts:
            t, c = time.perf_counter(), time.process_time()
            hits = retriever.search(q, top_k=K, mode=mode, search_filter=flt)  # type: ignore[arg-type]
            times.append((time.perf_counter() - t) * 1000)
            cpu.append((time.process_time() - c) * 1000)
            empty += not hits.chunks
        latency[name] = {
            "p50_ms": pct(times, 50),
            "p95_ms": pct(times, 95),
            "mean_ms": statistics.fmean(times),
            "cpu_p50_ms": pct(cpu, 50),
            "cpu_p95_ms": pct(cpu, 95),
            "queries_without_hits": empty,
        }
        if flt is not None:
            filtered_share[name] = store.count(flt) / store.count()
        log(f"{name}: {latency[name]}")
    truth = json.loads((args.out / "truth.json").read_text())
    recall = []
    for q, want in zip(qvecs, truth, strict=True):
        got = store.query(dense=q.tolist(), sparse=None, limit=K)
        recall.append(len({h.chunk.chunk_id for h in got} & set(want)) / K)
    searched = proc_status()
    store.close()
    return {
        "open_s": open_s,
        "rss_before_open_mib": before["VmRSS"],
        "rss_after_open_mib": opened["VmRSS"],
        "rss_after_search_mib": searched["VmRSS"],
        "rss_anon_after_search_mib": searched["RssAnon"],
        "rss_file_after_search_mib": searched["RssFile"],
        "peak_rss_mib": searched["VmHWM"],
        "latency_ms": latency,
        "filtered_share": filtered_share,
        "dense_recall_at_10": statistics.fmean(recall),
        "queries": len(texts),
    }


def print_table(r: dict[str, Any]) -> None:
    s = r["serve"]
    print(
        f"\nN = {r['n']:,} chunks, {s['queries']} queries; load average before "
        f"{r['loadavg_before']}, after {r['loadavg_after']}"
    )
    print(
        f"upsert {r['upsert_points_per_s']:,.0f} points/s (load incl. generation "
        f"{r['load_points_per_s']:,.0f}/s, {r['load_s']:.0f} s); optimize {r['optimize_s']:.1f} s"
        f" (CPU {r.get('optimize_cpu_s', float('nan')):.1f} s)"
    )
    print(
        f"disk {r['disk_mib']:,.0f} MiB; build RSS after load {r['build_rss_after_load_mib']:,.0f}"
        f" MiB, peak {r['build_peak_rss_mib']:,.0f} MiB"
    )
    print(
        f"server: open {s['open_s']:.2f} s; RSS after open {s['rss_after_open_mib']:,.0f} MiB, "
        f"after search {s['rss_after_search_mib']:,.0f} MiB "
        f"(anon {s['rss_anon_after_search_mib']:,.0f}, file {s['rss_file_after_search_mib']:,.0f}),"
        f" peak {s['peak_rss_mib']:,.0f} MiB"
    )
    print(f"dense recall@10 vs exact: {s['dense_recall_at_10']:.3f}")
    print(
        "| search | p50 ms | p95 ms | mean ms | CPU p50 ms | CPU p95 ms |\n"
        "|---|---|---|---|---|---|"
    )
    nan = float("nan")
    for name, v in s["latency_ms"].items():
        print(
            f"| {name} | {v['p50_ms']:.1f} | {v['p95_ms']:.1f} | {v['mean_ms']:.1f} "
            f"| {v.get('cpu_p50_ms', nan):.1f} | {v.get('cpu_p95_ms', nan):.1f} |"
        )
    for name, share in s["filtered_share"].items():
        print(f"filter {name}: {share:.1%} of points")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=1_000_000, help="chunks in the built store")
    ap.add_argument("--out", type=Path, default=Path("/tmp/litrag-scale"), help="work folder")
    ap.add_argument(
        "--source",
        type=Path,
        default=Path("/tmp/h1/src"),
        help="an ingested Edge store to take chunks from (store folder or collection folder)",
    )
    ap.add_argument("--queries", type=int, default=300, help="real questions searched")
    ap.add_argument("--noise", type=float, default=0.02, help="Gaussian noise per dimension")
    ap.add_argument("--batch", type=int, default=4000, help="points per upsert")
    ap.add_argument("--seed", type=int, default=13)
    d = StoreSettings()
    ap.add_argument("--quantization", choices=["none", "int8"], default=d.quantization)
    ap.add_argument(
        "--vectors-on-disk", action=argparse.BooleanOptionalAction, default=d.vectors_on_disk
    )
    ap.add_argument(
        "--sparse-on-disk", action=argparse.BooleanOptionalAction, default=d.sparse_on_disk
    )
    ap.add_argument("--hnsw-m", type=int, default=d.hnsw_m)
    ap.add_argument("--ef-construct", type=int, default=d.hnsw_ef_construct)
    ap.add_argument("--hnsw-ef", type=int, default=d.hnsw_ef)
    ap.add_argument("--oversampling", type=float, default=d.quantization_oversampling)
    ap.add_argument("--serve", action="store_true", help="only the server half (store built)")
    ap.add_argument(
        "--resume",
        action="store_true",
        help="the store in --out was loaded by an earlier run (same flags) that stopped before "
        "or during optimize: recompute the exact top 10, optimize, search",
    )
    ap.add_argument("--embed-queries", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.embed_queries:
        embed_queries(args.out, args.embed_queries)
        return
    if args.serve:
        print(json.dumps(serve(args)))
        return
    args.out.mkdir(parents=True, exist_ok=True)
    load_before = os.getloadavg()
    result = build(args)
    result["loadavg_before"] = load_before
    log("starting a fresh process to open the store and search")
    flags = sys.argv[1:]
    proc = subprocess.run(
        [sys.executable, __file__, *flags, "--serve"], check=True, stdout=subprocess.PIPE, text=True
    )
    result["serve"] = json.loads(proc.stdout.strip().splitlines()[-1])
    result["loadavg_after"] = os.getloadavg()
    (args.out / "results.json").write_text(json.dumps(result, indent=2))
    print_table(result)


if __name__ == "__main__":
    main()
