"""Latency of ``/v1/search`` and extractive ``/v1/answer`` for one client, over real HTTP.

    LITRAG_STORE__PATH=/path/to/store .venv/bin/python benchmarks/service_latency.py [N] \
        [--variant NAME[:KEY=VALUE,...]] ... [--answers M]

Starts ``litrag serve`` in a child process per variant (each on its own copy of the store when
there are several, all running at once), warms each up with questions outside the measured set,
then sends N (default 200) searches and M (default N) extractive answers, one at a time, with
real PubMedQA / LitQA2 questions in a fixed order; with several variants each question goes to
every variant in turn, so load on a shared machine falls on all of them alike. Prints p50 / p95 /
max / mean per variant and endpoint, the server's CPU time per request and the server-reported
stage times (median).

    --variant before:LITRAG_SERVICE__MODEL_QUEUE=false --variant after
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from contextlib import ExitStack
from pathlib import Path

import httpx
from server_proc import Server, exit_on_sigterm, parse_variants, store_copies

DATA = Path(
    os.environ.get("LITRAG_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")
)
#: questions kept out of the measured set for warming up (first-call costs are not latency)
WARMUP = 5


def questions(n: int) -> list[str]:
    """Real biomedical questions: PubMedQA, then LitQA2, cycled to ``n``."""
    qs: list[str] = []
    pqa = json.loads((DATA / "eval" / "pubmedqa" / "ori_pqal.json").read_text())
    qs += [v["QUESTION"] for v in pqa.values()][:150]
    with (DATA / "eval" / "litqa2" / "litqa-v2-public.jsonl").open() as fh:
        qs += [json.loads(line)["question"] for line in fh][:100]
    return [qs[i % len(qs)] for i in range(n)]


def pct(values: list[float], p: float) -> float:
    """The p-th percentile (nearest rank)."""
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(p / 100 * len(s) + 0.5) - 1))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("n", nargs="?", type=int, default=200, help="searches per variant")
    ap.add_argument("--answers", type=int, default=None, help="answers per variant (default N)")
    ap.add_argument(
        "--variant",
        action="append",
        default=[],
        help="NAME[:KEY=VALUE,...]: a server with that environment (repeatable)",
    )
    args = ap.parse_args()
    exit_on_sigterm()
    variants = parse_variants(args.variant)
    names = [name for name, _ in variants]
    n_answers = args.n if args.answers is None else args.answers
    pool = questions(WARMUP + max(args.n, n_answers))
    warmup, measured = pool[:WARMUP], pool[WARMUP:]
    times: dict[tuple[str, str], list[float]] = {}
    stages: dict[tuple[str, str], dict[str, list[float]]] = {}
    cpu: dict[tuple[str, str], float] = {}  # server CPU ms per request
    with ExitStack() as stack:
        stores = stack.enter_context(store_copies(names))
        clients, servers = {}, {}
        for name, env in variants:
            server = stack.enter_context(Server({**env, **stores[name]}))
            servers[name] = server
            clients[name] = stack.enter_context(httpx.Client(base_url=server.base_url, timeout=300))
        for client in clients.values():
            for q in warmup:
                client.post("/v1/search", json={"query": q}).raise_for_status()
                body = {"question": q, "generator": "extractive"}
                client.post("/v1/answer", json=body).raise_for_status()
        for endpoint, path, field, extra, n in (
            ("search", "/v1/search", "query", {"top_k": 10}, args.n),
            ("answer", "/v1/answer", "question", {"generator": "extractive"}, n_answers),
        ):
            cpu0 = {name: server.cpu_s() for name, server in servers.items()}
            for q in measured[:n]:
                for name, client in clients.items():
                    t0 = time.perf_counter()
                    r = client.post(path, json={field: q, **extra})
                    ms = (time.perf_counter() - t0) * 1000
                    r.raise_for_status()
                    times.setdefault((name, endpoint), []).append(ms)
                    for stage, ms in r.json()["timings"].items():
                        stages.setdefault((name, endpoint), {}).setdefault(stage, []).append(ms)
            for name, server in servers.items():
                cpu[(name, endpoint)] = (server.cpu_s() - cpu0[name]) * 1000 / max(n, 1)
    print(f"load average at the end {os.getloadavg()[0]:.2f}; variants {dict(variants)}")
    width = max(len(n) for n in names)
    for (name, endpoint), ts in times.items():
        median_stages = "  ".join(
            f"{stage} {statistics.median(v):.1f}" for stage, v in stages[(name, endpoint)].items()
        )
        print(
            f"{name:{width}s} /v1/{endpoint:7s} n={len(ts)}  p50 {pct(ts, 50):7.1f} ms  "
            f"p95 {pct(ts, 95):7.1f} ms  max {max(ts):7.1f} ms  mean {statistics.fmean(ts):7.1f} ms"
            f"  cpu {cpu[(name, endpoint)]:6.1f} ms   server median: {median_stages}"
        )


if __name__ == "__main__":
    main()
