"""JATS parser on real PMC, PLOS and eLife articles from ../shared/data/corpus/jats.

Expected values were read from the XML files themselves.
"""

from __future__ import annotations

import json
from datetime import date
from functools import cache
from pathlib import Path

import pytest

from core.errors import ParseError
from core.schemas import Document, Section, SourceType
from ingest.parsers.base import Source
from ingest.parsers.jats import looks_like_jats, parse_jats


@pytest.fixture(scope="module")
def jats(corpus: Path) -> Path:
    """corpus/jats (pmc/, plos/, elife/)."""
    root = corpus / "jats"
    assert root.is_dir(), root
    return root


def _jats_files(jats_root: Path) -> list[Path]:
    return sorted(p for p in jats_root.rglob("*") if p.suffix in (".xml", ".nxml"))


@cache
def _parse_path(path: Path) -> Document:
    results = list(parse_jats(Source(path.name, path.read_bytes())))
    assert len(results) == 1
    doc = results[0]
    assert isinstance(doc, Document)
    return doc


def _doc(jats_root: Path, rel: str) -> Document:
    return _parse_path(jats_root / rel)


def _section(doc: Document, *path: str, kind: str | None = None) -> Section:
    found = [s for s in doc.sections if s.path == path and (kind is None or s.kind == kind)]
    assert found, f"no section {path} in {[s.path for s in doc.sections]}"
    return found[0]


# -------------------------------------------------------------------------------------------
# PMC: BMC Microbiology 2011 (JATS 1.0 archiving DTD)


def test_pmc_bmc_metadata(jats: Path) -> None:
    doc = _doc(jats, "pmc/1471-2180-11-174.nxml")
    assert doc.title == "Factors influencing lysis time stochasticity in bacteriophage λ"
    assert doc.identifiers.pmcid == "PMC3166277"
    assert doc.identifiers.pmid == "21810267"
    assert doc.identifiers.doi == "10.1186/1471-2180-11-174"
    assert doc.doc_id == "pmc:PMC3166277"
    assert doc.source_type is SourceType.ARTICLE
    assert doc.source_path == "1471-2180-11-174.nxml"
    assert doc.journal == "BMC Microbiology"
    assert doc.pub_date == date(2011, 8, 2)  # pub-type="epub"
    assert doc.year == 2011
    assert doc.authors == ["John J Dennehy", "Ing-Nang Wang"]
    assert doc.license == "http://creativecommons.org/licenses/by/2.0"
    assert doc.keywords == []


def test_pmc_bmc_sections(jats: Path) -> None:
    doc = _doc(jats, "pmc/1471-2180-11-174.nxml")
    abstract = [s.path for s in doc.sections if s.kind == "abstract"]
    assert abstract == [
        ("Abstract", "Background"),
        ("Abstract", "Results"),
        ("Abstract", "Conclusions"),
    ]
    holin = _section(doc, "Results", "Effect of allelic variation in holin sequence", kind="body")
    # xref text stays as printed, inline.
    assert holin.text.startswith(
        "It has long been known that different holin alleles show different lysis times "
        "[37,46,47]. However,"
    )
    figure = _section(doc, "Results", "Effect of allelic variation in holin sequence", "Figure 3")
    assert figure.kind == "caption"
    assert figure.text.startswith("Factors influencing λ lysis time stochasticity.")
    table = _section(doc, "Results", "Table 1", kind="caption")
    assert table.text.startswith(
        "Effects of holin allelic sequences on the stochasticity of lysis time."
    )
    assert _section(doc, "Appendix A").kind == "body"
    assert _section(doc, "Acknowledgements").kind == "back"
    # Paragraphs of one section are separated by a blank line.
    assert "\n\n" in _section(doc, "Background").text


