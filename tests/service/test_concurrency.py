"""Concurrent clients against the real service (uvicorn on loopback): searches sent 16 at a time,
with answers in flight, get exactly the passages the model alone gives (no matter which queries
shared a model call, or waited behind an answer), and the model queue's work shows in /metrics.
The service without the queue (``model_queue=false``) retrieves the same passages."""

from __future__ import annotations

import re
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from core.embedding import load_embedder
from core.retrieval import Retriever, fusion_from
from core.sparse import SparseEncoder
from core.store import meta_for, open_store
from tests.service.conftest import MakeClient
from tests.web.server import Live, live_service, settings_for

TOPICS = [
    "mRNA vaccine",
    "propionic acidemia",
    "methylmalonic acidemia",
    "cytomegalovirus",
    "influenza",
    "respiratory syncytial virus",
    "melanoma",
    "pancreatic cancer",
    "lipid nanoparticle",
    "infants",
    "older adults",
    "booster dose",
    "immunogenicity",
    "safety and reactogenicity",
    "phase 3",
    "recruiting",
]
#: 32 queries no other test sends: the service embeds each for the first time here
QUERIES = [f"{t} trials {k}" for t in TOPICS for k in ("outcomes", "design")]
ANSWERS = [f"What do trials report about {t}?" for t in TOPICS[:4]]


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Live:
    """The session's real service (default settings: the model queue on; API key required)."""
    return live_service(tmp_path_factory, request)


def _client(live: Live) -> httpx.Client:
    return httpx.Client(
        base_url=live.base_url, headers={"Authorization": f"Bearer {live.api_key}"}, timeout=300
    )


def _alone(live: Live, tmp_path: Path) -> dict[str, list[str]]:
    """Each query's ranked chunk ids from a retriever calling the model directly, one query at
    a time (on a copy of the service's store: the service holds its own)."""
    copy = tmp_path / "store"
    shutil.copytree(live.spare_store, copy)
    settings = settings_for(copy)
    model = load_embedder(settings.embedding)
    sparse = SparseEncoder(settings.sparse)
    store = open_store(settings.store, meta_for(settings, model.name, model.dim, sparse.name))
    try:
        retriever = Retriever(store, model, sparse, fusion_from(settings.retrieval))
        return {
            q: [h.chunk.chunk_id for h in retriever.search(q, top_k=10, per_doc_cap=3).chunks]
            for q in QUERIES
        }
    finally:
        store.close()


def _metric(text: str, name: str) -> float:
    found = re.search(rf"^{name} (\S+)$", text, re.MULTILINE)
    assert found, f"{name} not in /metrics"
    return float(found.group(1))


def test_sixteen_concurrent_clients_get_what_each_query_gets_alone(
    live: Live, tmp_path: Path
) -> None:
    expected = _alone(live, tmp_path)
    with _client(live) as http:
        before = http.get("/metrics").text

    def search(queries: list[str]) -> list[tuple[str, int, list[str]]]:
        out = []
        with _client(live) as http:
            for q in queries:
                r = http.post("/v1/search", json={"query": q})
                ids = [p["chunk_id"] for p in r.json().get("passages", [])]
                out.append((q, r.status_code, ids))
        return out

    def answer(question: str) -> int:
        with _client(live) as http:
            body: dict[str, Any] = {"question": question, "generator": "extractive"}
            return http.post("/v1/answer", json=body).status_code

    with ThreadPoolExecutor(max_workers=len(TOPICS) + len(ANSWERS)) as pool:
        answers = [pool.submit(answer, q) for q in ANSWERS]
        searches = [pool.submit(search, QUERIES[i::16]) for i in range(16)]
        results = [r for f in searches for r in f.result()]
        assert [f.result() for f in answers] == [200] * len(ANSWERS)

    assert [status for _, status, _ in results] == [200] * len(QUERIES)
    for q, _, ids in results:
        assert ids == expected[q], q
    with _client(live) as http:
        after = http.get("/metrics").text
    texts = _metric(after, "litrag_embed_texts_total") - _metric(before, "litrag_embed_texts_total")
    calls = _metric(after, "litrag_embed_calls_total") - _metric(before, "litrag_embed_calls_total")
    assert texts >= len(QUERIES)  # every new query was embedded by the model (answers add more)
    assert 0 < calls <= texts
    assert _metric(after, "litrag_embed_queued_texts") == 0


def test_without_the_model_queue_the_service_answers_the_same(make_client: MakeClient) -> None:
    body = {"query": QUERIES[0]}
    question = {"question": ANSWERS[0], "generator": "extractive"}
    with make_client() as client:
        queued = client.post("/v1/search", json=body).json()["passages"]
        queued_answer = client.post("/v1/answer", json=question).json()["passages"]
        assert "litrag_embed_calls_total" in client.get("/metrics").text
    with make_client(service={"model_queue": False}) as client:
        direct = client.post("/v1/search", json=body).json()["passages"]
        direct_answer = client.post("/v1/answer", json=question).json()["passages"]
        assert "litrag_embed_calls_total" not in client.get("/metrics").text
    assert [p["chunk_id"] for p in queued] == [p["chunk_id"] for p in direct]
    # the answers' sentences may differ: an int8 model's sentence vectors depend on their batch
    # without the queue, and are each sentence's own with it (service/model_queue.py)
    assert [p["chunk_id"] for p in queued_answer] == [p["chunk_id"] for p in direct_answer]
