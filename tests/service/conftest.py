"""Service fixtures: one real Qdrant Edge store built by the real ingestion pipeline from real
sample files (once per session), clients over the real HTTP stack, and a stub LLM server.

Qdrant Edge is single-process and its folder is locked while open: the ingest closes the store,
and only one ``make_client`` client may be open at a time.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from core.config import (
    AnswerSettings,
    LLMSettings,
    ServiceSettings,
    Settings,
    StoreSettings,
)
from core.ids import all_urls, source_url
from core.schemas import Identifiers
from core.sparse import SparseEncoder
from core.store import VectorStore, meta_for, open_store
from ingest.pipeline import Pipeline
from ingest.stats import IngestStats, ReportEntry
from service.app import create_app
from tests.conftest import SAMPLES
from tests.service.stub_llm import StubLLM

TRIALS_FILE = SAMPLES / "ctgov" / "mrna-trials.json"
CORPUS = [
    TRIALS_FILE,
    SAMPLES / "pubmed" / "pubmed-29768149.xml",
    # the two smallest sample articles (by chunks)
    SAMPLES / "jats" / "journal.pcbi.1004113.xml",
    SAMPLES / "jats" / "journal.pgen.1000052.xml",
]

MakeClient = Callable[..., AbstractContextManager[TestClient]]


def base_settings(store_path: Path) -> Settings:
    """Defaults for every section the service reads, independent of LITRAG_* variables."""
    return Settings(
        store=StoreSettings(backend="edge", path=store_path),
        llm=LLMSettings(),
        answer=AnswerSettings(),
        service=ServiceSettings(),
    )


def with_overrides(settings: Settings, **sections: dict[str, Any]) -> Settings:
    """``settings`` with some fields of some sections replaced (validated)."""
    update = {}
    for name, fields in sections.items():
        section = getattr(settings, name)
        update[name] = type(section).model_validate({**section.model_dump(), **fields})
    return settings.model_copy(update=update)


def build_store(path: Path, embedder: Any, files: list[Path]) -> IngestStats:
    """Ingest ``files`` into a new Edge store at ``path`` with the real pipeline (closed after);
    every file must go in without a failure or a skip."""
    settings = base_settings(path)
    sparse = SparseEncoder(settings.sparse)
    store = open_store(settings.store, meta_for(settings, embedder.name, embedder.dim, sparse.name))
    entries: list[ReportEntry] = []
    try:
        stats = Pipeline(settings, store, embedder, sparse, on_report=entries.append).run(files)
        store.optimize()
        assert store.count() == stats.chunks
    finally:
        store.close()
    assert not entries, entries
    return stats


def stored_points(store: VectorStore) -> dict[str, str]:
    """Every stored point: id -> content hash of its document."""
    return {p.point_id: str(p.payload["content_hash"]) for p in store.iter_points()}


def clean_ingest_points(
    source: Path, dest: Path, embedder: Any, files: list[Path]
) -> dict[str, str]:
    """The store at ``source`` copied to ``dest`` with ``files`` ingested into it by the real
    pipeline in one clean run: what a job over these files must leave (:func:`stored_points`)."""
    shutil.copytree(source, dest)
    settings = base_settings(dest)
    sparse = SparseEncoder(settings.sparse)
    store = open_store(settings.store, meta_for(settings, embedder.name, embedder.dim, sparse.name))
    try:
        Pipeline(settings, store, embedder, sparse).run(files)
        return stored_points(store)
    finally:
        store.close()


@pytest.fixture(scope="session")
def ingested(tmp_path_factory: pytest.TempPathFactory, embedder) -> tuple[Path, IngestStats]:  # type: ignore[no-untyped-def]
    """An Edge store folder holding the sample corpus, written by the real pipeline (closed)."""
    path = tmp_path_factory.mktemp("service-store")
    stats = build_store(path, embedder, CORPUS)
    assert dict(stats.documents) == {"trial": 120, "abstract": 1, "article": 2}
    return path, stats


@pytest.fixture(scope="session")
def store_path(ingested: tuple[Path, IngestStats]) -> Path:
    """Folder of the session store."""
    return ingested[0]


@pytest.fixture
def make_client(store_path: Path) -> MakeClient:
    """``with make_client(llm={...}, service={...}) as client:`` — a TestClient whose lifespan
    opens (and on exit closes) the session store with those settings overrides."""
    opened: list[TestClient] = []

    @contextmanager
    def make(**overrides: dict[str, Any]) -> Iterator[TestClient]:
        assert not opened, "only one client may hold the Edge store at a time"
        settings = with_overrides(base_settings(store_path), **overrides)
        with TestClient(create_app(settings)) as client:
            opened.append(client)
            try:
                yield client
            finally:
                opened.remove(client)

    return make


@pytest.fixture(scope="session")
def stub_server() -> Iterator[StubLLM]:
    """The scripted OpenAI-compatible server (one per session)."""
    server = StubLLM().start()
    yield server
    server.stop()


@pytest.fixture
def stub_llm(stub_server: StubLLM) -> StubLLM:
    """The stub server, reset to mode "cite-ok" with no recorded requests."""
    stub_server.reset()
    return stub_server


def parse_sse(text: str) -> list[tuple[str, dict[str, Any]]]:
    """``(event, data)`` pairs of a text/event-stream body."""
    events: list[tuple[str, dict[str, Any]]] = []
    for block in text.split("\n\n"):
        if not block.strip():
            continue
        name, data = "message", []
        for line in block.split("\n"):
            if line.startswith("event: "):
                name = line[len("event: ") :]
            elif line.startswith("data: "):
                data.append(line[len("data: ") :])
        events.append((name, json.loads("\n".join(data))))
    return events


MARKER = re.compile(r"\[(\d+)\]")
VERDICT_MARK = re.compile(r" \(⚠ (contradicted|not supported)(?: by \[(\d+)\])?\)")


def assert_tied(resp: dict[str, Any], text: str | None = None) -> None:
    """Every [n] is a citation, every citation a returned passage, sources = cited documents;
    every kept sentence that is not supported carries its verdict mark, a supported one none."""
    text = resp["answer"] if text is None else text
    cites = resp["citations"]
    assert [c["n"] for c in cites] == list(range(1, len(cites) + 1))
    used = {int(n) for n in MARKER.findall(text)}
    assert used <= set(range(1, len(cites) + 1)), (sorted(used), len(cites), text)
    assert used == {c["n"] for c in cites}, "a citation that the text never uses"
    checks = resp["verification"]["sentences"]
    assert all(s["supported"] == (s["verdict"] == "supported") for s in checks)
    kept = [s for s in checks if s["kept"]]
    # "(⚠ contradicted by [n])": n is the cited chunk whose passage decided the verdict
    marks = VERDICT_MARK.findall(text)
    flagged = [s for s in kept if s["verdict"] != "supported"]
    assert len(marks) == len(flagged), (marks, text)
    for (word, n), s in zip(marks, flagged, strict=True):
        assert word == s["verdict"].replace("_", " ")
        decided = (s["quote"] or {}).get("citation")
        assert (int(n) if n else None) == decided and (decided is None or decided in s["citations"])
    # no other [n] than the markers of the kept sentences' citations (no copied source markers)
    plain = VERDICT_MARK.sub("", text)
    assert len(MARKER.findall(plain)) == sum(len(s["citations"]) for s in kept), text
    by_id = {p["chunk_id"]: p for p in resp["passages"]}
    for c in cites:
        p = by_id[c["chunk_id"]]  # only retrieved chunks are cited
        assert c["doc_id"] == p["doc_id"]
        assert c["url"] == source_url(Identifiers(**p["identifiers"]))
        assert p["text"][c["quote"]["start"] : c["quote"]["end"]] == c["quote"]["text"]
    assert {s["doc_id"] for s in resp["sources"]} == {c["doc_id"] for c in cites}
    for s in resp["sources"]:
        ids = Identifiers(**s["identifiers"])
        assert s["url"] == source_url(ids) and s["urls"] == all_urls(ids)


#: the question the LLM-path tests ask (one sample trial answers it), with few passages
LLM_QUESTION = (
    "What will Part 3 of the mRNA-3927 study evaluate in infants with propionic acidemia?"
)
LLM_TOP_K = 4


def llm_settings(stub: StubLLM, **fields: Any) -> dict[str, Any]:
    """``llm`` settings pointing at the stub server (no client retries)."""
    return {"base_url": stub.base_url, "model": "stub-model", "max_retries": 0, **fields}


def ask_llm_question(client: TestClient, **body: Any) -> dict[str, Any]:
    """POST /v1/answer with ``LLM_QUESTION``; the response body (asserted 200)."""
    r = client.post("/v1/answer", json={"question": LLM_QUESTION, "top_k": LLM_TOP_K, **body})
    assert r.status_code == 200, r.text
    data: dict[str, Any] = r.json()
    return data
