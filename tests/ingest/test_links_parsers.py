"""What the parsers read as links, on real files of ../shared/data/corpus: a paper's NCT numbers
(with where and how it names them) and a trial's reference PMIDs/DOIs (with their type)."""

from __future__ import annotations

import gzip
import re
from pathlib import Path

from core.ids import find_ncts
from core.schemas import Document, DocumentMeta
from ingest.parsers.base import Source
from ingest.parsers.ctgov import parse_ctgov_json, parse_ctgov_xml
from ingest.parsers.jats import parse_jats
from ingest.parsers.links import REGISTRATION_TITLE, nct_mentions
from ingest.parsers.medline import parse_medline


def _docs(parser, path: Path) -> list[Document]:  # type: ignore[no-untyped-def]
    return [d for d in parser(Source(str(path), path.read_bytes())) if isinstance(d, Document)]


def _links(doc: Document) -> list[tuple[str, str, str, str]]:
    return [(m.value, m.relation, m.source, m.where) for m in doc.links]


def test_find_ncts_normalises_and_deduplicates() -> None:
    text = (
        "ClinicalTrials.govNCT01844362; see nct00000102 and NCT 01234567 (again NCT01844362); "
        "not NCT012345678, not distinct 12345678, not ANCT0000000"
    )
    assert find_ncts(text) == ["NCT01844362", "NCT00000102", "NCT01234567"]


def test_registration_statement_next_to_the_number() -> None:
    said = nct_mentions(
        "Methods follow. The trial was registered at ClinicalTrials.gov (NCT00843570). A "
        "follow-up study is ongoing (NCT01156909).",
        source="jats-text",
        where="Methods",
    )
    assert [(m.value, m.relation) for m in said] == [
        ("NCT00843570", "registration"),
        ("NCT01156909", "mention"),
    ]


def test_jats_abstract_discussion_front_matter_and_references(corpus: Path) -> None:
    plos = corpus / "jats" / "plos"
    (rituximab,) = _docs(parse_jats, plos / "journal.pone.0026358.xml")
    # its own trial in the abstract; two follow-up trials it only discusses
    assert _links(rituximab) == [
        ("NCT00848692", "registration", "jats-text", "Abstract > Methods and Findings"),
        ("NCT01156909", "mention", "jats-text", "Discussion"),
        ("NCT01156922", "mention", "jats-text", "Discussion"),
    ]
    # a methods paper funded by the trial (the funding statement, not indexed text)
    (funded,) = _docs(parse_jats, plos / "journal.pone.0119074.xml")
    assert _links(funded) == [("NCT01249625", "mention", "jats-text", "Front matter")]
    # a registry record in the reference list (text and link target): a citation
    (citing,) = _docs(parse_jats, plos / "journal.pone.0138823.xml")
    assert _links(citing) == [("NCT01027598", "cites", "jats-text", "References")]
    # every NCT number of the files is found
    for path, doc in ((plos / "journal.pone.0026358.xml", rituximab),):
        assert {m.value for m in doc.links} == set(re.findall(r"NCT\d{8}", path.read_text()))


def test_medline_databank_and_abstract(corpus: Path) -> None:
    (sygma,) = _docs(parse_medline, corpus / "pubmed" / "pubmed-29768149.xml")
    # named in DataBankList and in the abstract: one mention, the curated source kept
    assert _links(sygma) == [("NCT02149199", "registration", "medline-databank", "DataBankList")]
    path = corpus / "pubmed" / "medline16n0902.xml.gz"
    docs = _docs(parse_medline, path)
    found = {(d.doc_id, m.value): m for d in docs for m in d.links}
    # every NCT number of the file, no PDB accession number, all read as the citation's own
    assert {v for _, v in found} == set(
        re.findall(r"NCT\d{8}", gzip.decompress(path.read_bytes()).decode())
    )
    assert len(found) == 10 and {m.relation for m in found.values()} == {"registration"}
    sources = {(m.value, m.source) for m in found.values()}
    assert ("NCT00585195", "medline-databank") in sources
    # glued to "ClinicalTrials.gov" in a registration-labelled abstract part
    assert ("NCT01844362", "medline-databank") in sources
    assert ("NCT02109003", "medline-abstract") in sources  # no DataBankList entry
    (unlabelled,) = [m for m in found.values() if m.value == "NCT01184170"]
    assert unlabelled.where == "Abstract" and unlabelled.source == "medline-abstract"


