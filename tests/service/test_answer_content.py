"""Extractive answers that answer: the gap statement, trial facts sentences and report sections
without evidence — over the real pipeline on the sample corpus (Edge store, real embedder and
verifier)."""

from __future__ import annotations

import json
import re
from typing import Any

from core.schemas import ScoredChunk
from service.answer.gaps import claim_of, find_gap, identity_terms
from service.answer.plan import excluded_scope
from tests.service.conftest import TRIALS_FILE, MakeClient, assert_tied


def _answer(make_client: MakeClient, question: str, **body: Any) -> dict[str, Any]:
    with make_client() as client:
        resp = client.post("/v1/answer", json={"question": question, **body})
    assert resp.status_code == 200, resp.text
    data: dict[str, Any] = resp.json()
    # a report's text also holds its numbered Sources list: the sections are what cites
    sections = data["sections"]
    assert_tied(data, None if sections is None else " ".join(s["text"] for s in sections))
    return data


def _record(nct_id: str) -> dict[str, Any]:
    for s in json.loads(TRIALS_FILE.read_text())["studies"]:
        if s["protocolSection"]["identificationModule"]["nctId"] == nct_id:
            return dict(s["protocolSection"])
    raise AssertionError(nct_id)


def test_claim_and_identity_terms_of_questions() -> None:
    assert claim_of("Does mRNA-4157 target PD-L1?") == "mRNA-4157 targets PD-L1"
    assert claim_of("Do LNPs accumulate in the liver?") == "LNPs accumulate in the liver"
    assert claim_of("Can mRNA-3927 treat propionic acidemia?") == (
        "mRNA-3927 can treat propionic acidemia"
    )
    # no guess at where a lower-case subject ends
    assert claim_of("Does the vaccine induce T cells?") is None
    assert claim_of("Which mRNA therapy is approved for SMA?") is None
    # negated scope is not what the answer must be about
    assert identity_terms("mRNA vaccines beyond COVID-19 in HIV") == ["mRNA", "HIV"]
    assert identity_terms("Is it better in IVF--is it age or FSH?") == ["IVF", "FSH"]
    assert identity_terms("Is a 2nd dose of BNT162b2 needed?") == ["BNT162b2"]
    assert excluded_scope("mRNA vaccines beyond COVID-19?") == ["COVID-19"]
    assert excluded_scope("vaccines other than influenza vaccines") == ["influenza"]
    assert excluded_scope("apart from SARS CoV-2 infection") == ["SARS CoV-2"]


def test_answer_says_what_no_passage_states_then_what_they_say(make_client: MakeClient) -> None:
    data = _answer(make_client, "Does mRNA-4157 target PD-L1?")
    answer = data["answer"]
    assert answer.startswith("No retrieved passage states that mRNA-4157 targets PD-L1.")
    # the rest is about the subject: the intismeran autogene (mRNA-4157) trial, cited
    rest = answer.split(".", 1)[1]
    assert "intismeran" in rest.lower() and re.search(r"\[\d+\]", rest)
    checks = data["verification"]["sentences"]
    assert checks[0]["citations"] == [] and checks[0]["supported"]
    assert all(c["supported"] for c in checks)
    # no sentence claims the PD-L1 target
    assert not any("mRNA-4157" in c["text"] and "PD-L1" in c["text"] for c in checks[1:])


def test_answer_without_a_gap_has_no_statement(make_client: MakeClient) -> None:
    data = _answer(make_client, "Is mRNA-3927 tested in propionic acidemia?")
    assert "No retrieved passage" not in data["answer"]
    assert "mRNA-3927" in data["answer"]


def test_gap_is_decided_by_the_verifier_when_the_terms_co_occur() -> None:
    # both terms in one passage: whether it *states* the claim is the verifier's call
    hit = _fake_hit("mRNA-4157 was given with pembrolizumab, an anti-PD-L1 antibody.")
    calls: list[str] = []

    def never(claim: str, passages: Any) -> bool:
        calls.append(claim)
        return False

    gap = find_gap("Does mRNA-4157 target PD-L1?", [hit], never)
    assert calls == ["mRNA-4157 targets PD-L1"]
    assert gap is not None and gap.statement.startswith("No retrieved passage states that")
    assert find_gap("Does mRNA-4157 target PD-L1?", [hit], lambda c, p: True) is None
    # terms no passage mentions are named as such, not as a missing combination
    gap = find_gap("Which of BNT111 and PD-L1 or CF101 binds A2AAR?", [hit], never)
    assert gap is not None
    assert gap.statement == "No retrieved passage mentions “BNT111”, “CF101” or “A2AAR”."


def _fake_hit(text: str) -> ScoredChunk:
    # a passage as the store returns it, for the pure function above (no store involved)
    return ScoredChunk.model_validate(
        {
            "chunk": {
                "chunk_id": "c1",
                "doc_id": "d1",
                "ordinal": 0,
                "text": text,
                "header": "A trial",
                "section_path": ["Summary"],
                "char_start": 0,
                "char_end": len(text),
            },
            "doc": {
                "doc_id": "d1",
                "source_type": "trial",
                "title": "A trial",
                "content_hash": "0",
                "n_chunks": 1,
            },
            "score": 1.0,
        }
    )


def test_trial_facts_sentence_copies_the_record_and_is_verified(make_client: MakeClient) -> None:
    data = _answer(make_client, "Which trials test mRNA-3927 in propionic acidemia?")
    facts = [
        c for c in data["verification"]["sentences"] if re.match(r"NCT\d{8} is an? ", c["text"])
    ]
    assert facts, data["answer"]
    assert "record-fields" in data["verification"]["method"]
    for check in facts:
        assert check["supported"], check
        nct = check["text"][:11]
        rec = _record(nct)
        phases = rec["designModule"]["phases"]
        for p in phases:
            assert f"phase {p[-1]}" in check["text"]
        status = rec["statusModule"]["overallStatus"].replace("_", " ").lower()
        assert status.replace("active not", "active, not") in check["text"]
        for cond in rec["conditionsModule"]["conditions"][:3]:
            assert cond in check["text"]
        # cited passages are the record's own, and retrieved
        cited = [data["citations"][n - 1] for n in check["citations"]]
        assert cited and {c["url"] for c in cited} == {f"https://clinicaltrials.gov/study/{nct}"}
        passage_ids = {p["chunk_id"] for p in data["passages"]}
        assert {c["chunk_id"] for c in cited} <= passage_ids


def test_report_section_without_evidence_says_so(make_client: MakeClient) -> None:
    # a facet the sample corpus (mRNA trials, two articles, one abstract) has nothing on
    question = (
        "What is known about mRNA vaccine technology? Cover cancer treatment and "
        "orthopaedic hip fracture surgery."
    )
    data = _answer(make_client, question, mode="report")
    by_title = {s["title"]: s for s in data["sections"]}
    hip = by_title["Orthopaedic hip fracture surgery"]
    assert not hip["evidence"]
    assert hip["text"] == "No retrieved evidence on orthopaedic hip fracture surgery."
    assert by_title["Cancer treatment"]["evidence"]
    assert (
        "## Not covered by the indexed corpus\n\n- Orthopaedic hip fracture surgery"
        in (data["answer"])
    )
    # no sentence of the answer belongs to the uncovered section
    assert not any(
        c["section"] == "Orthopaedic hip fracture surgery"
        for c in data["verification"]["sentences"]
    )
