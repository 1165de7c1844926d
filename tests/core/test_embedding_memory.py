"""The embedder gives freed activation memory back: encodes from 8 threads, with and without the
heap trim, in two fresh processes; the trimmed one ends with far less resident memory."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent(
    """
    import json, sys, threading
    from core.config import EmbeddingSettings
    from core import embedding

    trim = sys.argv[1] == "trim"
    if not trim:
        embedding.trim_heap._trim = None  # the fix switched off
    # the torch backend: its activation buffers are what the trim gives back
    model = embedding.load_embedder(EmbeddingSettings(backend="torch", device="cpu"))

    def rss_mib():
        with open("/proc/self/status") as fh:
            line = next(ln for ln in fh if ln.startswith("VmRSS:"))
        return int(line.split()[1]) / 1024

    words = "messenger RNA vaccine encoding tumour antigens elicited T cell responses".split()

    def work(seed):
        for i in range(8):
            n = 8 + (seed * 7 + i * 13) % 120  # a new batch shape every call
            texts = [" ".join(words[(j + i) % len(words)] for j in range(n))] * (16 + i)
            model.embed(texts)

    threads = [threading.Thread(target=work, args=(s,)) for s in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    embedding.trim_heap._last = 0.0  # the next encode may trim again at once
    model.embed(["one more passage"])
    print(json.dumps({"rss_mib": rss_mib()}))
    """
)


def _rss_after(mode: str) -> float:
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT, mode],
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    ).stdout
    return float(json.loads(out.strip().splitlines()[-1])["rss_mib"])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc_trim")
def test_encodes_from_many_threads_leave_less_resident_memory_with_the_trim() -> None:
    held, trimmed = _rss_after("off"), _rss_after("trim")
    assert trimmed < held - 100, (held, trimmed)
