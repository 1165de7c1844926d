"""Mixed load on the real service: concurrent ``/v1/search`` and extractive ``/v1/answer`` clients.

    LITRAG_STORE__PATH=/path/to/store .venv/bin/python benchmarks/service_load.py \
        [--duration 60] [--search-clients 16] [--answer-clients 8] [--env KEY=VALUE ...] \
        [--variant NAME[:KEY=VALUE,...] ...]

Starts ``litrag serve`` in a child process, warms it up (a few requests of each kind), then runs
every client thread for ``--duration`` seconds, each sending its next request as soon as the last
one returned (real PubMedQA / LitQA2 questions, as in ``service_latency.py``, each client starting
at its own offset). Reports per endpoint: requests completed, errors, p50 / p95 / p99 / max
latency and throughput; and the server's RSS before and after the load, and its peak.
Requests still in flight at the deadline are waited for and counted. With ``--variant`` (repeatable)
the load runs once per variant, one after the other, each against a server with that environment
added; the model queue's calls and texts (texts per call > 1: merged queries) are printed too.
"""

from __future__ import annotations

import argparse
import os
import threading
import time
from typing import Any

import httpx
from server_proc import Server, exit_on_sigterm, metric, parse_variants
from service_latency import pct, questions

ENDPOINTS: dict[str, tuple[str, str, dict[str, Any]]] = {
    "search": ("/v1/search", "query", {"top_k": 10}),
    "answer": ("/v1/answer", "question", {"generator": "extractive"}),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--duration", type=float, default=60.0, help="seconds of load")
    ap.add_argument("--search-clients", type=int, default=16)
    ap.add_argument("--answer-clients", type=int, default=8)
    ap.add_argument("--env", action="append", default=[], help="KEY=VALUE for the server")
    ap.add_argument(
        "--variant",
        action="append",
        default=[],
        help="NAME[:KEY=VALUE,...]: run the load once more against a server with that environment",
    )
    args = ap.parse_args()
    exit_on_sigterm()
    env = dict(kv.split("=", 1) for kv in args.env)
    for name, extra in parse_variants(args.variant):
        if args.variant:
            print(f"== {name}  (load average {os.getloadavg()[0]:.2f} at the start)")
        run(args, {**env, **extra})


def run(args: argparse.Namespace, env: dict[str, str]) -> None:
    """One load against one server."""
    qs = questions(250)  # every distinct question once
    lock = threading.Lock()
    times: dict[str, list[float]] = {name: [] for name in ENDPOINTS}
    errors: dict[str, list[str]] = {name: [] for name in ENDPOINTS}

    with Server(env) as server:
        with httpx.Client(base_url=server.base_url, timeout=300) as http:
            for q in qs[-3:]:  # warm-up: first-call costs are not part of the load
                for path, field, extra in ENDPOINTS.values():
                    http.post(path, json={field: q, **extra}).raise_for_status()
        rss_before, cpu_before = server.rss_mib(), server.cpu_s()
        start = threading.Barrier(args.search_clients + args.answer_clients + 1)
        deadline = 0.0

        def client(name: str, offset: int) -> None:
            path, field, extra = ENDPOINTS[name]
            with httpx.Client(base_url=server.base_url, timeout=300) as http:
                start.wait()
                i = offset
                while time.perf_counter() < deadline:
                    t0 = time.perf_counter()
                    try:
                        r = http.post(path, json={field: qs[i % len(qs)], **extra})
                        ok = r.status_code == 200
                        why = "" if ok else f"HTTP {r.status_code}: {r.text[:200]}"
                    except httpx.HTTPError as exc:
                        why = f"{type(exc).__name__}: {exc}"
                    ms = (time.perf_counter() - t0) * 1000
                    with lock:
                        if why:
                            errors[name].append(why)
                        else:
                            times[name].append(ms)
                    i += 7  # clients of one kind ask different questions at the same time

        workers = [
            threading.Thread(target=client, args=("search", k * 13))
            for k in range(args.search_clients)
        ] + [
            threading.Thread(target=client, args=("answer", k * 31))
            for k in range(args.answer_clients)
        ]
        for w in workers:
            w.start()
        deadline = time.perf_counter() + args.duration
        t0 = time.perf_counter()
        start.wait()
        for w in workers:
            w.join()
        wall = time.perf_counter() - t0
        rss_after, rss_peak = server.rss_mib(), server.hwm_mib()
        cpu = server.cpu_s() - cpu_before
        with httpx.Client(base_url=server.base_url, timeout=30) as http:
            exposition = http.get("/metrics").text

    print(
        f"load {args.duration:.0f} s: {args.search_clients} search + {args.answer_clients} answer "
        f"clients (wall {wall:.0f} s with the last requests), server env {env or '{}'}"
    )
    for name, ts in times.items():
        errs = errors[name]
        if not ts:
            print(f"/v1/{name:7s} n=0  errors {len(errs)}")
            continue
        print(
            f"/v1/{name:7s} n={len(ts):5d}  errors {len(errs):3d}  p50 {pct(ts, 50):8.1f} ms  "
            f"p95 {pct(ts, 95):8.1f} ms  p99 {pct(ts, 99):8.1f} ms  max {max(ts):8.1f} ms  "
            f"{len(ts) / wall:6.2f}/s"
        )
        for why in errs[:3]:
            print("   error:", why)
    print(
        f"server RSS before {rss_before:.1f} MiB  after {rss_after:.1f} MiB  "
        f"peak {rss_peak:.1f} MiB"
    )
    done = sum(len(ts) for ts in times.values())
    print(
        f"server CPU {cpu:.1f} s in {wall:.0f} s ({cpu / wall:.2f} cores), "
        f"{cpu * 1000 / max(done, 1):.1f} ms per request"
    )
    calls = metric(exposition, "litrag_embed_calls_total")
    if calls:
        texts = metric(exposition, "litrag_embed_texts_total")
        print(f"model queue: {calls:.0f} calls, {texts:.0f} texts ({texts / calls:.2f} per call)")


if __name__ == "__main__":
    main()
