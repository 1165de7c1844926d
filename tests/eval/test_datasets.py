"""Loaders on the real sets in ../shared/data/eval (exact counts), and TREC run / qrels files."""

from __future__ import annotations

import collections
import json
from pathlib import Path

import pytest

from core.errors import ParseError
from eval import datasets
from eval.datasets import EvalSet
from eval.metrics import Run, ranked
from eval.trec import read_qrels_tsv, read_run, write_run


@pytest.fixture(scope="module")
def eval_dir(shared_data: Path) -> Path:
    return shared_data / "eval"


def _judgments(es: EvalSet) -> int:
    return sum(len(q) for q in es.qrels.values())


def _consistent(es: EvalSet) -> None:
    """Each query has judgments, each judged query is a query, doc ids are unique."""
    assert {q.qid for q in es.queries} == set(es.qrels)
    assert len({q.qid for q in es.queries}) == len(es.queries)
    assert len({d.doc_id for d in es.docs}) == len(es.docs)
    assert all(es.qrels[q.qid] for q in es.queries)


# --- SciFact (BEIR) -------------------------------------------------------------------------


def test_scifact_test_and_train(eval_dir: Path) -> None:
    test = datasets.load_beir(eval_dir / "scifact")
    assert (test.name, test.split) == ("scifact", "test")
    assert len(test.queries) == 300 and _judgments(test) == 339 and len(test.docs) == 5183
    _consistent(test)
    assert test.queries[0].text and test.docs[0].title and test.docs[0].text
    train = datasets.load_beir(eval_dir / "scifact", "train")
    assert len(train.queries) == 809 and _judgments(train) == 919
    assert not {q.qid for q in train.queries} & {q.qid for q in test.queries}
    with pytest.raises(ValueError, match="splits"):
        datasets.load_beir(eval_dir / "scifact", "dev")


