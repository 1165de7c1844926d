"""Latency of ``/v1/search`` and extractive ``/v1/answer`` over real HTTP (uvicorn on loopback).

    LITRAG_STORE__PATH=/path/to/store .venv/bin/python benchmarks/service_latency.py [N]

Starts the service on 127.0.0.1 (ephemeral port) against the configured store, warms up, then
sends N (default 200) requests to each endpoint, one at a time, with questions drawn in a fixed
order from real PubMedQA / LitQA2 questions (../shared/data/eval), and prints p50 / p95 / max.
"""

from __future__ import annotations

import json
import os
import socket
import statistics
import sys
import threading
import time
from pathlib import Path

import httpx
import uvicorn

from core.config import get_settings
from service.app import create_app

DATA = Path(
    os.environ.get("LITRAG_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")
)


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
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    server = uvicorn.Server(
        uvicorn.Config(create_app(get_settings()), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    with httpx.Client(base_url=base, timeout=120) as client:
        while True:
            try:
                ready = client.get("/readyz")
            except httpx.TransportError:
                time.sleep(0.2)  # the server is still starting (model load)
                continue
            if ready.status_code == 200:
                break
            if ready.status_code == 503 and "store" in ready.json():
                raise SystemExit(f"store not ready: {ready.json()}")
        print(f"store: {ready.json()}")
        qs = questions(n)
        for q in qs[:5]:  # warm-up
            client.post("/v1/search", json={"query": q})
            client.post("/v1/answer", json={"question": q, "generator": "extractive"})
        results: dict[str, list[float]] = {}
        for name, path, field, extra in (
            ("search", "/v1/search", "query", {"top_k": 10}),
            ("answer", "/v1/answer", "question", {"generator": "extractive"}),
        ):
            times = []
            for q in qs:
                t0 = time.perf_counter()
                r = client.post(path, json={field: q, **extra})
                times.append((time.perf_counter() - t0) * 1000)
                r.raise_for_status()
            results[name] = times
    server.should_exit = True
    thread.join(timeout=10)
    for name, times in results.items():
        print(
            f"/v1/{name:7s} n={len(times)}  p50 {pct(times, 50):7.1f} ms  "
            f"p95 {pct(times, 95):7.1f} ms  max {max(times):7.1f} ms  "
            f"mean {statistics.fmean(times):7.1f} ms"
        )


if __name__ == "__main__":
    main()
