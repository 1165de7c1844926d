"""MEDLINE / PubMed XML parser on the real files in corpus/pubmed."""

from __future__ import annotations

import gzip
from datetime import date
from pathlib import Path

import pytest

from core.errors import ParseError
from core.schemas import Document, SourceType
from ingest.parsers.base import ParseResult, RecordFailure, Source
from ingest.parsers.medline import looks_like_medline, parse_medline


@pytest.fixture(scope="module")
def pubmed(corpus: Path) -> Path:
    return corpus / "pubmed"


def _source(path: Path) -> Source:
    return Source(path.name, path.read_bytes())


def _docs(results: list[ParseResult]) -> list[Document]:
    return [r for r in results if isinstance(r, Document)]


@pytest.fixture(scope="module")
def medline16(pubmed: Path) -> list[ParseResult]:
    return list(parse_medline(_source(pubmed / "medline16n0902.xml.gz")))


def test_medline16_counts(medline16: list[ParseResult]) -> None:
    # The data README says 604 citations, 526 with an abstract: both hold.
    assert not [r for r in medline16 if isinstance(r, RecordFailure)]
    docs = _docs(medline16)
    assert len(docs) == 604
    assert len({d.doc_id for d in docs}) == 604
    with_abstract = [d for d in docs if "no_abstract" not in d.unsupported]
    assert len(with_abstract) == 526
    assert all(d.source_type is SourceType.ABSTRACT for d in docs)
    assert all(d.doc_id == f"pmid:{d.identifiers.pmid}" for d in docs)
    assert sum(1 for d in docs if d.identifiers.doi) == 579
    assert sum(1 for d in docs if d.identifiers.pmcid) == 368  # from OtherID Source="NLM"
    assert sum(d.unsupported.get("OtherAbstract", 0) for d in docs) == 21


def test_medline16_first_citation_labelled_abstract(medline16: list[ParseResult]) -> None:
    doc = _docs(medline16)[0]
    assert doc.doc_id == "pmid:17942999"
    assert doc.title == (
        "Neuroplasticity in the processing of pitch dimensions: a multidimensional scaling "
        "analysis of the mismatch negativity."
    )
    assert [s.path for s in doc.sections] == [
        ("Abstract", "PURPOSE"),
        ("Abstract", "METHODS"),
        ("Abstract", "RESULTS"),
        ("Abstract", "CONCLUSIONS"),
    ]
    assert all(s.kind == "abstract" for s in doc.sections)
    assert doc.sections[0].text.startswith(
        "An auditory electrophysiological study was conducted to explore the influence"
    )
    assert doc.identifiers.pmcid == "PMC4380289"
    assert doc.identifiers.doi is None
    assert doc.journal == "Restorative neurology and neuroscience"
    assert doc.year == 2007
    assert doc.pub_date == date(2007, 1, 1)
    assert doc.authors == ["Bharath Chandrasekaran", "Jackson T Gandour", "Ananthanarayan Krishnan"]
    assert "Pitch Perception" in doc.keywords  # MeSH descriptor


def test_medline16_edge_cases(medline16: list[ParseResult]) -> None:
    docs = {d.doc_id: d for d in _docs(medline16)}
    # <MedlineDate>2012 Jan-Feb</MedlineDate>
    assert docs["pmid:21784659"].year == 2012
    assert docs["pmid:21784659"].pub_date == date(2012, 1, 1)
    # CollectiveName among the authors
    assert docs["pmid:25345997"].authors[0] == "Movement Disorder Group"
    # OtherAbstract is not indexed but counted
    assert docs["pmid:26702360"].unsupported == {"OtherAbstract": 1}
    # No abstract: the title is the one searchable section
    no_abstract = docs["pmid:26407462"]
    assert no_abstract.unsupported["no_abstract"] == 1
    assert [(s.path, s.text, s.kind) for s in no_abstract.sections] == [
        (("Title",), "[Vaccines are drugs].", "abstract")
    ]