def test_ctgov_v2_and_legacy_references_keep_their_type(corpus: Path) -> None:
    (v2,) = _docs(parse_ctgov_json, corpus / "ctgov" / "NCT04267848.json")
    assert [(m.kind, m.value, m.relation, m.source) for m in v2.links] == [
        ("pmid", "33878954", "DERIVED", "ctgov-references"),
        ("doi", "10.2217/imt-2021-0019", "DERIVED", "ctgov-references"),
    ]
    legacy = corpus / "ctgov-legacy-xml"
    (results,) = _docs(parse_ctgov_xml, legacy / "NCT00739791.xml")
    assert [(m.kind, m.value, m.relation) for m in results.links] == [
        ("pmid", "18799354", "RESULT"),
        ("doi", "10.1016/s1470-2045(08)70234-1", "RESULT"),
    ]
    assert {m.source for m in results.links} == {"ctgov-legacy-references"}
    (background,) = _docs(parse_ctgov_xml, legacy / "NCT05482711.xml")
    assert len(background.links) > 30 and {m.relation for m in background.links} == {"BACKGROUND"}
    # BACKGROUND references are not stored with every chunk: they are never resolved
    assert DocumentMeta.of(background, 1).links == []
    assert DocumentMeta.of(results, 1).links == results.links


def test_links_do_not_change_the_content_hash(corpus: Path) -> None:
    """A store written before links existed holds the same content hash, so a reingest sees the
    document as unchanged (and rewrites only its links, see test_links_pipeline)."""
    (sygma,) = _docs(parse_medline, corpus / "pubmed" / "pubmed-29768149.xml")
    assert sygma.links
    assert sygma.model_copy(update={"links": []}).content_hash() == sygma.content_hash()


def test_a_registration_statement_belongs_to_its_own_numbers_only() -> None:
    """Another trial named in the sentence before the statement, a negated statement, and a
    list of numbers that one statement covers."""

    def relations(text: str) -> list[tuple[str, str]]:
        return [(m.value, m.relation) for m in nct_mentions(text, source="jats-text", where="x")]

    assert relations(
        "We compared with the SPRINT trial (NCT01206062). This study was registered at "
        "ClinicalTrials.gov (NCT02149199)."
    ) == [("NCT01206062", "mention"), ("NCT02149199", "registration")]
    assert relations(
        "This study was registered at ClinicalTrials.gov (NCT02149199), extending the SPRINT "
        "trial (NCT01206062)."
    ) == [("NCT02149199", "registration"), ("NCT01206062", "mention")]
    assert relations("Unlike NCT01206062, which was not registered prospectively, ours was.") == [
        ("NCT01206062", "mention")
    ]
    assert relations(
        "The trial was registered at ClinicalTrials.gov (NCT01156909 and NCT01156922)."
    ) == [("NCT01156909", "registration"), ("NCT01156922", "registration")]
    assert relations("NCT00843570. Registered at www.clinicaltrials.gov.") == [
        ("NCT00843570", "registration")
    ]


def test_a_registry_section_title_is_not_a_registration() -> None:
    for title in ("Trial registration", "Registration number", "Clinical trial registry"):
        assert REGISTRATION_TITLE.search(title), title
    for title in ("Comparison with registry data", "Cancer registry", "Results"):
        assert not REGISTRATION_TITLE.search(title), title
