"""``benchmarks/scale.py`` end to end at a tiny N: a source store of real chunks, the build
through litrag's store classes, and the fresh "server" process that opens it and searches."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from core.config import StoreSettings
from core.embedding import Embedder
from core.store import RawPoint, StoreMeta, open_store

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "benchmarks" / "scale.py"


@pytest.mark.slow  # ~30 s on the shared 2-core machine (a store built, a server process)
def test_scale_benchmark_runs_end_to_end(
    tmp_path: Path, real_points: tuple[StoreMeta, list[RawPoint]], embedder: Embedder
) -> None:
    meta, points = real_points
    source = open_store(StoreSettings(backend="edge", path=tmp_path / "src"), meta)
    source.upsert_raw(points)
    source.close()
    # The questions the script would embed, embedded here with the session's model (no reload).
    spec = importlib.util.spec_from_file_location("scale", SCRIPT)
    assert spec is not None and spec.loader is not None
    scale = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("scale", scale)  # its dataclasses look their module up there
    spec.loader.exec_module(scale)
    texts = scale.real_questions(12)
    out = tmp_path / "out"
    out.mkdir()
    np.savez(out / "queries.npz", texts=np.array(texts), vectors=embedder.embed(texts))

    n = 2000
    run = subprocess.run(
        [
            sys.executable,
            str(SCRIPT),
            *("--n", str(n), "--queries", "12", "--batch", "500"),
            *("--source", str(tmp_path / "src"), "--out", str(out)),
            *("--quantization", "int8", "--vectors-on-disk"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads((out / "results.json").read_text())
    assert result["n"] == n
    assert result["shard_config"]["quantization_config"]["scalar"]["type"] == "int8"
    assert result["upsert_points_per_s"] > 0 and result["disk_mib"] > 0
    serve = result["serve"]
    assert set(serve["latency_ms"]) >= {"dense", "sparse", "hybrid", "hybrid year>=2020"}
    assert all(v["p95_ms"] > 0 for v in serve["latency_ms"].values())
    assert serve["latency_ms"]["hybrid"]["queries_without_hits"] == 0
    assert serve["dense_recall_at_10"] >= 0.9  # below the indexing threshold: exact search
    assert 0 < serve["rss_after_search_mib"] < 2048
    assert "| hybrid |" in run.stdout
    # Copies are distinct documents: doc ids "<real id>~<copy>".
    store = open_store(
        StoreSettings(backend="edge", path=out / "store", collection="scale"), meta, create=False
    )
    try:
        assert store.count() == n
        copy = store.doc_chunks(f"{points[0].payload['doc_id']}~1")
        assert copy and copy[0].chunk.doc_id.endswith("~1")
    finally:
        store.close()
