"""PDF parser on the real research-paper PDFs in corpus/pdf, plus its pure helpers."""

from __future__ import annotations

import io
import time
from datetime import date
from pathlib import Path
from urllib.parse import unquote

import pytest
from pypdf import PdfReader, PdfWriter

from core.errors import ParseError
from core.ids import normalize_doi
from core.schemas import Document, SourceType
from ingest.parsers.base import Source
from ingest.parsers.pdf import (
    detect_heading,
    join_lines,
    looks_like_pdf,
    parse_pdf,
    split_paragraphs,
    strip_running_lines,
)

LIMK = "10.1038%2Fs41467-023-44148-4.pdf"  # Nature Communications, 13 pages, quick to parse
IJBS = "10.7150%2Fijbs.86869.pdf"  # no /Title in its metadata
BMC = "10.1186%2Fs12915-024-01840-1.pdf"  # alternating odd/even running headers


@pytest.fixture(scope="module")
def pdf_dir(corpus: Path) -> Path:
    return corpus / "pdf"


def _parse(path: Path, **kwargs: int) -> Document:
    results = list(parse_pdf(Source(path.name, path.read_bytes()), **kwargs))
    assert len(results) == 1
    doc = results[0]
    assert isinstance(doc, Document)
    return doc


@pytest.fixture(scope="module")
def limk(pdf_dir: Path) -> Document:
    return _parse(pdf_dir / LIMK)


# --- a real Nature Communications article --------------------------------------------------


def test_identity_and_metadata(limk: Document) -> None:
    assert limk.doc_id == "doi:10.1038/s41467-023-44148-4"
    assert limk.identifiers.doi == "10.1038/s41467-023-44148-4"
    assert limk.source_type is SourceType.PDF
    assert limk.title == "Autoregulation of the LIM kinases by their PDZ domain"
    assert limk.journal == "Nature Communications"
    assert limk.year == 2023  # '(2023) 14:8441' on the first page
    assert limk.source_path == LIMK


def test_pages_on_every_section(limk: Document, pdf_dir: Path) -> None:
    n_pages = len(PdfReader(pdf_dir / LIMK).pages)
    assert n_pages == 13
    assert all(s.page is not None for s in limk.sections)
    pages = [s.page or 0 for s in limk.sections]
    assert pages[0] == 1
    assert pages[-1] == n_pages
    assert pages == sorted(pages)
    assert limk.sections[0].path == ("Page 1",)


def test_headings_become_section_paths(limk: Document) -> None:
    paths = [s.path for s in limk.sections]
    for heading in ("Results", "Discussion", "Methods", "Data availability", "Acknowledgements"):
        assert (heading,) in paths
    results = [s for s in limk.sections if s.path == ("Results",)]
    assert [s.page for s in results] == [3, 4, 5]  # a section keeps one Section per page


def test_dehyphenation_on_real_text(limk: Document) -> None:
    text = limk.text()
    # page 1: 'Actin severing is neces-' / 'sary for a dynamic cytoskeleton'
    assert "Actin severing is necessary for a dynamic cytoskeleton" in text
    # 'when LIMK1 was ectopi-' / 'cally expressed in yeast'
    assert "when LIMK1 was ectopically expressed in yeast" in text
    assert "neces-" not in text
    # ligatures are resolved ('ﬁ' -> 'fi')
    assert "\ufb01" not in text
    assert "targeted mutagenesis" in text


def test_running_headers_and_junk_lines_are_removed(limk: Document) -> None:
    text = limk.text()
    # Every page carries 'Article https://doi.org/10.1038/s41467-023-44148-4' on top and
    # 'Nature Communications | (2023) 14:8441 <page>' at the bottom.
    assert "Nature Communications |" not in text
    assert "Article https://doi.org/10.1038/s41467-023-44148-4" not in text
    assert "1234567890():,;" not in text
    assert limk.unsupported["running_lines"] == 26


def test_references_are_skipped_and_counted(limk: Document) -> None:
    text = limk.text()
    assert "Pollard, T. D. & Cooper, J. A. Actin, a central player" not in text
    assert ("References",) not in [s.path for s in limk.sections]
    assert limk.unsupported["references_lines"] == 214
    # the back matter after the reference list is kept
    acknowledgements = next(s for s in limk.sections if s.path == ("Acknowledgements",))
    assert acknowledgements.text.startswith("We thank Stephanie Hamill, Amy Stiegler Wyler")


def test_paragraphs_are_single_lines_separated_by_blank_lines(limk: Document) -> None:
    for section in limk.sections:
        for paragraph in section.text.split("\n\n"):
            assert paragraph.strip() == paragraph
            assert paragraph
            assert "\n" not in paragraph
    assert sum(s.text.count("\n\n") + 1 for s in limk.sections) > 50


# --- other journals ------------------------------------------------------------------------


