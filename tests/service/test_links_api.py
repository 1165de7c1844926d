"""Trial ↔ paper links in the service, through the real app over a real Edge store built by the
real pipeline: ``/v1/documents`` shows them, a report's trial row lists the trial's publication,
and an answer stating a trial's facts quotes the retrieved results passage of its publication.

Store: PubMed 29768149 (SYGMA 1; its DataBankList names NCT02149199) and the real legacy asthma
trial record NCT00001909 given the number NCT02149199 (the corpus has no real pair,
docs/links.md).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from core.config import Settings
from core.embedding import Embedder
from core.store import open_store
from core.store.links import resolve_links
from service.answer.trial_links import is_results_passage, is_results_path, linked_sentences
from service.app import create_app
from tests.core.test_links_store import SYGMA_NCT, relabelled_trial
from tests.service.conftest import base_settings, build_store

TRIAL = f"nct:{SYGMA_NCT}"
PAPER = "pmid:29768149"
QUESTION = "Which clinical trials tested treatments for mild asthma and what did they find?"


@pytest.fixture(scope="module")
def store_path(tmp_path_factory: pytest.TempPathFactory, corpus: Path, embedder: Embedder) -> Path:
    root = tmp_path_factory.mktemp("links-service")
    trial = root / "trial.xml"
    trial.write_bytes(relabelled_trial(corpus, "NCT00001909", SYGMA_NCT))
    stats = build_store(
        root / "store", embedder, [trial, corpus / "pubmed" / "pubmed-29768149.xml"]
    )
    assert dict(stats.documents) == {"trial": 1, "abstract": 1}
    return root / "store"


@pytest.fixture(scope="module")
def client(store_path: Path) -> Iterator[TestClient]:
    with TestClient(create_app(base_settings(store_path))) as c:
        yield c


def test_linked_sentence_needs_the_link_and_the_retrieved_passage(
    store_path: Path, embedder: Embedder
) -> None:
    """The quote comes from the link, not from relevance: without the link, or without the
    results passage among the hits, there is none. (First in the file: the module's client
    holds the Edge store once opened.)"""
    from core.retrieval import Retriever
    from core.sparse import SparseEncoder
    from core.store import meta_for

    settings: Settings = base_settings(store_path)
    sparse = SparseEncoder(settings.sparse)
    store = open_store(settings.store, meta_for(settings, embedder.name, embedder.dim, sparse.name))
    try:
        hits = Retriever(store, embedder, sparse).search(QUESTION, top_k=10).chunks
        trial = next(h for h in hits if h.chunk.doc_id == TRIAL)
        links = resolve_links(store, [trial.doc])
        (quote,) = linked_sentences(QUESTION, TRIAL, hits, links, embedder, None, set())
        (cited,) = [h for h in hits if h.chunk.chunk_id == quote.chunk_ids[0]]
        assert cited.chunk.doc_id == PAPER and quote.text in cited.chunk.text
        assert linked_sentences(QUESTION, TRIAL, hits, {}, embedder, None, set()) == []
        # the paper's other passages (methods, background) are not its results
        others = [h for h in hits if not (h.chunk.doc_id == PAPER and is_results_passage(h))]
        assert any(h.chunk.doc_id == PAPER for h in others)
        assert linked_sentences(QUESTION, TRIAL, others, links, embedder, None, set()) == []
    finally:
        store.close()


def test_documents_show_links_both_ways(client: TestClient) -> None:
    paper = client.get(f"/v1/documents/{PAPER}").json()
    (to_trial,) = paper["links"]
    assert to_trial["doc_id"] == TRIAL and to_trial["source_type"] == "trial"
    assert to_trial["url"] == f"https://clinicaltrials.gov/study/{SYGMA_NCT}"
    assert to_trial["stated_by"] == ["paper"] and to_trial["paper_relation"] == "registration"
    assert to_trial["where"] == ["paper: DataBankList"] and to_trial["own_publication"] is True
    # what the paper states is stored with it
    assert [m["value"] for m in paper["document"]["links"]] == [SYGMA_NCT]
    trial = client.get(f"/v1/documents/{TRIAL}").json()
    (to_paper,) = trial["links"]
    assert (
        to_paper["doc_id"] == PAPER
        and to_paper["url"] == "https://pubmed.ncbi.nlm.nih.gov/29768149/"
    )
    assert to_paper["title"] == "Inhaled Combined Budesonide-Formoterol as Needed in Mild Asthma."


def test_report_trial_row_lists_its_publication(client: TestClient) -> None:
    body = client.post(
        "/v1/report", json={"question": "Treatments for mild asthma, including clinical trials"}
    ).json()
    assert [t["doc_id"] for t in body["trials"]] == [TRIAL]
    (publication,) = body["trials"][0]["publications"]  # the JSON row carries it too
    assert publication["doc_id"] == PAPER and publication["own_publication"] is True
    assert publication["url"] == "https://pubmed.ncbi.nlm.nih.gov/29768149/"
    table = body["answer"].split("## Relevant clinical trial records")[1].split("## Sources")[0]
    assert "| publications |" in table
    (row,) = [line for line in table.splitlines() if line.startswith(f"| [{SYGMA_NCT}]")]
    assert row.endswith("| [PMID 29768149](https://pubmed.ncbi.nlm.nih.gov/29768149/) |")


def test_answer_quotes_the_trials_results_passage_after_its_facts(client: TestClient) -> None:
    body = client.post("/v1/answer", json={"question": QUESTION}).json()
    by_n = {c["n"]: c for c in body["citations"]}
    sentences = body["verification"]["sentences"]
    facts, linked = sentences[0], sentences[1]
    assert facts["text"].startswith(f"{SYGMA_NCT} is a phase 2 interventional trial")
    assert {by_n[n]["doc_id"] for n in facts["citations"]} == {TRIAL}
    (n,) = linked["citations"]
    assert by_n[n]["doc_id"] == PAPER and "RESULTS" in by_n[n]["section"]
    assert linked["verdict"] == "supported"
    assert by_n[n]["chunk_id"] in {p["chunk_id"] for p in body["passages"]}  # it was retrieved


def test_a_results_passage_is_not_a_methods_outcomes_definition() -> None:
    assert is_results_path(["Results", "Efficacy"])
    assert is_results_path(["Abstract", "METHODS AND RESULTS"])
    assert is_results_path(["Abstract", "CONCLUSIONS"])
    assert not is_results_path(["Methods", "Outcomes"])
    assert not is_results_path(["Study design", "Primary outcome"])
    assert not is_results_path(["Introduction"])
