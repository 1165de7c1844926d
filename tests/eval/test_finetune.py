"""Fine-tuning on training queries: the held-out split, triple mining, a real (tiny) training run.

Everything runs on the real SciFact train queries and abstracts and the real MiniLM weights.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest

from core.chunking import chunk_document
from core.config import EmbeddingSettings, Settings
from core.embedding import SentenceTransformerEmbedder, load_embedder
from core.errors import ConfigError
from eval.datasets import EvalSet, holdout, is_dev_query, load, load_beir
from eval.finetune import FinetuneOptions, batches_without_duplicates, finetune, mine_triples
from eval.index import to_document


@pytest.fixture(scope="module")
def train(shared_data: Path) -> EvalSet:
    return load_beir(shared_data / "eval" / "scifact", "train")


@pytest.fixture(scope="module")
def small_train(train: EvalSet) -> EvalSet:
    """30 train queries, their relevant abstracts and 150 other abstracts."""
    queries = train.queries[:30]
    relevant = {d for q in queries for d in train.qrels[q.qid]}
    others = [d for d in train.docs if d.doc_id not in relevant][:150]
    return EvalSet(
        name="scifact",
        docs=[d for d in train.docs if d.doc_id in relevant] + others,
        queries=queries,
        qrels={q.qid: train.qrels[q.qid] for q in queries},
        split="train",
    )


def test_holdout_partitions_train_stably(train: EvalSet, shared_data: Path) -> None:
    fit, dev = holdout(train, "fit"), holdout(train, "dev")
    fit_ids, dev_ids = {q.qid for q in fit.queries}, {q.qid for q in dev.queries}
    assert not fit_ids & dev_ids
    assert fit_ids | dev_ids == {q.qid for q in train.queries}
    assert 0.15 < len(dev_ids) / len(train.queries) < 0.25  # 163 of 809
    assert (fit.split, dev.split) == ("train-fit", "train-dev")
    assert set(dev.qrels) == dev_ids
    by_name = load(shared_data / "eval" / "scifact", "train-dev")
    assert [q.qid for q in by_name.queries] == [q.qid for q in dev.queries]
    assert all(is_dev_query(q) for q in dev_ids)
    with pytest.raises(ValueError, match="'fit' or 'dev'"):
        holdout(train, "test")


def test_mine_triples_pairs_relevant_chunks_with_non_relevant_ones(small_train: EvalSet) -> None:
    settings = Settings()
    embedder = load_embedder(settings.embedding)
    chunks = {
        d.doc_id: {
            c.embed_text
            for c in chunk_document(to_document(d), settings.chunking, embedder.count_tokens)
        }
        for d in small_train.docs
    }
    triples = mine_triples(small_train, settings, embedder.count_tokens, FinetuneOptions())
    n_pairs = sum(len(v) for v in small_train.qrels.values())
    assert len(triples) == n_pairs
    texts = {q.text: q.qid for q in small_train.queries}
    for t in triples:
        relevant = set(small_train.qrels[texts[t.query]])
        assert t.positive_doc in relevant
        assert t.positive in chunks[t.positive_doc]
        owners = {doc for doc, texts_ in chunks.items() if t.negative in texts_}
        assert owners and not owners & relevant


@pytest.mark.parametrize(
    ("name", "split"),
    [("scifact", "test"), ("scifact", "train-dev"), ("bioasq", "7b"), ("pubmedqa", "test")],
)
def test_mine_triples_refuses_evaluation_splits(
    small_train: EvalSet, name: str, split: str
) -> None:
    es = EvalSet(name, small_train.docs, [], {}, split)
    with pytest.raises(ConfigError, match="refusing to train"):
        mine_triples(
            es, Settings(), load_embedder(Settings().embedding).count_tokens, FinetuneOptions()
        )


def test_batches_never_repeat_a_positive_document(small_train: EvalSet) -> None:
    triples = mine_triples(
        small_train, Settings(), load_embedder(Settings().embedding).count_tokens, FinetuneOptions()
    )
    # SciFact train has documents relevant to several queries; force them into few batches
    batches = batches_without_duplicates(triples * 2, 8, random.Random(0))
    assert sorted(map(id, (t for b in batches for t in b))) == sorted(map(id, triples * 2))
    for batch in batches:
        assert len(batch) <= 8
        assert len({t.positive_doc for t in batch}) == len(batch)


@pytest.mark.slow
def test_finetune_trains_a_loadable_model_that_separates_its_triples(
    small_train: EvalSet, tmp_path: Path
) -> None:
    settings = Settings()
    base = load_embedder(settings.embedding)
    triples = mine_triples(small_train, settings, base.count_tokens, FinetuneOptions())

    def margin(embedder: object) -> float:
        embed = embedder.embed  # type: ignore[attr-defined]
        q = embed([t.query for t in triples])
        p = embed([t.positive for t in triples])
        n = embed([t.negative for t in triples])
        return float(np.mean(np.sum(q * p, axis=1) - np.sum(q * n, axis=1)))

    before = margin(base)
    options = FinetuneOptions(epochs=2, batch_size=8, lr=1e-4, max_seq_length=128)
    manifest = finetune("all-MiniLM-L6-v2", triples, tmp_path / "ft", options)
    assert manifest["triples"] == len(triples)
    assert manifest["steps"] >= 2 * (len(triples) // 8)
    saved = json.loads((tmp_path / "ft" / "litrag-finetune.json").read_text())
    assert saved["base_model"] == "all-MiniLM-L6-v2"

    tuned = SentenceTransformerEmbedder(EmbeddingSettings(model=str(tmp_path / "ft")))
    assert tuned.name == "ft" and tuned.dim == 384
    after = margin(tuned)
    assert after > before + 0.02, (before, after)


def test_finetune_without_triples_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no training triples"):
        finetune("all-MiniLM-L6-v2", [], tmp_path / "x", FinetuneOptions())


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("scifact", "expected DATASET:SPLIT"),
        ("scifact:test", "refusing to train on the scifact 'test' split"),
        ("scifact:train-dev", "refusing to train on the scifact 'train-dev' split"),
    ],
)
def test_finetune_cli_refuses_bad_training_data(spec: str, message: str, tmp_path: Path) -> None:
    import typer
    from typer.testing import CliRunner

    from eval.cli import register

    root = typer.Typer()

    @root.callback()
    def _root() -> None:
        """litrag (test root)."""

    register(root)
    res = CliRunner().invoke(
        root, ["eval", "finetune", "--out", str(tmp_path / "m"), "--train", spec]
    )
    assert res.exit_code == 2, res.output
    assert message in " ".join(res.output.split())
    assert not (tmp_path / "m").exists()
