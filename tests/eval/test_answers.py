"""Answer/citation checks of ``litrag eval answers`` on recorded-shape responses (no service)."""

from __future__ import annotations

import copy
import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import httpx
import pytest

from core.ids import all_urls, source_url
from core.schemas import Identifiers
from eval.answers import (
    INSUFFICIENT,
    AnswerEvalOptions,
    Item,
    check_response,
    export_pubmedqa_medline,
    litqa2_items,
    parse_choice,
    parse_yes_no_maybe,
    pubmedqa_items,
    run_answer_eval,
)

IDS = Identifiers(pmid="21645374")
URL = source_url(IDS)


def _response(generator: str = "extractive", answer: str = "Mitochondria matter [1].") -> dict:  # type: ignore[type-arg]
    passage = {
        "rank": 1,
        "text": "Data are at https://egg2.wustl.edu/roadmap/ for all.",
        "chunk_id": "c1",
        "doc_id": "pmid:21645374",
        "identifiers": IDS.model_dump(),
        "url": URL,
    }
    return {
        "answer": answer,
        "generator": generator,
        "citations": [{"n": 1, "chunk_id": "c1", "doc_id": "pmid:21645374", "url": URL}],
        "sources": [
            {
                "n": 1,
                "doc_id": "pmid:21645374",
                "identifiers": IDS.model_dump(),
                "url": URL,
                "urls": all_urls(IDS),
            }
        ],
        "passages": [passage],
        "verification": {
            "method": "embedding-similarity",
            "sentences": [
                {"index": 0, "supported": True, "kept": True},
                {"index": 1, "supported": False, "kept": True},
                {"index": 2, "supported": False, "kept": False},
            ],
        },
    }


def test_a_clean_response_has_no_fabrication() -> None:
    item = Item(qid="21645374", question="q", pmid="21645374")
    check = check_response(_response(), item)
    assert check["fabricated_citations"] == 0
    assert check["fabricated_urls"] == 0, check["problems"]
    assert (check["kept_sentences"], check["supported_sentences"]) == (2, 1)
    assert check["source_found"] and check["source_retrieved"]
    assert not check_response(_response(), Item(qid="x", question="q", pmid="1"))["source_found"]


def test_a_url_quoted_from_a_passage_is_not_fabricated() -> None:
    resp = _response(answer="Data are at https://egg2.wustl.edu/roadmap/ for all [1].")
    assert check_response(resp)["fabricated_urls"] == 0


def test_fabricated_citations_and_urls_are_counted() -> None:
    resp = _response()
    resp["citations"].append({"n": 2, "chunk_id": "not-retrieved", "doc_id": "x", "url": None})
    resp["citations"].append(
        {"n": 3, "chunk_id": "c1", "doc_id": "pmid:21645374", "url": "https://example.org/p"}
    )
    resp["sources"][0]["urls"] = {"pubmed": "https://pubmed.ncbi.nlm.nih.gov/999/"}
    resp["answer"] += " See https://made.up/paper."
    check = check_response(resp)
    assert check["fabricated_citations"] == 2
    assert check["fabricated_urls"] == 2
    assert len(check["problems"]) == 4


def test_parsers() -> None:
    assert parse_choice("(B) because ...", 4) == "B"
    assert parse_choice("B. The drug", 4) == "B"
    assert parse_choice("The answer is C [1].", 4) == "C"
    assert parse_choice("**(D)** gentamicin", 4) == "D"
    assert parse_choice("A lot of resistance evolved (see [1]).", 4) is None
    assert parse_choice("(E)", 4) is None
    assert parse_yes_no_maybe("Yes, mitochondria ...") == "yes"
    assert parse_yes_no_maybe("The data suggest no effect") == "no"
    assert parse_yes_no_maybe("Unclear.") is None


def test_questions_from_the_real_sets(shared_data: Path) -> None:
    litqa = litqa2_items(only_with_pdf=True, data_dir=shared_data)
    assert len(litqa) == 31
    for item in litqa:
        assert item.doi and item.doi == item.doi.lower()
        assert INSUFFICIENT in item.choices
        assert len(set(item.choices)) == len(item.choices)
    # The shuffle is seeded by question id: the same letters every run.
    assert [i.correct for i in litqa] == [i.correct for i in litqa2_items(data_dir=shared_data)]
    pubmed = pubmedqa_items("test", data_dir=shared_data)
    assert len(pubmed) == 500
    assert {i.correct for i in pubmed} <= {"yes", "no", "maybe"}