def test_pmc_bmc_references_and_unsupported(jats: Path) -> None:
    doc = _doc(jats, "pmc/1471-2180-11-174.nxml")
    assert len(doc.references) == 64
    first = doc.references[0]
    assert first.ref_id == "B1"
    assert first.label is None
    assert first.doi == "10.1038/nrmicro1460"
    assert first.pmid == "16845428"
    assert first.text == (
        "Avery SV (2006). Microbial cell individuality and the underlying sources of "
        "heterogeneity. Nat Rev Microbiol 4: 577\u2013587."
    )
    # 3 tables, 186 <td> (9 of them empty <td/>) and 11 <th>: cells are counted, not indexed.
    assert doc.unsupported["table"] == 3
    assert doc.unsupported["td"] == 186
    assert doc.unsupported["th"] == 11
    assert "IN56 (WT)" not in doc.text()  # a Table 1 cell


# -------------------------------------------------------------------------------------------
# PMC: older NLM 2.3 DTD (journal-title without journal-title-group), floats-group


def test_pmc_nlm23_journal_title_without_group(jats: Path) -> None:
    doc = _doc(jats, "pmc/1472-6831-8-11.nxml")
    assert doc.title == (
        "The Dutch version of the Oral Health Impact Profile (OHIP-NL): Translation, "
        "reliability and construct validity"
    )
    assert doc.journal == "BMC Oral Health"
    assert doc.identifiers.pmcid == "PMC2329613"
    assert doc.identifiers.pmid == "18405359"
    assert doc.pub_date == date(2008, 4, 11)
    assert len(doc.authors) == 4
    assert doc.authors[0] == "Marylee J van der Meulen"
    assert len(doc.references) == 31
    assert _section(doc, "Methods", "Oral Health Impact Profile", "Table 1").kind == "caption"


def test_pmc_floats_group_and_keywords(jats: Path) -> None:
    doc = _doc(jats, "pmc/6605965a.nxml")
    assert doc.identifiers.doi == "10.1038/sj.bjc.6605965"
    assert doc.journal == "British Journal of Cancer"
    assert doc.keywords == [
        "oral contraceptives",
        "reproductive history",
        "colorectal cancer",
        "cohort study",
    ]
    assert doc.license is None  # copyright statement only, no <license>
    assert len(doc.authors) == 46
    assert doc.authors[0] == "K K Tsilidis"
    # Structured-abstract titles "Background:" lose the colon.
    assert _section(doc, "Abstract", "Background").kind == "abstract"
    # Body paragraphs before the first <sec> have no title.
    assert doc.sections[4].path == ("Main text",)
    assert doc.sections[4].text.startswith("Men tend to have a slightly higher incidence")
    # Tables in <floats-group> (outside the body) are captioned by their label alone.
    table = _section(doc, "Table 1")
    assert table.kind == "caption"
    assert table.text.startswith("Participant characteristics at recruitment among women")
    assert doc.unsupported["table"] == 2


# -------------------------------------------------------------------------------------------
# PLOS


def test_plos_one_metadata_and_references(jats: Path) -> None:
    doc = _doc(jats, "plos/journal.pone.0117014.xml")
    assert doc.title == (
        "Model Selection Emphasises the Importance of Non-Chromosomal Information in "
        "Genetic Studies"
    )
    assert doc.identifiers.pmcid is None
    assert doc.identifiers.doi == "10.1371/journal.pone.0117014"
    assert doc.doc_id == "doi:10.1371/journal.pone.0117014"
    assert doc.journal == "PLOS ONE"
    assert doc.pub_date == date(2015, 1, 27)
    assert doc.authors == ["Reda Rawi", "Mohamed El Anbari", "Halima Bensmail"]
    assert doc.license == "http://creativecommons.org/licenses/by/4.0/"
    assert len(doc.references) == 24
    ref = doc.references[0]
    assert ref.ref_id == "pone.0117014.ref001"
    assert ref.label == "1"
    assert ref.doi == "10.1038/nrg2809"
    assert ref.pmid == "20479774"
    assert ref.text.startswith(
        "Eichler EE, Flint J, Gibson G, Kong A, Leal SM, et al. (2010) Missing heritability"
    )
    assert _section(doc, "Supporting Information", "S1 Table").kind == "caption"
    assert _section(doc, "Materials and Methods", "LASSO").kind == "body"
    assert doc.unsupported["inline-formula"] == 21
    assert doc.unsupported["disp-formula"] == 9


