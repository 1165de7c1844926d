"""Fine-tune the dense embedder on training queries only (SciFact train, PubMedQA train, BioASQ).

The recipe is the standard in-domain one for bi-encoders: (query, relevant passage, hard negative)
triples, MultipleNegativesRankingLoss (in-batch negatives plus the mined one), AdamW with linear
warm-up and decay. Passages are the chunks ``litrag ingest`` and ``litrag eval`` embed (header +
text, from ``core.chunking``), so the model learns the input it will see. Hard negatives come from
BM25 (bm25s) over those chunks: the best-ranked chunks of documents not judged relevant, skipping
the very top ranks where unjudged relevant documents hide (SciFact's judgments are incomplete).

The result is a plain sentence-transformers folder plus ``litrag-finetune.json`` (base model, data,
hyper-parameters, losses, time), loadable offline with ``LITRAG_EMBEDDING__MODEL=<folder>``.
Test splits are refused: only ``train``, ``train-fit`` and BioASQ years other than the evaluated
one may be used.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from core.chunking import chunk_document
from core.config import Settings
from core.embedding import resolve_model_path
from core.errors import ConfigError
from eval.datasets import EvalSet
from eval.index import to_document

__all__ = [
    "FinetuneOptions",
    "Triple",
    "batches_without_duplicates",
    "finetune",
    "mine_triples",
]

ProgressFn = Callable[[int, int, float], None]

#: Splits, besides every ``test`` and ``*-dev`` split, on which docs/eval.md reports results.
REPORTED_SPLITS: dict[str, tuple[str, ...]] = {"bioasq": ("7b",)}


@dataclass(frozen=True, slots=True)
class Triple:
    """One training example: a query, a passage relevant to it, and a mined non-relevant one."""

    query: str
    positive: str
    negative: str
    positive_doc: str


@dataclass(slots=True)
class FinetuneOptions:
    """Hyper-parameters; the defaults are the ones behind docs/eval.md's numbers."""

    epochs: int = 2
    batch_size: int = 32
    lr: float = 2e-5
    warmup: float = 0.1
    scale: float = 20.0
    negative_skip: int = 3
    negative_depth: int = 30
    seed: int = 13
    max_seq_length: int = 256
    datasets: list[str] = field(default_factory=list)


def _chunk_texts(
    eval_set: EvalSet, settings: Settings, count: Callable[..., list[int]]
) -> dict[str, list[str]]:
    """Each document's chunk embed texts, exactly as the evaluation index stores them."""
    return {
        d.doc_id: [c.embed_text for c in chunk_document(to_document(d), settings.chunking, count)]
        for d in eval_set.docs
    }


def mine_triples(
    eval_set: EvalSet,
    settings: Settings,
    count_tokens: Callable[[Sequence[str]], list[int]],
    options: FinetuneOptions,
) -> list[Triple]:
    """(query, positive chunk, hard negative chunk) for every judged (query, document) pair.

    The positive is the relevant document's chunk BM25 ranks highest for the query (its first
    chunk when none matches); the negative is drawn from ranks ``negative_skip`` to
    ``negative_depth`` of the chunks of non-relevant documents.
    """
    held_out = eval_set.split in ("test", *REPORTED_SPLITS.get(eval_set.name, ()))
    if held_out or eval_set.split.endswith("-dev"):
        raise ConfigError(f"refusing to train on the {eval_set.name} {eval_set.split!r} split")
    import bm25s
    import Stemmer

    chunks = _chunk_texts(eval_set, settings, count_tokens)
    flat: list[tuple[str, str]] = [(doc, text) for doc, texts in chunks.items() for text in texts]
    stemmer = Stemmer.Stemmer("english")
    retriever = bm25s.BM25()
    retriever.index(
        bm25s.tokenize([t for _, t in flat], stopwords="en", stemmer=stemmer, show_progress=False),
        show_progress=False,
    )
    depth = min(options.negative_depth + 50, len(flat))
    qtoks = bm25s.tokenize(
        [q.text for q in eval_set.queries], stopwords="en", stemmer=stemmer, show_progress=False
    )
    hits, _ = retriever.retrieve(qtoks, k=depth, show_progress=False, n_threads=1)
    rng = random.Random(options.seed)
    triples: list[Triple] = []
    for query, row in zip(eval_set.queries, hits, strict=True):
        relevant = {d for d, rel in eval_set.qrels[query.qid].items() if rel > 0}
        ranked = [flat[int(i)] for i in row]
        pool = [text for doc, text in ranked if doc not in relevant]
        pool = pool[options.negative_skip : options.negative_depth] or pool
        for doc_id in sorted(relevant):
            if doc_id not in chunks or not chunks[doc_id]:
                continue
            best = next((t for d, t in ranked if d == doc_id), chunks[doc_id][0])
            if pool:
                triples.append(Triple(query.text, best, rng.choice(pool), doc_id))
    return triples