def test_pubmedqa_export_is_medline_xml(tmp_path: Path, shared_data: Path) -> None:
    path, n = export_pubmedqa_medline(tmp_path, data_dir=shared_data)
    assert n == 1000
    root = ET.parse(path).getroot()
    assert root.tag == "PubmedArticleSet"
    first = root.find("PubmedArticle/MedlineCitation")
    assert first is not None
    assert first.findtext("PMID") == "21645374"
    labels = [e.get("Label") for e in first.iterfind("Article/Abstract/AbstractText")]
    assert labels == ["BACKGROUND", "RESULTS"]


def test_run_against_a_mock_service(tmp_path: Path, shared_data: Path) -> None:
    asked: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/healthz":
            return httpx.Response(200, json={"status": "ok"})
        body = json.loads(request.content)
        asked.append(body)
        resp = copy.deepcopy(_response(generator="llm"))
        if "Start the answer with yes" in body["question"]:
            resp["answer"] = "Yes. Mitochondria ..."
        return httpx.Response(200, json=resp)

    client = httpx.Client(base_url="http://svc", transport=httpx.MockTransport(handler))
    summary, out = run_answer_eval(
        AnswerEvalOptions(dataset="pubmedqa", url="http://svc", limit=3),
        out_dir=tmp_path / "answers",
        client=client,
    )
    assert summary["questions"] == 3 and summary["errors"] == 0
    assert summary["fabricated_citations"] == 0 and summary["fabricated_urls"] == 0
    assert summary["citation_support_rate"] == pytest.approx(0.5)
    assert summary["accuracy_questions"] == 3
    assert 0.0 <= summary["accuracy"] <= 1.0
    # the first PubMedQA test question is 21645374 with answer "yes", whose abstract we return
    assert summary["source_recall"] == pytest.approx(1 / 3)
    assert len(asked) == 6
    for name in ("summary.json", "summary.md", "per_question.json"):
        assert (out / name).is_file()


def test_compare_verdicts_counts_changes_by_kind(tmp_path: Path) -> None:
    from eval.answers import compare_verdicts

    def run(name: str, verdicts: list[str]) -> Path:
        folder = tmp_path / name
        folder.mkdir()
        rows = [
            {
                "qid": "q1",
                "verdicts": [
                    {"text": f"sentence {i}", "verdict": v} for i, v in enumerate(verdicts)
                ],
            }
        ]
        (folder / "per_question.json").write_text(json.dumps(rows))
        return folder

    v1 = run("v1", ["supported", "supported", "not_supported"])
    v2 = run("v2", ["supported", "contradicted", "supported", "supported"])
    diff = compare_verdicts(v2, v1)
    assert diff["compared_sentences"] == 3
    assert diff["changes"] == {
        "supported -> contradicted": 1,
        "not_supported -> supported": 1,
    }
    assert diff["changed"] == 2 and diff["only_in_this"] == 1 and diff["only_in_other"] == 0


def test_first_attempt_gives_the_numbers_before_regeneration(tmp_path: Path) -> None:
    """One run shows before and after the regeneration: the first attempt's support and its
    answer's choice, next to the response's."""

    def attempts(first_answer: str) -> list[dict[str, Any]]:
        return [
            {"attempt": 1, "llm_requests": 1, "sentences": 4, "supported": 1, "used": False,
             "answer": first_answer, "failing": []},
            {"attempt": 2, "llm_requests": 1, "sentences": 3, "supported": 2, "used": True,
             "answer": "", "failing": []},
        ]  # fmt: skip

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/healthz":
            return httpx.Response(200, json={"status": "ok"})
        body = json.loads(request.content)
        resp = copy.deepcopy(_response(generator="llm"))
        if "Start the answer with yes" in body["question"]:
            resp["answer"] = "Yes. Mitochondria ..."  # the truth of the first question is "yes"
            resp["verification"]["attempts"] = attempts("No, they do not [1].")
        else:
            resp["verification"]["attempts"] = attempts("x")
        return httpx.Response(200, json=resp)

    client = httpx.Client(base_url="http://svc", transport=httpx.MockTransport(handler))
    summary, out = run_answer_eval(
        AnswerEvalOptions(dataset="pubmedqa", url="http://svc", limit=1),
        out_dir=tmp_path / "answers",
        client=client,
    )
    assert summary["citation_support_rate"] == pytest.approx(0.5)  # the response: 1 of 2 kept
    assert (summary["first_attempt_supported"], summary["first_attempt_sentences"]) == (1, 4)
    assert summary["regenerated_answers"] == 1 and summary["llm_requests"] == 2
    assert summary["accuracy"] == 1.0 and summary["accuracy_first_attempt"] == 0.0
    assert "before regeneration" in (out / "summary.md").read_text(encoding="utf-8")
    lines = (out / "responses.jsonl").read_text(encoding="utf-8").splitlines()
    assert [json.loads(x)["kind"] for x in lines] == ["answer", "accuracy"]