def test_plos_medicine_abstract_kinds_and_group_author(jats: Path) -> None:
    doc = _doc(jats, "plos/journal.pmed.1001300.xml")
    # 73 byline contributors; the consortium's 71 members (no contrib-type) are not authors.
    assert len(doc.authors) == 73
    assert doc.authors[0] == "Shama D. Ahuja"
    assert doc.authors[-1] == (
        "Collaborative Group for Meta-Analysis of Individual Patient Data in MDR-TB"
    )
    abstract_paths = [s.path for s in doc.sections if s.kind == "abstract"]
    assert abstract_paths[0] == ("TOC summary",)
    assert ("Abstract", "Methods and Findings") in abstract_paths
    assert ("Editors' Summary", "Why Was This Study Done?") in abstract_paths
    assert _section(doc, "Abbreviations").text.startswith("AFB: acid fast bacilli")
    assert doc.license is not None
    assert doc.license.startswith("This is an open-access article distributed under the terms")


def test_plos_boxed_text_and_math(jats: Path) -> None:
    doc = _doc(jats, "plos/journal.pbio.1000359.xml")
    # No <sec> at all: text, box and captions all sit under ("Main text",).
    assert doc.sections[1].path == ("Main text",)
    box = _section(doc, "Main text", "Box 1. A Decade of Proteorhodopsin Milestones")
    assert box.kind == "body"
    assert _section(doc, "Main text", "Table 1").kind == "caption"
    assert "First proteorhodopsin gene found in uncultured SAR86" in box.text
    math = _doc(jats, "plos/journal.pcbi.1004082.xml")
    # A MathML title component made of tokens and scripts is kept as text.
    assert _section(math, "Results", "Case 2: more than K⋆ cells recorded").kind == "body"
    assert math.unsupported["inline-formula"] == 160
    assert math.unsupported["disp-formula"] == 105


# -------------------------------------------------------------------------------------------
# eLife


def test_elife_article(jats: Path) -> None:
    doc = _doc(jats, "elife/elife04490.xml")
    assert doc.title == (
        "Plant defense phenotypes determine the consequences of volatile emission for "
        "individuals and neighbors"
    )
    assert doc.identifiers.doi == "10.7554/elife.04490"
    assert doc.doc_id == "doi:10.7554/elife.04490"
    assert doc.journal == "eLife"
    assert doc.pub_date == date(2015, 4, 15)  # date-type="pub"
    assert doc.year == 2015
    assert doc.authors == ["Meredith C Schuman", "Silke Allmann", "Ian T Baldwin"]
    # Italic keywords flattened; the research-organism placeholder "other" is left out.
    assert doc.keywords == [
        "Nicotiana attenuata",
        "Manduca sexta",
        "Geocoris spp.",
        "Trichobaris mucorea",
        "direct and indirect defense",
        "diversity",
    ]
    assert doc.license == "http://creativecommons.org/licenses/by/4.0/"
    assert _section(doc, "eLife digest").kind == "abstract"
    competing = _section(doc, "Additional information", "Competing interests")
    assert competing.kind == "back"
    assert competing.text == (
        "ITB: Senior editor, eLife.\n\nThe other authors declare that no competing interests exist."
    )
    source_data = _section(
        doc,
        "Results",
        "Genetically engineered phenotypes are maintained in experimental populations",
        "Figure 1—source data 1",
    )
    assert source_data.kind == "caption"
    appendix = [s for s in doc.sections if s.path[0] == "Appendix 1" and s.kind == "body"]
    assert appendix
    assert len(doc.references) == 89
    assert doc.references[0].ref_id == "bib1"
    assert doc.references[0].text.startswith("Akaike H (1973). Information theory")
    # Decision letter and author response are not indexed, but counted.
    assert doc.unsupported["sub-article"] == 2
    assert not any("Decision letter" in s.path_str for s in doc.sections)


def test_elife_publish_on_accept_without_body(jats: Path) -> None:
    doc = _doc(jats, "elife/elife_poa_e06828.xml")
    assert doc.title == (
        "Cis and trans RET signaling control the survival and central projection growth of "
        "rapidly adapting mechanoreceptors"
    )
    assert doc.pub_date is None  # no <pub-date> at all
    assert doc.year == 2015  # from the copyright year
    assert [s.kind for s in doc.sections] == ["abstract", "back", "back"]
    assert doc.references == []