def test_title_from_first_page_when_metadata_has_none(pdf_dir: Path) -> None:
    metadata = PdfReader(pdf_dir / IJBS).metadata
    assert metadata is None or not metadata.title
    doc = _parse(pdf_dir / IJBS)
    assert doc.doc_id == "doi:10.7150/ijbs.86869"
    assert doc.title == (
        "Precise Orchestration of Gasdermins\u2019 Pore-Forming Function by Posttranslational "
        "Modifications in Health and Disease"
    )
    assert doc.pub_date == date(2023, 9, 18)  # 'Published: 2023.09.18'
    assert doc.year == 2023
    assert "Int. J. Biol. Sci. 2023, Vol. 19" not in doc.text()


def test_alternating_running_headers(pdf_dir: Path) -> None:
    # Odd pages: 'Page 3 of 17' / 'Dhakal et al. BMC Biology (2024) 22:37';
    # even pages: 'Page 2 of 17Dhakal et al. BMC Biology (2024) 22:37' on one line.
    doc = _parse(pdf_dir / BMC)
    text = doc.text()
    assert " of 17" not in text
    assert "BMC Biology (2024) 22:37" not in text
    assert doc.journal == "BMC Biology"
    assert doc.year == 2024
    assert doc.keywords[:2] == ["Innate immunity", "RNA editing"]
    assert ("Background",) in [s.path for s in doc.sections]


# --- errors --------------------------------------------------------------------------------


def test_truncated_pdf(pdf_dir: Path) -> None:
    data = (pdf_dir / LIMK).read_bytes()
    with pytest.raises(ParseError, match="corrupt or truncated PDF") as info:
        list(parse_pdf(Source("cut.pdf", data[: int(len(data) * 0.3)])))
    assert info.value.path == "cut.pdf"


def test_empty_and_non_pdf_bytes() -> None:
    with pytest.raises(ParseError, match="empty file"):
        list(parse_pdf(Source("empty.pdf", b"")))
    with pytest.raises(ParseError, match="not a PDF"):
        list(parse_pdf(Source("page.pdf", b"<html>not a pdf</html>")))
    with pytest.raises(ParseError, match="corrupt or truncated PDF"):
        list(parse_pdf(Source("junk.pdf", b"%PDF-1.7\n" + b"\x00garbage" * 50)))


def _pdf_bytes(writer: PdfWriter) -> bytes:
    buf = io.BytesIO()
    writer.write(buf)
    return buf.getvalue()


def test_pdf_without_text() -> None:
    writer = PdfWriter()
    writer.add_blank_page(width=612, height=792)
    writer.add_blank_page(width=612, height=792)
    with pytest.raises(ParseError, match=r"no extractable text \(scanned PDF\?\)"):
        list(parse_pdf(Source("scan.pdf", _pdf_bytes(writer))))


def test_too_many_pages(pdf_dir: Path) -> None:
    data = (pdf_dir / LIMK).read_bytes()
    with pytest.raises(ParseError, match=r"too many pages \(13 > 5\)"):
        list(parse_pdf(Source(LIMK, data), max_pages=5))


def test_encrypted_pdf(pdf_dir: Path) -> None:
    page = PdfReader(pdf_dir / LIMK).pages[1]
    locked = PdfWriter()
    locked.add_page(page)
    locked.encrypt(user_password="secret", owner_password="owner")
    with pytest.raises(ParseError, match="encrypted PDF"):
        list(parse_pdf(Source("locked.pdf", _pdf_bytes(locked))))
    # An empty user password (owner restrictions only) opens without asking.
    opened = PdfWriter()
    opened.add_page(page)
    opened.encrypt(user_password="", owner_password="owner")
    [doc] = list(parse_pdf(Source("restricted.pdf", _pdf_bytes(opened))))
    assert isinstance(doc, Document)
    assert "autoinhibition of the LIMKs remains unknown" in doc.text()
    # no DOI in the name: the DOI printed on the page is used
    assert doc.doc_id == "doi:10.1038/s41467-023-44148-4"


def test_content_hash_id_without_doi() -> None:
    writer = PdfWriter()
    writer.add_blank_page(width=10, height=10)
    data = _pdf_bytes(writer)
    assert looks_like_pdf(data[:1024])
    with pytest.raises(ParseError):
        list(parse_pdf(Source("x.pdf", data)))


def test_looks_like_pdf(pdf_dir: Path) -> None:
    assert looks_like_pdf((pdf_dir / LIMK).read_bytes()[:1024])
    assert looks_like_pdf(b"\xef\xbb\xbf\r\n%PDF-1.4")
    assert not looks_like_pdf(b"<?xml version='1.0'?>")
    assert not looks_like_pdf(b" " * 1024 + b"%PDF-1.4")
    assert not looks_like_pdf(b"")


# --- pure helpers --------------------------------------------------------------------------


def _body(n: int) -> list[str]:
    """Ten lines of page text that do not repeat from page to page."""
    return [f"line {chr(97 + i)} of the text on page {chr(65 + n)}" for i in range(10)]


def test_strip_running_lines_removes_headers_with_changing_digits() -> None:
    pages = [
        [f"Nature Communications | (2023) 14:3496 {n}", *_body(n), str(n)] for n in range(1, 6)
    ]
    assert strip_running_lines(pages) == [_body(n) for n in range(1, 6)]


