"""The ONNX Runtime backend of the embedder: the model exported once, int8 for this CPU, cached.

sentence-transformers' own ONNX backend needs ``optimum``, whose releases pin transformers below
the version litrag runs (installing it downgrades transformers), so the export is done here with
the same two steps it takes: ``torch.onnx.export`` of the transformer, then onnxruntime's dynamic
int8 quantisation with the settings for the CPU's instruction set (VNNI: full-range weights; AVX2
without VNNI: ``reduce_range``, as onnxruntime advises for u8s8 there). Pooling and normalisation
follow the model's sentence-transformers modules (mean or CLS pooling, then L2), in numpy.

The exported file is cached under ``cache_dir/<key>`` where the key hashes the model's weights and
config, the onnxruntime version and the quantisation config, so a new model, a new onnxruntime or
another CPU family exports again. The export runs under a file lock and lands atomically: several
processes (a server and its tests) may start at once. At run time only onnxruntime and the model's
``tokenizer.json`` are used; torch is imported for the export alone.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import platform
import shutil
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from core.config import EmbeddingSettings
from core.errors import EmbeddingError
from core.model_files import Matrix, model_display_name, resolve_model_path, trim_heap

__all__ = ["OnnxEmbedder", "cache_root", "export_key", "quantization_config"]

log = logging.getLogger(__name__)

MODEL_FILE = "model.onnx"
MANIFEST = "export.json"
_OPSET = 17
_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
_CONFIG_FILES = ("config.json", "tokenizer.json", "modules.json", "1_Pooling/config.json")


def cache_root(settings: EmbeddingSettings) -> Path:
    """The folder holding exported models: the setting, else ``$XDG_CACHE_HOME/litrag/onnx``."""
    if settings.cache_dir is not None:
        return settings.cache_dir.expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "litrag" / "onnx"


def _cpu_flags() -> set[str]:
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.partition(":")[2].split())
    return set()


def quantization_config(quantize: bool) -> str:
    """``fp32``, or the int8 config for this CPU: ``avx512_vnni``, ``avx_vnni``, ``avx2``,
    ``arm64``; anything else gets the conservative ``reduce_range`` config (``generic``)."""
    if not quantize:
        return "fp32"
    machine = platform.machine().lower()
    if machine in {"arm64", "aarch64"}:
        return "arm64"
    flags = _cpu_flags()
    for name in ("avx512_vnni", "avx_vnni", "avx2"):
        if name in flags:
            return name
    return "generic"


def _model_hash(path: Path) -> str:
    digest = hashlib.sha256()
    names = [n for n in (*_CONFIG_FILES, *_WEIGHT_FILES) if (path / n).is_file()]
    if not any(n in names for n in _WEIGHT_FILES):
        raise EmbeddingError(f"{path}: no model.safetensors or pytorch_model.bin to export")
    for name in names:
        digest.update(name.encode())
        with (path / name).open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def export_key(path: Path, qcfg: str) -> str:
    """Cache key: model name, weights/config hash, onnxruntime version, quantisation config."""
    import onnxruntime as ort

    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in path.name)[:60]
    return f"{safe}-{_model_hash(path)[:16]}-ort{ort.__version__}-{qcfg}"


def _pooling(path: Path) -> str:
    """``mean`` or ``cls`` from the sentence-transformers modules; other pipelines are refused."""
    modules_file = path / "modules.json"
    if not modules_file.is_file():
        raise EmbeddingError(
            f"{path}: no modules.json; backend 'onnx' needs a sentence-transformers folder"
        )
    modules = json.loads(modules_file.read_text())
    kinds = [m.get("type", "").rsplit(".", 1)[-1] for m in modules]
    if kinds not in (["Transformer", "Pooling"], ["Transformer", "Pooling", "Normalize"]):
        raise EmbeddingError(
            f"{path}: backend 'onnx' supports Transformer + Pooling (+ Normalize) models, this one "
            f"is {' + '.join(kinds)}; use LITRAG_EMBEDDING__BACKEND=torch"
        )
    config = json.loads((path / modules[1]["path"] / "config.json").read_text())
    if config.get("pooling_mode_mean_tokens"):
        return "mean"
    if config.get("pooling_mode_cls_token"):
        return "cls"
    raise EmbeddingError(f"{path}: backend 'onnx' supports mean or CLS pooling only")


def _export(path: Path, target: Path, qcfg: str) -> None:
    """Export ``path``'s transformer to ``target/model.onnx`` (atomic; caller holds the lock)."""
    import torch
    import transformers

    transformers.logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    started = time.perf_counter()
    model = transformers.AutoModel.from_pretrained(str(path), local_files_only=True)
    model.eval()
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    names = [
        n
        for n in ("input_ids", "attention_mask", "token_type_ids")
        if n in tokenizer.model_input_names
    ]
    sample = tokenizer(
        ["an example passage", "a second, longer example passage"],
        padding=True,
        return_tensors="pt",
    )

    class _Hidden(torch.nn.Module):
        """Only the last hidden state: pooling is done outside the graph."""

        def __init__(self) -> None:
            super().__init__()
            self.inner = model

        def forward(self, *args: Any) -> Any:
            return self.inner(**dict(zip(names, args, strict=True))).last_hidden_state

    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".export-") as tmp:
        work = Path(tmp) / "out"
        work.mkdir()
        fp32 = work / ("model_fp32.onnx" if qcfg != "fp32" else MODEL_FILE)
        dyn: dict[str, dict[int, str]] = {n: {0: "batch", 1: "length"} for n in names}
        with torch.no_grad():
            torch.onnx.export(
                _Hidden(),
                tuple(sample[n] for n in names),
                str(fp32),
                input_names=names,
                output_names=["last_hidden_state"],
                dynamic_axes={**dyn, "last_hidden_state": {0: "batch", 1: "length"}},
                opset_version=_OPSET,
                dynamo=False,
            )
        if qcfg != "fp32":
            from onnxruntime.quantization import QuantType, quantize_dynamic

            quantize_dynamic(
                str(fp32),
                str(work / MODEL_FILE),
                weight_type=QuantType.QInt8,
                per_channel=True,
                # without VNNI, u8s8 products can saturate: onnxruntime's advice is 7-bit weights
                reduce_range=qcfg in {"avx2", "generic"},
            )
            fp32.unlink()
        import onnxruntime as ort

        manifest = {
            "model": str(path),
            "quantization": qcfg,
            "opset": _OPSET,
            "onnxruntime": ort.__version__,
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "inputs": names,
            "export_seconds": round(time.perf_counter() - started, 2),
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        (work / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
        os.replace(work, target)
    log.info("exported %s to %s (%s) in %.1f s", path, target, qcfg, manifest["export_seconds"])


def ensure_exported(settings: EmbeddingSettings, path: Path) -> Path:
    """The cached export of ``path`` for these settings, exported first when missing."""
    from filelock import FileLock

    qcfg = quantization_config(settings.quantize)
    root = cache_root(settings)
    target = root / export_key(path, qcfg)
    if (target / MODEL_FILE).is_file():
        return target
    try:
        root.mkdir(parents=True, exist_ok=True)
        with FileLock(str(root / f"{target.name}.lock"), timeout=900):
            if not (target / MODEL_FILE).is_file():
                if target.exists():  # a half-written folder from an older layout
                    shutil.rmtree(target)
                _export(path, target, qcfg)
    except EmbeddingError:
        raise
    except Exception as exc:  # export or lock failures become one clear domain error
        raise EmbeddingError(f"cannot export {path} to ONNX under {root}: {exc}") from exc
    return target


class OnnxEmbedder:
    """Embedder on ONNX Runtime (CPU) with the model's own fast tokenizer."""

    def __init__(self, settings: EmbeddingSettings) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        path = resolve_model_path(settings.model)
        self._pooling = _pooling(path)
        self._dir = ensure_exported(settings, path)
        manifest = json.loads((self._dir / MANIFEST).read_text())
        self._inputs: list[str] = manifest["inputs"]
        self.quantization: str = manifest["quantization"]
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # one thread per run, texts in parallel: a single text's matrices are too small for
        # intra-op threads to pay (measured: docs/benchmarks.md, "Embedding backends")
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        workers = settings.threads or len(os.sched_getaffinity(0)) or 1
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="onnx-embed")
        try:
            self._session = ort.InferenceSession(
                str(self._dir / MODEL_FILE), options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:
            raise EmbeddingError(f"cannot load ONNX model {self._dir / MODEL_FILE}: {exc}") from exc
        self._max_len = settings.max_seq_length or _max_seq_length(path)
        tokenizer_file = path / "tokenizer.json"
        if not tokenizer_file.is_file():
            raise EmbeddingError(
                f"{path}: no tokenizer.json (backend 'onnx' needs a fast tokenizer)"
            )
        # two instances: the model input (truncated) and the counter (whole text, no specials);
        # their settings are fixed here and never changed, so threads may share them
        self._tokenizer = Tokenizer.from_file(str(tokenizer_file))
        self._tokenizer.no_padding()
        self._tokenizer.enable_truncation(max_length=self._max_len)
        self._counter = Tokenizer.from_file(str(tokenizer_file))
        self._counter.no_padding()
        self._counter.no_truncation()
        self._name = model_display_name(settings.model, path)
        self._dim = int(self._session.get_outputs()[0].shape[-1] or _hidden_size(path))

    @property
    def name(self) -> str:
        return self._name

    @property
    def dim(self) -> int:
        return self._dim

    @property
    def max_seq_length(self) -> int:
        return self._max_len

    def embed(self, texts: Sequence[str]) -> Matrix:
        if not texts:
            return np.zeros((0, self._dim), dtype=np.float32)
        encodings = self._tokenizer.encode_batch(list(texts))
        # Each text runs alone: no padding at all, and a vector never depends on the texts it
        # was sent with (int8 activations are scaled per run, so a shared batch would move it).
        # Longest first, so the parallel runs end together.
        order = sorted(range(len(encodings)), key=lambda i: -len(encodings[i].ids))
        out = np.empty((len(texts), self._dim), dtype=np.float32)
        if len(order) == 1:  # a query: no hand-off to a pool thread
            out[0] = self._run(encodings[0])
        else:
            runs = self._pool.map(self._run, [encodings[i] for i in order])
            for i, vec in zip(order, runs, strict=True):
                out[i] = vec
        trim_heap()
        return out

    def _run(self, encoding: Any) -> Matrix:
        ids = np.asarray([encoding.ids], dtype=np.int64)
        feed = {
            "input_ids": ids,
            "attention_mask": np.ones_like(ids),
            "token_type_ids": np.asarray([encoding.type_ids], dtype=np.int64),
        }
        hidden: Matrix = self._session.run(None, {k: feed[k] for k in self._inputs})[0][0]
        pooled = hidden[0] if self._pooling == "cls" else hidden.mean(axis=0)
        unit: Matrix = (pooled / max(float(np.linalg.norm(pooled)), 1e-12)).astype(np.float32)
        return unit

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        if not texts:
            return []
        return [
            len(e.ids) for e in self._counter.encode_batch(list(texts), add_special_tokens=False)
        ]


def _read_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    data = json.loads(path.read_text())
    return data if isinstance(data, dict) else {}


def _max_seq_length(path: Path) -> int:
    for file, key in (
        ("sentence_bert_config.json", "max_seq_length"),
        ("tokenizer_config.json", "model_max_length"),
        ("config.json", "max_position_embeddings"),
    ):
        value = _read_json(path / file).get(key)
        if isinstance(value, int) and 0 < value < 1_000_000:
            return value
    raise EmbeddingError(
        f"{path}: no max_seq_length in its configuration; set embedding.max_seq_length"
    )


def _hidden_size(path: Path) -> int:
    value = _read_json(path / "config.json").get("hidden_size")
    if not isinstance(value, int):
        raise EmbeddingError(f"{path}: config.json has no hidden_size")
    return value
