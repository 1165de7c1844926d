"""Server memory under extractive ``/v1/answer`` load: does RSS plateau?

    LITRAG_STORE__PATH=/path/to/store .venv/bin/python benchmarks/service_memory.py \
        [-n 1000] [-c 8] [--every 100] [--env KEY=VALUE ...]

Starts ``litrag serve`` in a child process (so ``VmRSS`` is the server's own), then C client
threads send N extractive answers with real PubMedQA / LitQA2 questions (the questions of
``service_latency.py``, in order). Prints the server's RSS before the first request, every
``--every`` answers, and after the last (and again after a few idle seconds), with the errors.
``--env`` sets a variable for the server only (e.g. ``MALLOC_ARENA_MAX=2``, to compare).
"""

from __future__ import annotations

import argparse
import threading
import time

import httpx
from server_proc import Server
from service_latency import questions


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-n", type=int, default=1000, help="answers in all")
    ap.add_argument("-c", type=int, default=8, help="concurrent clients")
    ap.add_argument("--every", type=int, default=100, help="print RSS every this many answers")
    ap.add_argument("--settle", type=float, default=5.0, help="idle seconds before the last RSS")
    ap.add_argument("--env", action="append", default=[], help="KEY=VALUE for the server")
    args = ap.parse_args()
    env = dict(kv.split("=", 1) for kv in args.env)
    qs = questions(args.n)
    lock = threading.Lock()
    state = {"next": 0, "done": 0, "errors": 0}
    errors: list[str] = []

    with Server(env) as server:
        t0 = time.perf_counter()

        def report(label: str) -> None:
            print(
                f"{label:>14s}  rss {server.rss_mib():7.1f} MiB (anon {server.anon_mib():7.1f})"
                f"  peak {server.hwm_mib():7.1f}  threads {server.threads():3d}"
                f"  cpu {server.cpu_s():6.0f} s"
                f"  errors {state['errors']:3d}"
                f"  {time.perf_counter() - t0:6.0f} s",
                flush=True,
            )

        def client() -> None:
            with httpx.Client(base_url=server.base_url, timeout=300) as http:
                while True:
                    with lock:
                        i = state["next"]
                        if i >= args.n:
                            return
                        state["next"] = i + 1
                    try:
                        r = http.post(
                            "/v1/answer", json={"question": qs[i], "generator": "extractive"}
                        )
                        failed = r.status_code != 200
                        why = f"HTTP {r.status_code}: {r.text[:200]}"
                    except httpx.HTTPError as exc:  # a dropped connection counts as an error
                        failed, why = True, f"{type(exc).__name__}: {exc}"
                    with lock:
                        state["done"] += 1
                        if failed:
                            state["errors"] += 1
                            errors.append(why)
                        if state["done"] % args.every == 0:
                            report(f"{state['done']} answers")

        print(f"server pid {server.pid}  env {env or '{}'}  n {args.n}  clients {args.c}")
        report("before")
        workers = [threading.Thread(target=client) for _ in range(args.c)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        elapsed = time.perf_counter() - t0
        report("after")
        time.sleep(args.settle)
        report(f"after +{args.settle:.0f} s")
    print(f"{args.n} answers in {elapsed:.0f} s ({args.n / elapsed:.2f}/s), {len(errors)} errors")
    for why in errors[:5]:
        print("  error:", why)


if __name__ == "__main__":
    main()