def test_pubmed_single_article_exact_values(pubmed: Path) -> None:
    results = list(parse_medline(_source(pubmed / "pubmed-29768149.xml")))
    assert len(results) == 1
    doc = results[0]
    assert isinstance(doc, Document)
    assert doc.doc_id == "pmid:29768149"
    assert doc.title == "Inhaled Combined Budesonide-Formoterol as Needed in Mild Asthma."
    assert doc.identifiers.pmid == "29768149"
    assert doc.identifiers.doi == "10.1056/nejmoa1715274"
    assert doc.identifiers.pmcid is None
    assert doc.journal == "The New England journal of medicine"
    assert doc.year == 2018
    assert doc.pub_date == date(2018, 5, 17)
    assert doc.authors == [
        "Paul M O'Byrne",
        "J Mark FitzGerald",
        "Eric D Bateman",
        "Peter J Barnes",
        "Nanshan Zhong",
        "Christina Keen",
        "Carin Jorup",
        "Rosa Lamarca",
        "Stefan Ivanov",
        "Helen K Reddel",
    ]
    assert [s.path for s in doc.sections] == [
        ("Abstract", "BACKGROUND"),
        ("Abstract", "METHODS"),
        ("Abstract", "RESULTS"),
        ("Abstract", "CONCLUSIONS"),
    ]
    # '&#946;\n<sub>2</sub>-agonist' in the pretty-printed XML reads as one word.
    assert doc.sections[0].text == (
        "In patients with mild asthma, as-needed use of an inhaled glucocorticoid plus a "
        "fast-acting β2-agonist may be an alternative to conventional treatment strategies."
    )
    assert doc.keywords[:3] == ["Administration, Inhalation", "Adolescent", "Adult"]
    assert len(doc.keywords) == 23
    assert doc.source_path == "pubmed-29768149.xml"


def test_current_medline(pubmed: Path) -> None:
    docs = _docs(list(parse_medline(_source(pubmed / "test_current_medline.xml.gz"))))
    assert [d.doc_id for d in docs] == [
        "pmid:36400559",
        "pmid:2930949",
        "pmid:11446611",
        "pmid:28786991",
    ]
    back_pain, low_back, acute, tb = docs
    assert back_pain.sections[0].path == ("Abstract",)
    assert back_pain.identifiers.doi == "10.1016/j.ncl.2022.07.002"
    assert back_pain.pub_date == date(2023, 2, 1)  # <Month>Feb</Month>
    assert back_pain.keywords[:4] == ["Back pain", "Diagnosis", "Management", "Outpatient"]
    assert "Low Back Pain" in back_pain.keywords
    # PMCID from PubmedData/ArticleIdList, not from the ReferenceList's ids
    assert low_back.identifiers.pmcid == "PMC1306303"
    assert low_back.identifiers.doi is None
    assert acute.unsupported == {"no_abstract": 1}
    assert acute.sections[0].path == ("Title",)
    assert acute.identifiers.doi == "10.7861/clinmedicine.1-3-188"
    assert acute.pub_date == date(2001, 5, 1)  # <Season>May-Jun</Season>
    assert tb.identifiers.pmcid == "PMC5546677"
    assert tb.identifiers.doi == "10.1371/journal.pone.0180707"
    # doc_id stays the PMID even when a PMCID is known
    assert tb.doc_id == "pmid:28786991"


def test_plain_and_gzip_bytes_give_the_same_documents(pubmed: Path) -> None:
    raw = (pubmed / "test_current_medline.xml.gz").read_bytes()
    from_gzip = list(parse_medline(Source("a.xml.gz", raw)))
    from_plain = list(parse_medline(Source("a.xml.gz", gzip.decompress(raw))))
    assert from_gzip == from_plain


def test_citation_without_pmid_is_a_record_failure(pubmed: Path) -> None:
    data = gzip.decompress((pubmed / "test_current_medline.xml.gz").read_bytes())
    pmid = b'<PMID Version="1">2930949</PMID>'
    assert data.count(pmid) == 1
    results = list(parse_medline(Source("edited.xml", data.replace(pmid, b""))))
    assert len(results) == 4
    failure = results[1]
    assert failure == RecordFailure("edited.xml", "citation #2", "no PMID")
    assert [r.doc_id for r in _docs(results)] == ["pmid:36400559", "pmid:11446611", "pmid:28786991"]


def test_malformed_xml_raises_parse_error(pubmed: Path) -> None:
    data = (pubmed / "pubmed-29768149.xml").read_bytes()
    with pytest.raises(ParseError, match="malformed XML") as info:
        list(parse_medline(Source("broken.xml", data[: len(data) // 2])))
    assert info.value.path == "broken.xml"
    with pytest.raises(ParseError, match="malformed XML"):
        list(parse_medline(Source("junk.xml", b"<PubmedArticleSet><PubmedArticle></Pubmed")))


def test_records_before_the_break_are_yielded(pubmed: Path) -> None:
    data = gzip.decompress((pubmed / "test_current_medline.xml.gz").read_bytes())
    cut = data.index(b"<PubmedArticle>", data.index(b"</PubmedArticle>")) + 200
    results = parse_medline(Source("cut.xml", data[:cut]))
    first = next(results)
    assert isinstance(first, Document)
    assert first.doc_id == "pmid:36400559"
    with pytest.raises(ParseError, match="malformed XML"):
        next(results)


def test_other_inputs_raise_parse_error() -> None:
    with pytest.raises(ParseError, match="empty file"):
        list(parse_medline(Source("empty.xml", b"")))
    with pytest.raises(ParseError, match="not MEDLINE"):
        list(parse_medline(Source("page.html", b"<html><body/></html>")))
    with pytest.raises(ParseError, match="corrupt gzip"):
        list(parse_medline(Source("bad.xml.gz", b"\x1f\x8b\x08\x00junk")))


def test_entities_are_not_resolved() -> None:
    xml = (
        b'<?xml version="1.0"?>\n'
        b'<!DOCTYPE PubmedArticleSet [<!ENTITY xxe SYSTEM "file:///etc/hostname">]>\n'
        b"<PubmedArticleSet><PubmedArticle><MedlineCitation><PMID>1</PMID><Article>"
        b"<ArticleTitle>A &xxe; title</ArticleTitle></Article></MedlineCitation>"
        b"</PubmedArticle></PubmedArticleSet>"
    )
    [doc] = list(parse_medline(Source("xxe.xml", xml)))
    assert isinstance(doc, Document)
    assert doc.title == "A title"


def test_single_medline_citation_root() -> None:
    xml = (
        b"<MedlineCitation><PMID>42</PMID><Article><ArticleTitle>T</ArticleTitle>"
        b'<Abstract><AbstractText Label="AIM">a</AbstractText><AbstractText>b</AbstractText>'
        b"<AbstractText>c</AbstractText></Abstract></Article></MedlineCitation>"
    )
    [doc] = list(parse_medline(Source("one.xml", xml)))
    assert isinstance(doc, Document)
    assert doc.doc_id == "pmid:42"
    assert [(s.path, s.text) for s in doc.sections] == [
        (("Abstract", "AIM"), "a"),
        (("Abstract",), "b\n\nc"),
    ]


def test_looks_like_medline(pubmed: Path, corpus: Path) -> None:
    for name in ("medline16n0902.xml.gz", "test_current_medline.xml.gz", "pubmed-29768149.xml"):
        assert looks_like_medline((pubmed / name).read_bytes()[:1024]), name
    pdf = next((corpus / "pdf").glob("*.pdf"))
    assert not looks_like_medline(pdf.read_bytes()[:1024])
    assert not looks_like_medline(b"<?xml version='1.0'?><article><front/></article>")
    assert not looks_like_medline(b"")