def batches_without_duplicates(
    triples: Sequence[Triple], batch_size: int, rng: random.Random
) -> list[list[Triple]]:
    """Shuffled batches in which no document is the positive twice.

    MultipleNegativesRankingLoss treats every other positive in the batch as a negative, so a
    document relevant to two queries of one batch would be pushed away from itself.
    """
    pending = list(triples)
    rng.shuffle(pending)
    batches: list[list[Triple]] = []
    while pending:
        batch: list[Triple] = []
        seen: set[str] = set()
        rest: list[Triple] = []
        for t in pending:
            if len(batch) < batch_size and t.positive_doc not in seen:
                batch.append(t)
                seen.add(t.positive_doc)
            else:
                rest.append(t)
        batches.append(batch)
        pending = rest
    return batches


def finetune(
    base_model: str,
    triples: Sequence[Triple],
    out: Path,
    options: FinetuneOptions,
    on_step: ProgressFn | None = None,
) -> dict[str, Any]:
    """Train from ``base_model`` on ``triples``, save to ``out``; returns the manifest written."""
    if not triples:
        raise ConfigError("no training triples: nothing to fine-tune on")
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss
    from torch.optim.lr_scheduler import LambdaLR

    torch.manual_seed(options.seed)
    rng = random.Random(options.seed)
    path = resolve_model_path(base_model)
    model = SentenceTransformer(str(path), device="cpu", local_files_only=True)
    model.max_seq_length = options.max_seq_length
    loss_fn = MultipleNegativesRankingLoss(model, scale=options.scale)
    epochs = [batches_without_duplicates(triples, options.batch_size, rng)]
    for _ in range(options.epochs - 1):
        epochs.append(batches_without_duplicates(triples, options.batch_size, rng))
    total = sum(len(e) for e in epochs)
    optimizer = torch.optim.AdamW(model.parameters(), lr=options.lr, weight_decay=0.01)
    warm = int(total * options.warmup)

    def factor(step: int) -> float:
        # linear warm-up from 0, then linear decay to 0 (transformers' linear schedule)
        if step < warm:
            return step / max(1, warm)
        return max(0.0, (total - step) / max(1, total - warm))

    schedule = LambdaLR(optimizer, factor)
    model.train()
    losses_per_epoch: list[float] = []
    step = 0
    t0 = time.perf_counter()
    for batches in epochs:
        epoch_loss = 0.0
        for batch in batches:
            features = [
                model.preprocess([t.query for t in batch]),
                model.preprocess([t.positive for t in batch]),
                model.preprocess([t.negative for t in batch]),
            ]
            value = loss_fn(features, None)
            value.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            schedule.step()
            optimizer.zero_grad()
            epoch_loss += float(value.detach())
            step += 1
            if on_step:
                on_step(step, total, float(value.detach()))
        losses_per_epoch.append(round(epoch_loss / max(1, len(batches)), 4))
    model.eval()
    out.mkdir(parents=True, exist_ok=True)
    model.save(str(out))
    manifest: dict[str, Any] = {
        "base_model": base_model,
        "base_path": str(path),
        "triples": len(triples),
        "steps": total,
        "mean_loss_per_epoch": losses_per_epoch,
        "seconds": round(time.perf_counter() - t0, 1),
        "options": asdict(options),
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    (out / "litrag-finetune.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest
