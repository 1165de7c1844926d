"""Reading a report written elsewhere: claims, skipped pieces, citation markers and identifiers
(pure functions; the store is not needed)."""

from __future__ import annotations

from pathlib import Path

from service.check.parse import find_ids, parse_report, take_markers

SEED = Path("/work/shared/seeds/ai-report-mrna-beyond-covid.md")

REPORT = """# A report

**Generated:** 2025-11-02

## Findings

Budesonide-formoterol reduced severe exacerbations in mild asthma [1]. Did it work?
These include:

* **Safety**: the regimen was well tolerated in adolescents and adults (2).
* short item

| a | b |
|---|---|
| 1 | 2 |

See also PMID: 29768149 and https://doi.org/10.1056/NEJMoa1715274 for details on this trial.
Two (2) doses were given in the first arm of the study.

## References

1. The SYGMA 1 trial. https://clinicaltrials.gov/study/NCT02149199
2. [An abstract](https://pubmed.ncbi.nlm.nih.gov/29768149/)
"""


def test_claims_skip_headings_questions_metadata_lead_ins_tables_and_fragments() -> None:
    parsed = parse_report(REPORT)
    texts = [c.text for c in parsed.claims]
    assert texts[0] == "Budesonide-formoterol reduced severe exacerbations in mild asthma [1]."
    assert parsed.claims[0].query == (
        "Budesonide-formoterol reduced severe exacerbations in mild asthma."
    )
    reasons = {s.text: s.reason for s in parsed.skipped}
    assert reasons["A report"] == "heading"
    assert reasons["Findings"] == "heading"
    assert reasons["Generated: 2025-11-02"] == "metadata line"
    assert reasons["Did it work?"] == "question"
    assert reasons["These include:"].startswith("lead-in")
    assert reasons["short item"].startswith("fewer than")
    assert reasons["table"] == "table"
    assert not any("?" in t or t in ("Findings", "References") for t in texts)
    # the reference list is not read as claims
    assert not any("SYGMA" in t for t in texts)


def test_references_and_markers() -> None:
    parsed = parse_report(REPORT)
    refs = {e.label: e for e in parsed.references}
    assert set(refs) == {"1", "2"}
    assert [(w.kind, w.value, w.written) for w in refs["1"].ids] == [
        ("nct", "NCT02149199", "NCT02149199")
    ]
    assert [(w.kind, w.value) for w in refs["2"].ids] == [("pmid", "29768149")]
    by_text = {c.text: c for c in parsed.claims}
    safety = next(c for t, c in by_text.items() if t.startswith("Safety"))
    assert safety.labels == ["2"]  # "(2)" names an entry of the list
    doses = next(c for t, c in by_text.items() if t.startswith("Two"))
    assert doses.labels == [] and "(2)" in doses.query  # "(2) doses" is not a marker
    see = next(c for t, c in by_text.items() if t.startswith("See also"))
    assert {(w.kind, w.value) for w in see.ids} == {
        ("pmid", "29768149"),
        ("doi", "10.1056/nejmoa1715274"),
    }
    assert "https://" not in see.query


def test_markers_ranges_and_footnotes() -> None:
    assert take_markers("A claim [1-3], [5].", set()) == ("A claim.", ["1", "2", "3", "5"])
    assert take_markers("A claim[^note].", set()) == ("A claim.", ["note"])
    assert take_markers("Dose given (1); then (2) more.", {"1", "2"}) == (
        "Dose given; then (2) more.",
        ["1"],
    )


def test_identifiers_as_written() -> None:
    ids = find_ids("nct04267848, PMC3531190, doi:10.1371/journal.pone.0100977. www.example.org/x")
    assert [(w.kind, w.value) for w in ids] == [
        ("url", "www.example.org/x"),
        ("nct", "NCT04267848"),
        ("pmcid", "PMC3531190"),
        ("doi", "10.1371/journal.pone.0100977"),
    ]
    assert ids[1].written == "nct04267848"


def test_seed_report_reads_as_claims_and_five_references() -> None:
    parsed = parse_report(SEED.read_text())
    pd_l1 = [c for c in parsed.claims if "mRNA-4157" in c.text]
    assert len(pd_l1) == 1 and pd_l1[0].labels == ["1"]
    assert [e.label for e in parsed.references] == ["1", "2", "3", "4", "5"]
    assert [w.kind for w in parsed.references[4].ids] == ["nct"]
    assert all(not c.text.startswith(("Generated", "Query")) for c in parsed.claims)


def test_markers_after_the_full_stop_cite_the_sentence_before() -> None:
    parsed = parse_report("A first claim about asthma therapy. [2] A second claim about asthma.\n")
    assert [(c.text, c.labels) for c in parsed.claims] == [
        ("A first claim about asthma therapy. [2]", ["2"]),
        ("A second claim about asthma.", []),
    ]
