"""The ONNX Runtime backend of the embedder against the torch one, on real SciFact abstracts and
queries with the real MiniLM weights: same tokens, near-identical vectors, the same rankings; the
export is cached, keyed, shared safely between processes, and refused for unsupported models."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from core.config import EmbeddingSettings
from core.embedding import SentenceTransformerEmbedder, load_embedder, resolve_backend
from core.errors import EmbeddingError
from core.onnx_embedding import MANIFEST, OnnxEmbedder, cache_root, quantization_config

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def scifact(shared_data: Path) -> tuple[list[str], list[str], list[str]]:
    """(doc ids, abstracts, queries whose relevant abstract is among them) from SciFact train."""
    root = shared_data / "eval" / "scifact"
    docs: dict[str, str] = {}
    with (root / "corpus.jsonl").open() as fh:
        for line in fh:
            d = json.loads(line)
            docs[d["_id"]] = f"{d['title']}. {d['text']}"
    queries = {
        (q := json.loads(line))["_id"]: q["text"] for line in (root / "queries.jsonl").open()
    }
    rel: dict[str, str] = {}
    for line in (root / "qrels" / "train.tsv").read_text().splitlines()[1:]:
        qid, did, *_ = line.split("\t")
        rel.setdefault(qid, did)
    pairs = [(q, d) for q, d in rel.items() if q in queries and d in docs][:60]
    ids = list(dict.fromkeys(d for _, d in pairs))
    return ids, [docs[i] for i in ids], [queries[q] for q, _ in pairs]


@pytest.fixture(scope="module")
def torch_embedder() -> SentenceTransformerEmbedder:
    return SentenceTransformerEmbedder(EmbeddingSettings(backend="torch", device="cpu"))


@pytest.fixture(scope="module")
def onnx_int8() -> OnnxEmbedder:
    return OnnxEmbedder(EmbeddingSettings(backend="onnx"))


def test_default_on_this_cpu_is_onnx_int8(onnx_int8: OnnxEmbedder) -> None:
    assert resolve_backend(EmbeddingSettings()) == ("onnx", "cpu")
    assert isinstance(load_embedder(EmbeddingSettings()), OnnxEmbedder)
    assert onnx_int8.quantization == quantization_config(True) != "fp32"
    assert onnx_int8.name == "all-MiniLM-L6-v2" and onnx_int8.dim == 384
    assert onnx_int8.max_seq_length == 256


def test_onnx_vectors_match_torch(
    scifact: tuple[list[str], list[str], list[str]],
    torch_embedder: SentenceTransformerEmbedder,
    onnx_int8: OnnxEmbedder,
) -> None:
    _, abstracts, queries = scifact
    texts = abstracts + queries
    ref = torch_embedder.embed(texts)
    fp32 = OnnxEmbedder(EmbeddingSettings(backend="onnx", quantize=False)).embed(texts)
    int8 = onnx_int8.embed(texts)
    assert int8.shape == ref.shape == (len(texts), 384) and int8.dtype == np.float32
    assert np.allclose(np.linalg.norm(int8, axis=1), 1.0, atol=1e-5)
    assert (fp32 * ref).sum(axis=1).min() > 0.9999  # the export itself loses nothing
    assert (int8 * ref).sum(axis=1).min() > 0.97  # int8 weights: small, bounded error
    assert onnx_int8.count_tokens(texts) == torch_embedder.count_tokens(texts)


def test_onnx_ranks_abstracts_like_torch(
    scifact: tuple[list[str], list[str], list[str]],
    torch_embedder: SentenceTransformerEmbedder,
    onnx_int8: OnnxEmbedder,
) -> None:
    _, abstracts, queries = scifact

    def top1(embedder: SentenceTransformerEmbedder | OnnxEmbedder) -> np.ndarray:
        return np.argmax(embedder.embed(queries) @ embedder.embed(abstracts).T, axis=1)

    agree = float(np.mean(top1(torch_embedder) == top1(onnx_int8)))
    assert agree >= 0.9, agree


def test_vectors_do_not_depend_on_the_texts_sent_with_them(
    scifact: tuple[list[str], list[str], list[str]], onnx_int8: OnnxEmbedder
) -> None:
    _, abstracts, queries = scifact
    mixed = [t for pair in zip(queries[:20], abstracts[:20], strict=True) for t in pair]
    together = onnx_int8.embed(mixed)
    alone = np.stack([onnx_int8.embed([t])[0] for t in mixed])
    # each text runs alone (int8 activations are scaled per run): rows in input order, and the
    # same vector whatever the batch, so ingestion and query merging are reproducible
    assert np.array_equal(together, alone)
    assert np.array_equal(onnx_int8.embed(list(reversed(mixed))), together[::-1])
    assert onnx_int8.embed([]).shape == (0, 384)


def test_export_is_cached_and_keyed(tmp_path: Path) -> None:
    settings = EmbeddingSettings(backend="onnx", cache_dir=tmp_path)
    first = OnnxEmbedder(settings)
    folders = [p for p in tmp_path.iterdir() if p.is_dir()]
    assert len(folders) == 1 and (folders[0] / "model.onnx").is_file()
    manifest = json.loads((folders[0] / MANIFEST).read_text())
    assert manifest["quantization"] == first.quantization
    OnnxEmbedder(settings)  # loads the cached file: nothing new is exported
    assert json.loads((folders[0] / MANIFEST).read_text())["created"] == manifest["created"]
    OnnxEmbedder(settings.model_copy(update={"quantize": False}))
    names = sorted(p.name for p in tmp_path.iterdir() if p.is_dir())
    assert len(names) == 2 and names[0].endswith("-fp32") != names[1].endswith("-fp32")
    assert cache_root(settings) == tmp_path


def test_two_processes_exporting_at_once_share_one_export(tmp_path: Path) -> None:
    script = (
        "import sys; from pathlib import Path; from core.config import EmbeddingSettings; "
        "from core.onnx_embedding import OnnxEmbedder; "
        "e = OnnxEmbedder(EmbeddingSettings(backend='onnx', cache_dir=Path(sys.argv[1]))); "
        "print(e.embed(['mRNA vaccine'])[0][:3].tolist())"
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script, str(tmp_path)],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [err[-2000:] for _, err in outs]
    assert outs[0][0] == outs[1][0]
    entries = sorted(p.name for p in tmp_path.iterdir())
    assert len([e for e in entries if not e.endswith(".lock")]) == 1, entries


def test_unsupported_models_and_devices_are_clear_errors(tmp_path: Path) -> None:
    model = tmp_path / "dense-head"
    model.mkdir()
    (model / "modules.json").write_text(
        json.dumps(
            [
                {
                    "idx": 0,
                    "name": "0",
                    "path": "",
                    "type": "sentence_transformers.models.Transformer",
                },
                {
                    "idx": 1,
                    "name": "1",
                    "path": "1_Pooling",
                    "type": "sentence_transformers.models.Pooling",
                },
                {
                    "idx": 2,
                    "name": "2",
                    "path": "2_Dense",
                    "type": "sentence_transformers.models.Dense",
                },
            ]
        )
    )
    with pytest.raises(EmbeddingError, match=r"Transformer \+ Pooling \+ Dense.*BACKEND=torch"):
        OnnxEmbedder(EmbeddingSettings(backend="onnx", model=str(model), cache_dir=tmp_path))
    with pytest.raises(EmbeddingError, match="runs on the CPU"):
        resolve_backend(EmbeddingSettings(backend="onnx", device="cuda"))
    assert resolve_backend(EmbeddingSettings(backend="auto", device="cuda:1")) == (
        "torch",
        "cuda:1",
    )
    with pytest.raises(ValueError, match="device"):
        EmbeddingSettings(device="gpu")
