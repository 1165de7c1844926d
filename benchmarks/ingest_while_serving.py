"""``/v1/search`` latency while the service ingests an upload, side by side with an idle service.

    LITRAG_STORE__PATH=/path/to/store .venv/bin/python benchmarks/ingest_while_serving.py \
        [--searches N] [--clients C] [--files N] [PATH ...]

Starts ``litrag serve`` in a child process on a copy of the store (the store itself is never
written), warms it up, then, with ``C`` clients (default 1) sending real PubMedQA / LitQA2
questions one after another each:

1. *idle*: N searches (default 200) with no job;
2. *ingesting*: uploads PATH... (default: the first ``--files`` (80) legacy ClinicalTrials.gov
   records of the shared corpus) to ``POST /v1/documents`` and searches until the job ends.

The documents of the uploaded files are first deleted from the copy, so that the job is new work
even on a store that already holds them (the full shared corpus store holds every file).

Prints a Markdown table: searches, errors, p50 / p95 / max per phase, and the job's documents,
chunks, seconds and chunks/s (its embedding goes through the model queue's bulk lane, after the
queries).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
from server_proc import Server, exit_on_sigterm
from service_latency import DATA, pct, questions

from core.config import Settings
from core.embedding import load_embedder
from core.sparse import SparseEncoder
from core.store import meta_for, open_store
from ingest.discover import discover
from ingest.formats import parse_source
from ingest.parsers.base import RecordFailure, Source

KEY = "bench-key"
WARMUP = 5


def _search_loop(
    base_url: str, qs: list[str], stop: threading.Event, count: int | None, out: list[float]
) -> int:
    """Send searches until ``stop`` (or ``count`` are done); latencies (ms) into ``out``;
    the number of errors."""
    errors = 0
    headers = {"Authorization": f"Bearer {KEY}"}
    with httpx.Client(base_url=base_url, timeout=120, headers=headers) as client:
        i = 0
        while not stop.is_set() and (count is None or i < count):
            t0 = time.perf_counter()
            r = client.post("/v1/search", json={"query": qs[i % len(qs)], "top_k": 10})
            if r.status_code == 200:
                out.append((time.perf_counter() - t0) * 1000)
            else:
                errors += 1
            i += 1
    return errors


def _phase(
    base_url: str, qs: list[str], clients: int, count: int | None, stop: threading.Event
) -> tuple[list[float], int]:
    lat: list[list[float]] = [[] for _ in range(clients)]
    errors = [0] * clients

    def run(k: int) -> None:
        errors[k] = _search_loop(base_url, qs[k::clients], stop, count, lat[k])

    threads = [threading.Thread(target=run, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return [x for xs in lat for x in xs], sum(errors)


def _upload(base_url: str, files: list[Path]) -> str:
    parts = [("files", (f.name, f.read_bytes(), "application/octet-stream")) for f in files]
    r = httpx.post(
        f"{base_url}/v1/documents",
        files=parts,
        headers={"Authorization": f"Bearer {KEY}"},
        timeout=300,
    )
    r.raise_for_status()
    job_id: str = r.json()["id"]
    return job_id


def _row(name: str, lat: list[float], errors: int) -> str:
    if not lat:
        return f"| {name} | 0 | {errors} | - | - | - |"
    return (
        f"| {name} | {len(lat)} | {errors} | {pct(lat, 50):.1f} | {pct(lat, 95):.1f} | "
        f"{max(lat):.1f} |"
    )


def _forget(store_path: Path, files: list[Path]) -> int:
    """Delete the documents of ``files`` from the store at ``store_path``; the points deleted."""
    settings = Settings(store=Settings().store.model_copy(update={"path": store_path}))
    doc_ids = {
        doc.doc_id
        for source in discover(files, settings.ingest)
        if isinstance(source, Source)
        for doc in parse_source(source, settings.ingest)
        if not isinstance(doc, RecordFailure)
    }
    embedder = load_embedder(settings.embedding)
    sparse = SparseEncoder(settings.sparse)
    meta = meta_for(settings, embedder.name, embedder.dim, sparse.name)
    store = open_store(settings.store, meta, create=False)
    try:
        before = store.count()
        for doc_id in sorted(doc_ids):
            store.delete_doc_chunks(doc_id)
        deleted = before - store.count()
        store.optimize()
    finally:
        store.close()
    return deleted


def main() -> None:
    """Run both phases and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("paths", nargs="*", type=Path, help="files to upload")
    parser.add_argument("--searches", type=int, default=200, help="searches in the idle phase")
    parser.add_argument("--clients", type=int, default=1, help="concurrent search clients")
    parser.add_argument("--files", type=int, default=80, help="corpus trials when no PATH")
    args = parser.parse_args()
    exit_on_sigterm()
    files = args.paths or sorted((DATA / "corpus" / "ctgov-legacy-xml").iterdir())[: args.files]
    source = Path(os.environ.get("LITRAG_STORE__PATH", ".litrag"))
    qs = questions(args.searches + WARMUP)
    with tempfile.TemporaryDirectory(prefix="litrag-bench-") as tmp:
        store = Path(tmp) / "store"
        shutil.copytree(source, store, ignore=shutil.ignore_patterns("lock", "jobs"))
        print(f"{_forget(store, files)} points of the uploaded files deleted from the copy")
        env = {"LITRAG_STORE__PATH": str(store), "LITRAG_SERVICE__API_KEY": KEY}
        with Server(env) as server:
            stop = threading.Event()
            _phase(server.base_url, qs[:WARMUP], 1, WARMUP, stop)
            idle, idle_err = _phase(server.base_url, qs[WARMUP:], args.clients, args.searches, stop)

            job_id = _upload(server.base_url, files)
            busy: tuple[list[float], int] = ([], 0)

            def search_during() -> None:
                nonlocal busy
                busy = _phase(server.base_url, qs[WARMUP:], args.clients, None, stop)

            searcher = threading.Thread(target=search_during)
            searcher.start()
            with httpx.Client(base_url=server.base_url, timeout=60) as client:
                while True:
                    job = client.get(
                        f"/v1/jobs/{job_id}", headers={"Authorization": f"Bearer {KEY}"}
                    ).json()
                    if job["state"] in ("succeeded", "failed", "cancelled"):
                        break
                    time.sleep(0.5)
            stop.set()
            searcher.join()
    counts = job["counts"]
    seconds = counts["seconds"] or 1e-9
    print(f"{len(files)} files uploaded, {args.clients} search client(s)\n")
    print("| phase | searches | errors | p50 ms | p95 ms | max ms |")
    print("|---|---:|---:|---:|---:|---:|")
    print(_row("idle", idle, idle_err))
    print(_row("ingest job running", *busy))
    print(
        f"\njob {job['state']}: {counts['stored_documents']} documents, {counts['chunks']} chunks "
        f"in {seconds:.1f} s ({counts['chunks'] / seconds:.1f} chunks/s), "
        f"{counts['failures']} failures"
    )
    if job["state"] != "succeeded":
        sys.exit(1)


if __name__ == "__main__":
    main()