# -------------------------------------------------------------------------------------------
# Errors and security


def test_truncated_xml_raises_parse_error_naming_the_file(jats: Path) -> None:
    data = (jats / "plos/journal.pone.0117014.xml").read_bytes()
    source = Source("corpus/jats/truncated.xml", data[: len(data) // 2])
    with pytest.raises(ParseError) as info:
        list(parse_jats(source))
    assert info.value.path == "corpus/jats/truncated.xml"
    assert info.value.reason.startswith("malformed XML:")
    assert "line" in info.value.reason
    assert "corpus/jats/truncated.xml" in str(info.value)


def test_non_article_root_raises(corpus: Path) -> None:
    data = (corpus / "pubmed/pubmed-29768149.xml").read_bytes()
    with pytest.raises(ParseError, match="root element is <PubmedArticleSet>"):
        list(parse_jats(Source("pubmed-29768149.xml", data)))


def test_no_title_and_no_text_raise() -> None:
    no_title = b"<article><front><article-meta><abstract><p>x</p></abstract></article-meta>"
    no_title += b"</front></article>"
    with pytest.raises(ParseError, match="no article-title"):
        list(parse_jats(Source("a.xml", no_title)))
    no_text = (
        b"<article><front><article-meta><title-group><article-title>T</article-title>"
        b"</title-group></article-meta></front><body><sec><title>Empty</title></sec></body>"
        b"</article>"
    )
    with pytest.raises(ParseError, match="no abstract or body text"):
        list(parse_jats(Source("b.xml", no_text)))


def test_external_entities_are_not_resolved() -> None:
    data = (
        b'<?xml version="1.0"?>\n<!DOCTYPE article [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
        b"<article><front><article-meta><title-group><article-title>T</article-title>"
        b"</title-group></article-meta></front><body><p>before &xxe; after</p></body></article>"
    )
    doc = next(parse_jats(Source("xxe.xml", data)))
    assert isinstance(doc, Document)
    assert doc.sections[0].text == "before after"
    assert "root:" not in doc.text()
    assert doc.unsupported == {"&xxe;": 1}
    assert doc.doc_id.startswith("sha256:")


# -------------------------------------------------------------------------------------------
# Whole corpus and format sniffing


def test_all_jats_files_parse(jats: Path) -> None:
    files = _jats_files(jats)
    assert len(files) == 151
    for path in files:
        doc = _parse_path(path)
        assert doc.title, path
        assert doc.sections, path
        assert doc.source_type is SourceType.ARTICLE
        assert doc.doc_id.startswith(("pmc:", "doi:")), path
        for section in doc.sections:
            assert section.path, path
            assert all(section.path), (path, section.path)
            assert section.text, (path, section.path)
            assert section.text.strip() == section.text, (path, section.path)
            assert section.kind in ("abstract", "body", "caption", "back"), path
        assert all(r.text for r in doc.references), path
        if path.parent.name == "pmc":
            assert doc.identifiers.pmcid, path
            assert doc.identifiers.pmid, path


def test_looks_like_jats_on_every_jats_file(jats: Path) -> None:
    files = _jats_files(jats)
    assert len(files) == 151
    for path in files:
        with path.open("rb") as fh:
            assert looks_like_jats(fh.read(4096)), path


def test_looks_like_jats_rejects_other_formats(corpus: Path) -> None:
    pdf = next((corpus / "pdf").glob("*.pdf"))
    assert not looks_like_jats(pdf.read_bytes()[:4096])
    assert not looks_like_jats(
        json.dumps({"protocolSection": {"identificationModule": {}}}).encode()
    )
    for path in [
        corpus / "pubmed/pubmed-29768149.xml",
        next((corpus / "ctgov-legacy-xml").glob("*.xml")),
        next((corpus / "ctgov").glob("*.json")),
    ]:
        assert not looks_like_jats(path.read_bytes()[:4096]), path
    assert not looks_like_jats(b"<html><body><article>Blog post</article></body></html>")
    assert looks_like_jats(b"<article><front><article-meta/></front></article>")
