"""CT.gov parsers on the real records in ../shared/data/corpus (API v2 JSON, legacy XML)."""

from __future__ import annotations

import copy
import json
from collections import Counter
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from core.errors import ParseError
from core.schemas import Document, SourceType
from ingest.parsers.base import ParseResult, RecordFailure, Source
from ingest.parsers.ctgov import (
    looks_like_ctgov_json,
    looks_like_ctgov_xml,
    parse_ctgov_json,
    parse_ctgov_xml,
)
from ingest.parsers.ctgov.results import MAX_OUTCOME_MEASURES

V2_PAGES = [f"studies-0{i}.json" for i in range(1, 6)]


def _src(path: Path, data: bytes | None = None) -> Source:
    return Source(name=path.name, data=path.read_bytes() if data is None else data)


def _docs(results: list[ParseResult]) -> list[Document]:
    return [r for r in results if isinstance(r, Document)]


def _fails(results: list[ParseResult]) -> list[RecordFailure]:
    return [r for r in results if isinstance(r, RecordFailure)]


def _section(doc: Document, name: str) -> str:
    found = [s for s in doc.sections if s.path == (name,)]
    assert len(found) == 1, f"{doc.doc_id}: {name} sections: {len(found)}"
    assert found[0].kind == "trial-module"
    return found[0].text


@pytest.fixture(scope="module")
def ctgov(corpus: Path) -> Path:
    return corpus / "ctgov"


@pytest.fixture(scope="module")
def legacy(corpus: Path) -> Path:
    return corpus / "ctgov-legacy-xml"


@pytest.fixture(scope="module")
def page1(ctgov: Path) -> dict[str, Any]:
    page: dict[str, Any] = json.loads((ctgov / "studies-01.json").read_bytes())
    return page


@pytest.fixture(scope="module")
def v2_results(ctgov: Path) -> list[ParseResult]:
    out: list[ParseResult] = []
    for name in V2_PAGES:
        out.extend(parse_ctgov_json(_src(ctgov / name)))
    return out


@pytest.fixture(scope="module")
def legacy_docs(legacy: Path) -> dict[str, Document]:
    docs: dict[str, Document] = {}
    for path in sorted(legacy.glob("*.xml")):
        results = list(parse_ctgov_xml(_src(path)))
        assert len(results) == 1
        doc = results[0]
        assert isinstance(doc, Document)
        docs[path.stem] = doc
    return docs


# ---------------------------------------------------------------------------------------------
# API v2: the full record
# ---------------------------------------------------------------------------------------------


def test_full_v2_record_nct04267848(ctgov: Path) -> None:
    results = list(parse_ctgov_json(_src(ctgov / "NCT04267848.json")))
    assert len(results) == 1
    doc = results[0]
    assert isinstance(doc, Document)
    assert doc.doc_id == "nct:NCT04267848"
    assert doc.source_type is SourceType.TRIAL
    assert doc.identifiers.nct_id == "NCT04267848"
    assert doc.identifiers.pmid is None
    assert doc.identifiers.doi is None
    assert doc.title == (
        "Testing the Addition of a Type of Drug Called Immunotherapy to the Usual Chemotherapy "
        "Treatment for Non-small Cell Lung Cancer, an ALCHEMIST Treatment Trial (Chemo-IO [ACCIO])"
    )
    assert doc.year == 2020
    assert doc.pub_date == date(2020, 2, 13)  # studyFirstPostDateStruct
    assert doc.authors == []
    assert doc.journal is None
    assert doc.source_path == "NCT04267848.json"

    trial = doc.trial
    assert trial is not None
    assert trial.nct_id == "NCT04267848"
    assert trial.overall_status == "RECRUITING"
    assert trial.phases == ["PHASE3"]
    assert trial.study_type == "INTERVENTIONAL"
    assert trial.conditions == [
        "Lung Non-Small Cell Carcinoma",
        "Lung Non-Small Cell Squamous Carcinoma",
        "Lung Non-Squamous Non-Small Cell Carcinoma",
        "Stage II Lung Cancer AJCC v8",
        "Stage IIIA Lung Cancer AJCC v8",
        "Stage IIIB Lung Cancer AJCC v8",
    ]
    assert trial.interventions == [
        "Biospecimen Collection",
        "Carboplatin",
        "Cisplatin",
        "Computed Tomography",
        "Echocardiography Test",
        "Gemcitabine Hydrochloride",
        "Magnetic Resonance Imaging",
        "Observation Activity",
        "Paclitaxel",
        "Pembrolizumab",
        "Pemetrexed Disodium",
        "Questionnaire Administration",
    ]
    assert trial.sponsor == "National Cancer Institute (NCI)"
    assert trial.start_date == "2020-06-16"
    assert trial.completion_date == "2025-12-15"
    # The record says "hasResults": false and carries no resultsSection.
    assert trial.has_results is False

    assert [s.path for s in doc.sections] == [
        ("Summary",),
        ("Description",),
        ("Conditions and interventions",),
        ("Design",),
        ("Eligibility",),
        ("Outcomes",),
        ("Status",),
    ]
    summary = _section(doc, "Summary")
    assert summary.startswith(
        "Official title: Integration of Immunotherapy Into Adjuvant Therapy for Resected NSCLC: "
        "ALCHEMIST Chemo-IO (ACCIO)\n\nThis phase III ALCHEMIST treatment trial tests the addition"
    )
    assert _section(doc, "Description").startswith(
        "PRIMARY OBJECTIVE:\n\nI. To compare the disease"
    )
    design = _section(doc, "Design")
    assert design == (
        "Study type: Interventional\nPhase: Phase 3\nAllocation: Randomized\n"
        "Intervention model: Parallel\nPrimary purpose: Treatment\nMasking: None\n"
        "Enrollment: 1210 participants (estimated)"
    )
    conds = _section(doc, "Conditions and interventions")
    assert "Condition MeSH terms: Carcinoma, Non-Small-Cell Lung; Lung Neoplasms" in conds
    assert "- Drug: Paclitaxel (other names: Anzatax, Asotax, Bristaxol, Praxel, Taxol, " in conds
    assert "- Arm A (platinum doublet, observation) (active comparator): INITIAL THERAPY:" in conds
    elig = _section(doc, "Eligibility")
    assert elig.startswith(
        "Sex: All\nMinimum age: 18 Years\nAge groups: Adult, Older adult\n"
        "Accepts healthy volunteers: no\n\nInclusion Criteria:"
    )
    outcomes = _section(doc, "Outcomes")
    assert outcomes.startswith("Primary outcome: Disease free survival (DFS)\nTime frame: From")
    assert outcomes.count("Secondary outcome: ") == 4
    assert outcomes.count("Other outcome: ") == 3
    # v2 markdown escapes are undone: "\\[TPS\\]" in the record reads "[TPS]".
    assert "(tumor proportion score [TPS] ≥ 50% versus [vs] TPS < 50%" in outcomes
    status = _section(doc, "Status")
    assert status == (
        "Overall status: Recruiting\n"
        "Start date: 2020-06-16 (actual)\n"
        "Primary completion date: 2025-12-15 (estimated)\n"
        "Completion date: 2025-12-15 (estimated)\n"
        "First posted: 2020-02-13 (actual)\n"
        "Last update posted: 2025-09-10 (estimated)\n"
        "Lead sponsor: National Cancer Institute (NCI)\n"
        "Overall official: Jacob M Sands, Alliance for Clinical Trials in Oncology "
        "(principal investigator)\n"
        "Locations: 1148 sites in 2 countries (United States, Guam)"
    )
    assert doc.unsupported == {"locations": 1148, "protocol.other_names": 52}
    assert [(r.pmid, r.text[:20]) for r in doc.references] == [("33878954", "Sands JM, Mandrekar ")]


def test_v2_results_section_is_rendered_and_bounded(ctgov: Path) -> None:
    """The real record with a resultsSection added in the API v2 layout (none of the v2 files
    has one): every results module becomes text, and long lists are capped and counted."""
    study = json.loads((ctgov / "NCT04267848.json").read_bytes())
    groups = [
        {"id": "OG000", "title": "Arm B", "description": "Sequential pembrolizumab"},
        {"id": "OG001", "title": "Arm C", "description": "Concurrent pembrolizumab"},
    ]
    measure = {
        "type": "PRIMARY",
        "title": "Disease free survival",
        "timeFrame": "5 years",
        "paramType": "MEDIAN",
        "dispersionType": "95% Confidence Interval",
        "unitOfMeasure": "months",
        "groups": groups,
        "denoms": [
            {
                "units": "Participants",
                "counts": [
                    {"groupId": "OG000", "value": "600"},
                    {"groupId": "OG001", "value": "610"},
                ],
            }
        ],
        "classes": [
            {
                "categories": [
                    {
                        "measurements": [
                            {
                                "groupId": "OG000",
                                "value": "40.1",
                                "lowerLimit": "35.0",
                                "upperLimit": "45.2",
                            },
                            {"groupId": "OG001", "value": "44.3"},
                        ]
                    }
                ]
            }
        ],
        "analyses": [
            {
                "groupIds": ["OG000", "OG001"],
                "pValue": "0.03",
                "statisticalMethod": "Log Rank",
                "paramType": "Hazard Ratio (HR)",
                "paramValue": "0.85",
                "ciPctValue": "95",
                "ciLowerLimit": "0.72",
                "ciUpperLimit": "0.99",
            }
        ],
    }
    study["hasResults"] = True
    study["resultsSection"] = {
        "participantFlowModule": {
            "groups": [{"id": "FG000", "title": "Arm B"}, {"id": "FG001", "title": "Arm C"}],
            "periods": [
                {
                    "title": "Overall Study",
                    "milestones": [
                        {
                            "type": "STARTED",
                            "achievements": [
                                {"groupId": "FG000", "numSubjects": "600"},
                                {"groupId": "FG001", "numSubjects": "610"},
                            ],
                        }
                    ],
                }
            ],
        },
        "outcomeMeasuresModule": {
            "outcomeMeasures": [measure]
            + [
                {**copy.deepcopy(measure), "type": "SECONDARY", "title": f"Measure {i}"}
                for i in range(1, 40)
            ]
        },
        "adverseEventsModule": {
            "eventGroups": [
                {
                    "id": "EG000",
                    "title": "Arm B",
                    "seriousNumAffected": 12,
                    "seriousNumAtRisk": 600,
                }
            ],
            "seriousEvents": [
                {
                    "term": "Pneumonitis",
                    "organSystem": "Respiratory",
                    "stats": [{"groupId": "EG000", "numAffected": 7, "numAtRisk": 600}],
                }
            ],
        },
    }
    results = list(parse_ctgov_json(Source("NCT04267848+results.json", json.dumps(study).encode())))
    doc = results[0]
    assert isinstance(doc, Document)
    assert doc.trial is not None
    assert doc.trial.has_results is True
    assert [s.path[0] for s in doc.sections][-2:] == ["Results", "Status"]
    text = _section(doc, "Results")
    assert "Participant flow\n\nGroups:\n- Arm B\n- Arm C\n\nPeriod: Overall Study\n" in text
    assert "  STARTED: Arm B 600; Arm C 610" in text
    assert (
        "Primary outcome: Disease free survival (median; 95% confidence interval; months)\n"
        "Time frame: 5 years\n"
    ) in text
    assert "Analysed (participants): Arm B 600; Arm C 610" in text
    assert "  Arm B 40.1 [35.0 to 45.2]; Arm C 44.3" in text
    assert (
        "  Analysis (Arm B vs Arm C): p = 0.03; Log Rank; Hazard Ratio (HR) 0.85 "
        "[95% CI 0.72 to 0.99]"
    ) in text
    assert "- Arm B: serious 12/600" in text
    assert "- Pneumonitis (Respiratory): Arm B 7/600" in text
    # 40 outcome measures: the first MAX_OUTCOME_MEASURES are kept, the rest counted.
    assert text.count("Secondary outcome: Measure ") == MAX_OUTCOME_MEASURES - 1
    assert doc.unsupported["results.outcome_measures"] == 40 - MAX_OUTCOME_MEASURES


# ---------------------------------------------------------------------------------------------
# API v2: pages
# ---------------------------------------------------------------------------------------------


def test_mrna_study_in_page_01(v2_results: list[ParseResult]) -> None:
    doc = next(d for d in _docs(v2_results) if d.doc_id == "nct:NCT03739931")
    assert doc.source_path == "studies-01.json"
    assert doc.title == (
        "Dose Escalation Study of mRNA-2752 for Intratumoral Injection to Participants in "
        "Advanced Malignancies"
    )
    assert doc.trial is not None
    assert doc.trial.model_dump() == {
        "nct_id": "NCT03739931",
        "overall_status": "ACTIVE_NOT_RECRUITING",
        "phases": ["PHASE1"],
        "study_type": "INTERVENTIONAL",
        "conditions": [
            "Dose Escalation: Relapsed/Refractory Solid Tumor Malignancies or Lymphoma",
            "Dose Expansion: Triple Negative Breast Cancer, HNSCC, Non-Hodgkins, Urothelial "
            "Cancer, Immune Checkpoint Refractory Melanoma, and NSCLC Lymphoma",
        ],
        "interventions": [],  # the re-shaped extracts carry no armsInterventionsModule
        "sponsor": "ModernaTX, Inc.",
        "start_date": "2018-11-27",
        "completion_date": "2025-12-31",
        "has_results": False,
    }
    assert doc.year == 2018
    assert doc.pub_date is None
    assert [s.path[0] for s in doc.sections] == [
        "Summary",
        "Description",
        "Conditions and interventions",
        "Design",
        "Status",
    ]
    assert _section(doc, "Summary") == (
        "Official title: A Phase 1, Open-Label, Multicenter, Dose Escalation Study of mRNA-2752, "
        "a Lipid Nanoparticle Encapsulating mRNAs Encoding Human OX40L, IL-23, and IL-36\u03b3, "
        "for Intratumoral Injection Alone and in Combination With Immune Checkpoint Blockade\n\n"
        "The clinical study will assess the safety and tolerability of escalating intratumoral "
        "doses of mRNA-2752 in participants with relapsed/refractory solid tumor malignancies or "
        "lymphoma."
    )
    assert _section(doc, "Description").startswith("This is a Phase 1, open-label, multicenter,")
    assert _section(doc, "Design") == "Study type: Interventional\nPhase: Phase 1"
    assert _section(doc, "Status") == (
        "Overall status: Active, not recruiting\nStart date: 2018-11-27\n"
        "Completion date: 2025-12-31\nLead sponsor: ModernaTX, Inc.\nCollaborators: AstraZeneca"
    )


def test_placeholder_description_is_not_a_section(v2_results: list[ParseResult]) -> None:
    doc = next(d for d in _docs(v2_results) if d.doc_id == "nct:NCT00099437")
    # detailedDescription is "No detailed description" in the extract.
    assert "Description" not in [s.path[0] for s in doc.sections]
    assert "No detailed description" not in doc.text()


def test_all_v2_pages_parse(v2_results: list[ParseResult]) -> None:
    docs = _docs(v2_results)
    assert len(v2_results) == 4195
    assert len(docs) == 4195
    assert _fails(v2_results) == []
    assert len({d.doc_id for d in docs}) == 4195
    assert "nct:NCT04267848" not in {d.doc_id for d in docs}  # the full record is extra: 4,196
    assert Counter(d.trial.overall_status for d in docs if d.trial) == {
        "RECRUITING": 2073,
        "ACTIVE_NOT_RECRUITING": 1771,
        "NOT_YET_RECRUITING": 351,
    }
    assert {d.trial.study_type for d in docs if d.trial} == {"INTERVENTIONAL"}
    assert all(d.sections and d.sections[0].path == ("Summary",) for d in docs)


def test_page_study_without_nct_id_is_a_record_failure(page1: dict[str, Any]) -> None:
    page = copy.deepcopy(page1)
    page["studies"] = page["studies"][750:753]
    del page["studies"][1]["protocolSection"]["identificationModule"]["nctId"]
    page["nextPageToken"] = "NF0g5JGBlfM"
    results = list(parse_ctgov_json(Source("page.json", json.dumps(page).encode())))
    assert [d.doc_id for d in _docs(results)] == ["nct:NCT03907852", "nct:NCT03909334"]
    assert _fails(results) == [
        RecordFailure(
            source="page.json",
            record=(
                "study #2 (Clinical Study of Personalized mRNA Vaccine Encoding Neoantigen in "
                "Patients With Advanced Esophageal Cancer and Non-small Cell Lung Cancer)"
            ),
            reason="no nctId",
        )
    ]


def test_malformed_nct_id_and_non_object_records(page1: dict[str, Any]) -> None:
    a, b = copy.deepcopy(page1["studies"][:2])
    a["protocolSection"]["identificationModule"]["nctId"] = "NCT123"
    results = list(parse_ctgov_json(Source("list.json", json.dumps([a, 42, b]).encode())))
    assert [d.doc_id for d in _docs(results)] == ["nct:NCT00099437"]
    fails = _fails(results)
    assert [(f.record, f.reason) for f in fails] == [
        (
            "study #1 (OSI-774/Cisplatin/Taxotere in Head & Neck Squamous Cell Cancer)",
            "no nctId: malformed 'NCT123'",
        ),
        ("study #2", "not a JSON object (got int)"),
    ]