def test_load_by_name_dir_and_env(eval_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LITRAG_SHARED_DATA", str(eval_dir.parent))
    by_name = datasets.load("scifact")
    by_dir = datasets.load(eval_dir / "scifact")
    assert by_name.qrels == by_dir.qrels and len(by_name.docs) == 5183
    assert datasets.load("pubmedqa", "train").split == "train"
    with pytest.raises(ValueError, match="no evaluation set"):
        datasets.load("no-such-set")
    monkeypatch.setenv("LITRAG_SHARED_DATA", "/nonexistent")
    with pytest.raises(ValueError, match="no evaluation set"):
        datasets.load("scifact")


# --- PubMedQA -------------------------------------------------------------------------------


def test_pubmedqa_splits(eval_dir: Path) -> None:
    test = datasets.load_pubmedqa(eval_dir / "pubmedqa")
    train = datasets.load_pubmedqa(eval_dir / "pubmedqa", "train")
    for es in (test, train):
        assert len(es.queries) == 500 and _judgments(es) == 500 and len(es.docs) == 1000
        _consistent(es)
        # The one relevant document is the question's own abstract (doc_id = qid = PMID).
        assert all(es.qrels[q.qid] == {q.qid: 1} for q in es.queries)
    assert not {q.qid for q in test.queries} & {q.qid for q in train.queries}
    truth = json.loads((eval_dir / "pubmedqa" / "test_ground_truth.json").read_text())
    assert {q.qid for q in test.queries} == set(truth)
    doc = next(d for d in test.docs if d.doc_id == "21645374")
    assert doc.text.startswith("Programmed cell death (PCD) is the regulated death")
    with pytest.raises(ValueError, match="splits"):
        datasets.load_pubmedqa(eval_dir / "pubmedqa", "dev")


def test_pubmedqa_answers(eval_dir: Path) -> None:
    answers = datasets.pubmedqa_answers(eval_dir / "pubmedqa")
    assert len(answers) == 1000
    assert collections.Counter(answers.values()) == {"yes": 552, "no": 338, "maybe": 110}
    truth = json.loads((eval_dir / "pubmedqa" / "test_ground_truth.json").read_text())
    assert all(answers[pmid] == label for pmid, label in truth.items())


# --- BioASQ ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bioasq(eval_dir: Path) -> EvalSet:
    return datasets.load_bioasq(eval_dir / "bioasq")


def test_bioasq_counts(bioasq: EvalSet) -> None:
    # 2,310 questions (Task 7b-11b), all with >= 1 gold PMID among the 13,449 snippet PMIDs.
    assert (bioasq.name, bioasq.split) == ("bioasq", "test")
    assert len(bioasq.queries) == 2310 and len(bioasq.docs) == 13449 and _judgments(bioasq) == 13808
    _consistent(bioasq)
    doc_ids = {d.doc_id for d in bioasq.docs}
    assert all(pmid in doc_ids for q in bioasq.qrels.values() for pmid in q)
    assert all(d.title == "" and d.text for d in bioasq.docs)
    assert not any("<b>" in d.text or "<AbstractText" in d.text for d in bioasq.docs)


def test_bioasq_snippet_document(bioasq: EvalSet) -> None:
    # 8B1's first question cites PMID 30343431 with this abstract snippet.
    doc = next(d for d in bioasq.docs if d.doc_id == "30343431")
    assert "Irradiation profoundly impacted gut microbiota profiles in both animals." in doc.text
    query = next(q for q in bioasq.queries if q.qid == "5e48e0e0f8b2df0d49000001")
    assert query.text == "Are gut microbiota profiles altered by irradiation?"
    assert bioasq.qrels[query.qid] == {"30430918": 1, "30343431": 1, "30459840": 1}


@pytest.mark.parametrize(
    ("task", "n_queries", "n_judgments"),
    [
        ("7b", 500, 2180),
        ("8b", 500, 2307),
        ("9b", 497, 3575),
        ("10b", 486, 3337),
        ("11b", 327, 2409),
    ],
)
def test_bioasq_year_splits(eval_dir: Path, task: str, n_queries: int, n_judgments: int) -> None:
    es = datasets.load(eval_dir / "bioasq", task)
    assert len(es.queries) == n_queries and _judgments(es) == n_judgments
    assert len(es.docs) == 13449  # one corpus for every split


# --- LitQA2 ---------------------------------------------------------------------------------


def test_litqa2(shared_data: Path, eval_dir: Path) -> None:
    questions = datasets.load_litqa2(eval_dir / "litqa2")
    assert len(questions) == 199 and len({q.qid for q in questions}) == 199
    first = questions[0]
    assert first.qid == "e3b5a4af-41d9-48db-becf-29a08d0ad28e"
    assert first.ideal == "ciproflaxin" and first.dois == ("10.1128/msphere.00109-24",)
    assert first.distractors == ("meropenem", "gentamicin", "ampicillin")
    assert first.key_passage.startswith("A. baumannii readily evolved resistance")
    assert all(q.dois and all(d.startswith("10.") for d in q.dois) for q in questions)

    pdf_dir = shared_data / "corpus" / "pdf"
    with_pdfs = datasets.litqa2_with_pdfs(eval_dir / "litqa2", pdf_dir)
    assert len(with_pdfs) == 31
    assert all(any(datasets.pdf_path_for_doi(d, pdf_dir) for d in q.dois) for q in with_pdfs)


def test_doi_pdf_names(shared_data: Path) -> None:
    name = datasets.pdf_name_for_doi("10.1038/s41467-023-39119-8")
    assert name == "10.1038%2Fs41467-023-39119-8.pdf"
    assert datasets.pdf_name_for_doi("10.1093/nar/gkae069") == "10.1093%2Fnar%2Fgkae069.pdf"
    assert datasets.doi_from_url("http://dx.doi.org/10.1/X") == "10.1/X"
    assert datasets.doi_from_url("https://doi.org/10.7554/eLife.1") == "10.7554/eLife.1"
    pdf_dir = shared_data / "corpus" / "pdf"
    found = datasets.pdf_path_for_doi("10.7554/ELIFE.91357.3", pdf_dir)  # DOIs ignore case
    assert found is not None and found.name == "10.7554%2FeLife.91357.3.pdf"
    assert datasets.pdf_path_for_doi("10.1/none", pdf_dir) is None


# --- TREC files -----------------------------------------------------------------------------


def test_trec_round_trip_with_ties(tmp_path: Path) -> None:
    run: Run = {
        "q2": {"d3": 1.0, "d1": 1.0, "d2": 2.0},  # d1 and d3 tie: d1 first
        "q10": {"x": 0.1 + 0.2, "y": 0.30000000000000004 - 1e-16, "z": -1.5},
        "q1": {"a": 5.0},
    }
    path = tmp_path / "run.trec"
    write_run(path, run, tag="bm25")
    lines = path.read_text().splitlines()
    assert lines[0] == "q1 Q0 a 1 5.0 bm25"
    assert [line.split()[:4] for line in lines if line.startswith("q2 ")] == [
        ["q2", "Q0", "d2", "1"],
        ["q2", "Q0", "d1", "2"],
        ["q2", "Q0", "d3", "3"],
    ]
    back = read_run(path)
    assert back == run  # scores survive exactly (repr), so the order does too
    assert all(ranked(back[q]) == ranked(run[q]) for q in run)

    write_run(path, run, tag="bm25", depth=2)
    assert {q: ranked(r) for q, r in read_run(path).items()} == {
        "q1": ["a"],
        "q10": ["x", "y"],
        "q2": ["d2", "d1"],
    }


def test_trec_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="tag"):
        write_run(tmp_path / "r", {"q": {"d": 1.0}}, tag="two words")
    with pytest.raises(ValueError, match="docid"):
        write_run(tmp_path / "r", {"q": {"d 1": 1.0}}, tag="t")
    bad = tmp_path / "bad.trec"
    bad.write_text("q1 Q0 d1 1 0.5 t\nq1 Q0 d2 2\n")
    with pytest.raises(ParseError, match="line 2"):
        read_run(bad)
    bad.write_text("q1 Q0 d1 1 0.5 t\nq1 Q0 d1 2 0.4 t\n")
    with pytest.raises(ParseError, match="repeated"):
        read_run(bad)


def test_read_qrels_tsv(tmp_path: Path, eval_dir: Path) -> None:
    path = tmp_path / "qrels.tsv"
    path.write_text("query-id\tcorpus-id\tscore\nq1\td1\t2\nq1\td2\t0\nq2\td1\t1\n")
    assert read_qrels_tsv(path) == {"q1": {"d1": 2, "d2": 0}, "q2": {"d1": 1}}
    scifact = read_qrels_tsv(eval_dir / "scifact" / "qrels" / "test.tsv")
    assert len(scifact) == 300 and sum(len(q) for q in scifact.values()) == 339
    path.write_text("query-id\tcorpus-id\tscore\nq1\td1\n")
    with pytest.raises(ParseError, match="expected 3 fields"):
        read_qrels_tsv(path)