def test_strip_running_lines_keeps_rare_and_mid_page_lines() -> None:
    pages = [[*_body(n), str(n + 11)] for n in range(1, 6)]
    pages[0][0] = "Introduction"
    pages[1][0] = "Results"  # top of 2 pages of 5, and mid-page on a third
    pages[2][0] = "Results"
    pages[3][5] = "Results"
    out = strip_running_lines(pages)
    # only the bare page numbers go (bottom of every page)
    assert out == [p[:-1] for p in pages]
    # at the top of 3 pages of 5 'Results' is running, but too short to be taken from mid-page
    pages[4][0] = "Results"
    out = strip_running_lines(pages)
    assert [p.count("Results") for p in out] == [0, 0, 0, 1, 0]


def test_strip_running_lines_alternating_headers() -> None:
    even = "1234 Nucleic Acids Research , 2024, Vol. 52, No. 8"
    odd = "Nucleic Acids Research , 2024, Vol. 52, No. 8 1235"
    footer = "Downloaded from https://academic.oup.com/nar/article/52/8/4151/7606263 by guest"
    pages = [["first page title", *_body(1), footer]]
    for n in range(2, 9):
        pages.append([even if n % 2 == 0 else odd, *_body(n), footer])
    out = strip_running_lines(pages)
    assert out == [["first page title", *_body(1)]] + [_body(n) for n in range(2, 9)]


def test_strip_running_lines_distinctive_lines_go_anywhere() -> None:
    header = "Cancers 2022, 14, 4849 3 of 18"
    pages = [[header, *_body(n)] for n in range(1, 5)]
    pages[2] = [*_body(3)[:5], header, *_body(3)[5:]]  # drawn mid-page on one page
    assert strip_running_lines(pages) == [_body(n) for n in range(1, 5)]


def test_strip_running_lines_small_inputs() -> None:
    assert strip_running_lines([]) == []
    assert strip_running_lines([["only page", "1"]]) == [["only page", "1"]]
    pages = [["a", "", "b"], ["c", "", "d"]]
    assert strip_running_lines(pages) == pages  # blank lines are never running lines
    assert strip_running_lines(pages) is not pages


def test_join_lines_dehyphenation() -> None:
    assert join_lines(["the immuno-", "genicity of"]) == "the immunogenicity of"
    assert join_lines(["the mRNA-", "4157 vaccine"]) == "the mRNA-4157 vaccine"
    assert join_lines(["binding of Siglec-", "15 to T cells"]) == "binding of Siglec-15 to T cells"
    assert join_lines(["FLAG-", "tagged CD11b"]) == "FLAG-tagged CD11b"  # upper-case fragment
    assert join_lines(["like tran -", "scription"]) == "like transcription"  # BMC style
    keep = frozenset({"cell-type"})
    assert join_lines(["a cell-", "type specific"], keep) == "a cell-type specific"
    assert join_lines(["one", "", "two "]) == "one two"
    assert join_lines(["soft\u00ad", "ware"]) == "software"
    assert join_lines([]) == ""


def test_split_paragraphs() -> None:
    lines = [
        "This is a full line of justified text that runs to the",
        "edge of the column and goes on with more of the same.",
        "Short last line.",
        "A new paragraph starts here and runs to the end of the",
        "column as well, with a sentence ending at the edge. Then",
        "it continues.",
        "Fig. 2 | A caption",
        "",
        "after a blank line",
    ]
    assert split_paragraphs(lines) == [
        lines[0:3],
        lines[3:6],
        ["Fig. 2 | A caption"],
        ["after a blank line"],
    ]


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("Results", "Results"),
        ("Results ", "Results"),
        ("2. Materials and Methods", "Materials and methods"),
        ("INTRODUCTION", "Introduction"),
        ("REFERENCESANDNOTES", "References"),
        ("A c kno wledg ements", "Acknowledgements"),
        ("Conflict of interest statement", "Conflict of interest"),
        ("Results of the trial", None),
        ("Methods were as described", None),
        ("", None),
    ],
)
def test_detect_heading(line: str, expected: str | None) -> None:
    assert detect_heading(line) == expected


# --- the whole folder ----------------------------------------------------------------------


@pytest.mark.slow
def test_all_corpus_pdfs(pdf_dir: Path) -> None:
    """Every PDF parses; about 110 s for the 31 files on one core (pypdf text extraction)."""
    paths = sorted(pdf_dir.glob("*.pdf"))
    assert len(paths) == 31
    start = time.perf_counter()
    for path in paths:
        doc = _parse(path)
        n_pages = len(PdfReader(path).pages)
        assert doc.doc_id == f"doi:{normalize_doi(unquote(path.stem))}", path.name
        assert doc.title.strip(), path.name
        assert len(doc.sections) > 0, path.name
        pages = [s.page or 0 for s in doc.sections]
        assert pages[0] == 1, path.name
        assert pages == sorted(pages), path.name
        assert 1 <= pages[-1] <= n_pages, path.name
        assert doc.unsupported["references_lines"] > 50, path.name
        assert doc.year in (2022, 2023, 2024), path.name
        assert len(doc.text()) > 30_000, path.name
    assert time.perf_counter() - start < 600