def test_single_study_array_and_page_shapes_agree(ctgov: Path, page1: dict[str, Any]) -> None:
    study = page1["studies"][637]
    shapes = {
        "one.json": study,
        "array.json": [study],
        "page.json": {"studies": [study], "nextPageToken": "x"},
    }
    texts = set()
    for name, value in shapes.items():
        results = list(parse_ctgov_json(Source(name, json.dumps(value, indent=2).encode())))
        assert len(results) == 1, name
        assert isinstance(results[0], Document), name
        texts.add(results[0].content_hash())
    assert len(texts) == 1


def test_json_lines_with_a_garbage_line(page1: dict[str, Any]) -> None:
    lines = [json.dumps(s) for s in page1["studies"][:3]]
    lines[1] = lines[1][: len(lines[1]) // 2]  # line 2 cut in half
    data = ("\n".join(lines) + "\n").encode()
    results = list(parse_ctgov_json(Source("three.jsonl", data)))
    assert [d.doc_id for d in _docs(results)] == ["nct:NCT00076310", "nct:NCT00248287"]
    fails = _fails(results)
    assert len(fails) == 1
    assert fails[0].record == "line 2"
    assert fails[0].reason.startswith("invalid JSON at col ")
    # Also recognised as JSON lines without the .jsonl name.
    same = list(parse_ctgov_json(Source("three.json", data)))
    assert [type(r) for r in same] == [Document, RecordFailure, Document]


def test_truncated_json_raises_parse_error_with_position(ctgov: Path) -> None:
    data = (ctgov / "studies-01.json").read_bytes()[:100_000]
    with pytest.raises(ParseError) as info:
        list(parse_ctgov_json(Source("studies-01.json", data)))
    assert info.value.path == "studies-01.json"
    assert info.value.reason == "invalid JSON at line 1573 col 29: Unterminated string"

    one_line = (ctgov / "NCT04267848.json").read_bytes()[:2000]
    with pytest.raises(ParseError, match=r"invalid JSON at line 1 col 1665: Unterminated string"):
        list(parse_ctgov_json(Source("NCT04267848.json", one_line)))


def test_json_that_is_not_ctgov_raises(corpus: Path) -> None:
    with pytest.raises(ParseError, match=r"not a ClinicalTrials\.gov API v2 study"):
        list(parse_ctgov_json(Source("x.json", b'{"articles": []}')))
    with pytest.raises(ParseError, match="not UTF-8"):
        list(parse_ctgov_json(Source("x.json", b'{"studies": ["\xff"]}')))


# ---------------------------------------------------------------------------------------------
# Legacy XML
# ---------------------------------------------------------------------------------------------


def test_legacy_phase_1_2_record(legacy_docs: dict[str, Document]) -> None:
    doc = legacy_docs["NCT00000102"]
    assert doc.doc_id == "nct:NCT00000102"
    assert doc.title == "Congenital Adrenal Hyperplasia: Calcium Channels as Therapeutic Targets"
    assert doc.trial is not None
    assert doc.trial.model_dump() == {
        "nct_id": "NCT00000102",
        "overall_status": "COMPLETED",
        "phases": ["PHASE1", "PHASE2"],  # <phase>Phase 1/Phase 2</phase>
        "study_type": "INTERVENTIONAL",
        "conditions": ["Congenital Adrenal Hyperplasia"],
        "interventions": ["Nifedipine"],
        "sponsor": "National Center for Research Resources (NCRR)",
        "start_date": None,
        "completion_date": None,
        "has_results": False,
    }
    assert doc.pub_date == date(1999, 11, 4)  # study_first_posted "November 4, 1999"
    assert doc.year == 1999  # no start_date: the year it was first posted
    assert _section(doc, "Summary") == (
        "This study will test the ability of extended release nifedipine (Procardia XL), a blood "
        "pressure medication, to permit a decrease in the dose of glucocorticoid medication "
        "children take to treat congenital adrenal hyperplasia (CAH)."
    )
    assert _section(doc, "Design") == (
        "Study type: Interventional\nPhase: Phase 1, Phase 2\n"
        "Intervention model: Parallel Assignment\nPrimary purpose: Treatment\nMasking: Double"
    )
    assert _section(doc, "Eligibility") == (
        "Sex: All\nMinimum age: 14 Years\nMaximum age: 35 Years\nAccepts healthy volunteers: no"
        "\n\nInclusion Criteria:\n\n"
        "  - diagnosed with Congenital Adrenal Hyperplasia (CAH)\n"
        "  - normal ECG during baseline evaluation\n\n"
        "Exclusion Criteria:\n\n"
        "  - history of liver disease, or elevated liver function tests\n"
        "  - history of cardiovascular disease"
    )


def test_legacy_active_not_recruiting_with_full_dates(legacy_docs: dict[str, Document]) -> None:
    doc = legacy_docs["NCT05382364"]
    assert doc.trial is not None
    assert doc.trial.overall_status == "ACTIVE_NOT_RECRUITING"  # "Active, not recruiting"
    assert doc.trial.phases == ["PHASE1"]
    assert doc.trial.start_date == "2022-06-29"  # "June 29, 2022"
    assert doc.trial.completion_date == "2025-12-29"  # "December 29, 2025"
    assert doc.trial.sponsor == "Merck Sharp & Dohme LLC"
    assert doc.trial.interventions == ["Tucatinib"]
    assert _section(doc, "Status").startswith(
        "Overall status: Active, not recruiting\n"
        "Start date: 2022-06-29 (actual)\n"
        "Primary completion date: 2023-12-29 (estimated)\n"
        "Completion date: 2025-12-29 (estimated)\n"
        "First posted: 2022-05-19 (actual)\n"
    )


def test_legacy_month_year_dates_and_early_phase(legacy_docs: dict[str, Document]) -> None:
    doc = legacy_docs["NCT00460928"]
    assert doc.trial is not None
    assert doc.trial.phases == ["EARLY_PHASE1"]
    assert doc.trial.start_date == "2007-04"  # "April 2007"
    assert doc.trial.completion_date == "2009-06"
    assert doc.year == 2007
    assert "Phase: Early Phase 1" in _section(doc, "Design")


def test_legacy_patient_registry_is_observational(legacy_docs: dict[str, Document]) -> None:
    doc = legacy_docs["NCT05381714"]  # <study_type>Observational [Patient Registry]</study_type>
    assert doc.trial is not None
    assert doc.trial.study_type == "OBSERVATIONAL"
    assert doc.trial.phases == []
    assert _section(doc, "Design").startswith(
        "Study type: Observational (patient registry)\nObservational model: Case-Control"
    )


def test_legacy_record_with_results(legacy_docs: dict[str, Document]) -> None:
    doc = legacy_docs["NCT00000136"]
    assert doc.trial is not None
    assert doc.trial.has_results is True
    assert doc.trial.phases == ["PHASE3"]
    assert doc.trial.interventions == ["Foscarnet", "Ganciclovir"]
    assert doc.trial.start_date == "1990-03"
    assert doc.trial.completion_date == "1991-10"
    assert [s.path[0] for s in doc.sections] == [
        "Summary",
        "Description",
        "Conditions and interventions",
        "Design",
        "Eligibility",
        "Outcomes",
        "Results",
        "Status",
    ]
    text = _section(doc, "Results")
    assert text.startswith("Participant flow\n\nGroups:\n- Foscarnet: The induction dose")
    assert "Period: Overall Study\n  STARTED: Foscarnet 107; Ganciclovir 127\n" in text
    assert "Analysed (participants): Foscarnet 107; Ganciclovir 127; Total 234" in text
    assert "  Female: Foscarnet 9; Ganciclovir 11; Total 20" in text
    assert "Primary outcome: Mortality (number; participants)" in text
    assert "- Foscarnet: serious 60/107, other 0/107" in text
    assert "- Opportunistic Infection (Immune system disorders): Foscarnet 60/107; " in text
    # Group descriptions repeated by every results module are written once.
    assert text.count("The induction dose for foscarnet") == 1
    assert len(doc.references) == 13
    assert doc.references[0].pmid == "1315661"


def test_all_legacy_records_parse(legacy_docs: dict[str, Document]) -> None:
    docs = list(legacy_docs.values())
    assert len(docs) == 465
    assert len({d.doc_id for d in docs}) == 465
    trials = [d.trial for d in docs if d.trial]
    assert Counter(t.overall_status for t in trials) == {
        "COMPLETED": 369,
        "UNKNOWN": 28,
        "TERMINATED": 26,
        "RECRUITING": 24,
        "NOT_YET_RECRUITING": 7,
        "WITHDRAWN": 6,
        "ACTIVE_NOT_RECRUITING": 3,
        "ENROLLING_BY_INVITATION": 1,
        "SUSPENDED": 1,
    }
    assert Counter(tuple(t.phases) for t in trials) == {
        ("PHASE2",): 119,
        (): 99,
        ("NA",): 74,
        ("PHASE1",): 73,
        ("PHASE3",): 63,
        ("PHASE1", "PHASE2"): 18,
        ("PHASE4",): 16,
        ("EARLY_PHASE1",): 2,
        ("PHASE2", "PHASE3"): 1,
    }
    assert Counter(t.study_type for t in trials) == {"INTERVENTIONAL": 366, "OBSERVATIONAL": 99}
    assert sum(t.has_results for t in trials) == 21
    assert all(d.pub_date is not None for d in docs)
    assert all(s.text.strip() for d in docs for s in d.sections)


def test_legacy_without_nct_id_raises(legacy: Path) -> None:
    data = (legacy / "NCT00000102.xml").read_bytes()
    data = data.replace(b"<nct_id>NCT00000102</nct_id>", b"")
    with pytest.raises(ParseError) as info:
        list(parse_ctgov_xml(Source("NCT00000102.xml", data)))
    assert info.value.reason == "no nct_id"


def test_legacy_malformed_xml_raises(legacy: Path) -> None:
    data = (legacy / "NCT00000102.xml").read_bytes()[:2000]
    with pytest.raises(ParseError, match=r"malformed XML: Premature end of data"):
        list(parse_ctgov_xml(Source("NCT00000102.xml", data)))
    with pytest.raises(ParseError, match=r"not a <clinical_study> record \(root <article>\)"):
        list(parse_ctgov_xml(Source("a.xml", b"<article><title>x</title></article>")))


def test_legacy_xml_entities_are_not_resolved(legacy: Path) -> None:
    data = (legacy / "NCT00000102.xml").read_bytes()
    evil = (
        b'<?xml version="1.0"?>\n<!DOCTYPE clinical_study [<!ENTITY xxe SYSTEM '
        b'"file:///etc/passwd">]>\n' + data.replace(b"<brief_title>", b"<brief_title>&xxe;")
    )
    doc = next(parse_ctgov_xml(Source("evil.xml", evil)))
    assert isinstance(doc, Document)
    assert "root:" not in doc.title
    assert "root:" not in doc.text()


def test_same_trial_in_both_formats_gets_one_doc_id(
    legacy_docs: dict[str, Document], v2_results: list[ParseResult]
) -> None:
    v2 = {d.doc_id: d for d in _docs(v2_results)}
    overlap = sorted(set(v2) & {d.doc_id for d in legacy_docs.values()})
    assert overlap == ["nct:NCT05382364", "nct:NCT05482516"]
    old, new = legacy_docs["NCT05482516"].trial, v2["nct:NCT05482516"].trial
    assert old is not None
    assert new is not None
    assert (old.overall_status, old.phases, old.conditions) == (
        new.overall_status,
        new.phases,
        new.conditions,
    )


# ---------------------------------------------------------------------------------------------
# Content sniffing
# ---------------------------------------------------------------------------------------------


def test_sniffing_on_real_heads(corpus: Path, shared_data: Path) -> None:
    def head(path: Path) -> bytes:
        with path.open("rb") as f:
            return f.read(4096)

    v2_full = head(corpus / "ctgov" / "NCT04267848.json")
    v2_page = head(corpus / "ctgov" / "studies-03.json")
    legacy_xml = head(corpus / "ctgov-legacy-xml" / "NCT00000136.xml")
    jats = head(corpus / "jats" / "plos" / "journal.pbio.0020188.xml")
    scifact = head(shared_data / "eval" / "scifact" / "corpus.jsonl")
    pubmed = head(corpus / "pubmed" / "pubmed-29768149.xml")

    assert looks_like_ctgov_json(v2_full)
    assert looks_like_ctgov_json(v2_page)
    assert not looks_like_ctgov_json(legacy_xml)
    assert not looks_like_ctgov_json(scifact)
    assert not looks_like_ctgov_json(jats)

    assert looks_like_ctgov_xml(legacy_xml)
    assert not looks_like_ctgov_xml(v2_full)
    assert not looks_like_ctgov_xml(v2_page)
    assert not looks_like_ctgov_xml(jats)
    assert not looks_like_ctgov_xml(pubmed)
