"""Opt-in (marker ``llm``): the LLM path against a real local model served by llama-cpp-python.

Run ``bash scripts/local_llm.sh`` in another shell, then
``LITRAG_TEST_LLM_URL=http://127.0.0.1:8080/v1 pytest -m llm``. Skipped, with the reason, when no
server is configured: a 1.1 GB model and a 7-minute build do not belong in every CI run.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from core.config import LLMSettings, Settings, StoreSettings
from core.ids import source_url
from core.schemas import Identifiers
from core.sparse import SparseEncoder
from core.store import meta_for, open_store
from ingest.pipeline import Pipeline
from service.app import create_app

LLM_URL = os.environ.get("LITRAG_TEST_LLM_URL")

pytestmark = [
    pytest.mark.llm,
    pytest.mark.skipif(
        not LLM_URL,
        reason="set LITRAG_TEST_LLM_URL to a running llama-cpp-python server "
        "(bash scripts/local_llm.sh) to run the real-LLM test",
    ),
]


def test_answer_with_real_local_model(tmp_path: Path, embedder) -> None:  # type: ignore[no-untyped-def]
    assert LLM_URL
    models = httpx.get(f"{LLM_URL.rstrip('/')}/models", timeout=10)
    assert models.status_code == 200, f"LLM server at {LLM_URL} is not answering: {models.text}"
    samples = Path(__file__).resolve().parents[2] / "samples"
    data = tmp_path / "in"
    data.mkdir()
    shutil.copy(samples / "ctgov" / "mrna-trials.json", data)
    settings = Settings(
        store=StoreSettings(backend="edge", path=tmp_path / "store"),
        llm=LLMSettings(base_url=LLM_URL, model="local", timeout_s=300, max_retries=0),
    )
    sparse = SparseEncoder(settings.sparse)
    store = open_store(settings.store, meta_for(settings, embedder.name, embedder.dim, sparse.name))
    Pipeline(settings, store, embedder, sparse).run([data])
    store.close()
    with TestClient(create_app(settings)) as client:
        resp = client.post(
            "/v1/answer",
            json={
                "question": "Which mRNA therapies are being tested for propionic acidemia?",
                "generator": "llm",
                "top_k": 4,
            },
        )
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["generator"] == "llm"
    retrieved = {p["chunk_id"]: p for p in body["passages"]}
    # no fabricated citation: every [n] is a retrieved chunk, every URL from stored identifiers
    for c in body["citations"]:
        assert c["chunk_id"] in retrieved
        ids = Identifiers.model_validate(retrieved[c["chunk_id"]]["identifiers"])
        assert c["url"] == source_url(ids)
    for s in body["sources"]:
        assert s["url"] == source_url(Identifiers.model_validate(s["identifiers"]))
    assert "http" not in body["answer"].replace("](http", "")  # no URL survives in the text
    print(body["answer"], body["verification"]["sentences"], sep="\n")
