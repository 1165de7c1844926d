"""Render the sample PDF of the litrag demo corpus from a CC-BY JATS article.

The research PDFs in ``../shared/data/corpus/pdf`` must not be redistributed, so the one PDF in
``samples/pdf/`` is made here from the text of an open-access (CC-BY) PLOS or eLife article:
title, authors, DOI, abstract, body section titles and paragraphs, and the reference list, laid
out on A4 pages with a running header (journal | DOI link) and a page-number footer on every
page, and long words hyphenated at some line ends - the things a real article PDF has and the
PDF parser must cope with. Tables, figures and formulas are left out. Text is set in a core PDF
font, so it is sanitised to latin-1 (Greek letters spelled out, dashes and quotes simplified).

The output is named by the URL-encoded DOI, as in the shared corpus:
``samples/pdf/10.1371%2Fjournal.pone.0152459.pdf``.

Usage (from the repository root; fpdf2 is needed only here, not by litrag)::

    .venv/bin/pip install fpdf2
    .venv/bin/python samples/make_sample_pdf.py \
        [../shared/data/corpus/jats/plos/journal.pone.0152459.xml] [-o samples/pdf]

Source article (default): Cao H, Wang S, Zhang Z, Lou J. "Prognostic Value of Overexpressed
p16INK4a in Vulvar Cancer: A Meta-Analysis". PLOS ONE 2016. doi:10.1371/journal.pone.0152459.
Copyright the authors, CC BY 4.0; copied from PLOS/allofplos (starter corpus).
"""

from __future__ import annotations

import argparse
import re
import sys
import unicodedata
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

from fpdf import FPDF
from lxml import etree

REPO = Path(__file__).resolve().parents[1]
DEFAULT_ARTICLE = REPO.parent / "shared/data/corpus/jats/plos/journal.pone.0152459.xml"

# Elements whose text is not running prose (kept out of paragraphs).
SKIP = {"table-wrap", "fig", "disp-formula", "supplementary-material", "fn-group", "table"}


def _greek_names() -> dict[str, str]:
    """Greek letters spelled out ("alpha", "Delta"); mu becomes the latin-1 micro sign."""
    names = {}
    for cp in range(0x391, 0x3CA):
        name = unicodedata.name(chr(cp), "")
        letter = name.rsplit(" ", 1)[-1].lower()
        if name.startswith("GREEK SMALL LETTER "):
            names[chr(cp)] = letter
        elif name.startswith("GREEK CAPITAL LETTER "):
            names[chr(cp)] = letter.capitalize()
    names["\u03bc"] = "\u00b5"
    return names


GREEK = _greek_names()
PUNCT = {
    "\u2010": "-",
    "\u2011": "-",
    "\u2012": "-",
    "\u2013": "-",
    "\u2014": " - ",
    "\u2015": "-",
    "\u2212": "-",
    "\u2018": "'",
    "\u2019": "'",
    "\u201a": "'",
    "\u201c": '"',
    "\u201d": '"',
    "\u201e": '"',
    "\u2026": "...",
    "\u2022": "*",
    "\u2264": "<=",
    "\u2265": ">=",
    "\u2248": "~",
    "\u2260": "!=",
    "\u2192": "->",
    "\u2032": "'",
    "\u2033": '"',
    "\u00a0": " ",
    "\u2009": " ",
    "\u2002": " ",
    "\u2003": " ",
    "\u200a": " ",
    "\u202f": " ",
    "\u200b": "",
    "\u00ad": "",
    "\u2122": "(TM)",
    "\u2020": "+",
    "\u2021": "++",
}


def latin1(text: str) -> str:
    """``text`` with every character representable in latin-1 (core PDF fonts)."""
    out = []
    for ch in text:
        ch = GREEK.get(ch, PUNCT.get(ch, ch))
        try:
            ch.encode("latin-1")
        except UnicodeEncodeError:
            decomposed = unicodedata.normalize("NFKD", ch)
            ch = "".join(c for c in decomposed if c.encode("latin-1", "ignore")) or "?"
        out.append(ch)
    return re.sub(r"[ \t\r\n]+", " ", "".join(out)).strip()


def prose(elem: etree._Element) -> str:
    """Text under ``elem``, leaving out tables, figures, formulas (tails are kept)."""
    parts: list[str] = []

    def walk(e: etree._Element) -> None:
        if isinstance(e.tag, str) and etree.QName(e).localname in SKIP:
            return
        if e.text:
            parts.append(e.text)
        for child in e:
            walk(child)
            if child.tail:
                parts.append(child.tail)

    walk(elem)
    return latin1("".join(parts))


def local(e: etree._Element) -> str:
    return etree.QName(e).localname if isinstance(e.tag, str) else ""


class Article:
    """The parts of a JATS article that the PDF shows."""

    def __init__(self, path: Path) -> None:
        parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
        root = etree.parse(str(path), parser).getroot()
        meta = root.find(".//article-meta")
        title = meta.find("title-group/article-title") if meta is not None else None
        if meta is None or title is None:
            sys.exit(f"{path}: not a JATS article (no article-meta or article-title)")
        self.journal = latin1(root.findtext(".//journal-meta//journal-title") or "")
        self.doi = (meta.findtext("article-id[@pub-id-type='doi']") or "").strip()
        if not self.doi:
            sys.exit(f"{path}: no DOI")
        self.title = prose(title)
        self.authors: list[str] = []
        for c in meta.findall("contrib-group/contrib[@contrib-type='author']"):
            name = c.find("name")
            if name is not None:
                given = name.findtext("given-names") or ""
                self.authors.append(latin1(f"{given} {name.findtext('surname') or ''}"))
            elif (collab := c.find("collab")) is not None:
                self.authors.append(prose(collab))
        year = meta.findtext("pub-date/year") or ""
        self.citation = latin1(f"{self.journal} {year}").strip()
        self.licence = str(meta.xpath("string(permissions/license/@*[local-name()='href'])"))
        abstracts = [a for a in meta.findall("abstract") if a.get("abstract-type") is None]
        self.abstract = self._blocks(abstracts[0]) if abstracts else []
        body = root.find("body")
        self.body = self._blocks(body) if body is not None else []
        self.references = [prose(r) for r in root.findall(".//back/ref-list/ref")]

    def _blocks(self, elem: etree._Element, level: int = 1) -> list[tuple[str, int, str]]:
        """(kind, level, text) for section titles ("h") and paragraphs ("p"), in order."""
        out: list[tuple[str, int, str]] = []
        for child in elem:
            name = local(child)
            if name == "sec":
                title = child.find("title")
                if title is not None and prose(title):
                    out.append(("h", level, prose(title)))
                out.extend(self._blocks(child, level + 1))
            elif name == "p":
                text = prose(child)
                if text:
                    out.append(("p", level, text))
        return out


class ArticlePDF(FPDF):
    def __init__(self, header_line: str) -> None:
        super().__init__(format="A4", unit="mm")
        self.header_line = header_line
        self.set_margins(22, 22, 22)
        self.set_auto_page_break(True, margin=20)
        self.alias_nb_pages()

    def header(self) -> None:
        self.set_font("Helvetica", "", 8)
        self.set_text_color(90, 90, 90)
        self.set_y(10)
        self.cell(0, 4, self.header_line, align="L")
        self.set_draw_color(160, 160, 160)
        self.line(self.l_margin, 15, self.w - self.r_margin, 15)
        self.set_text_color(0, 0, 0)
        self.set_y(22)

    def footer(self) -> None:
        self.set_y(-13)
        self.set_font("Helvetica", "", 8)
        self.set_text_color(90, 90, 90)
        self.cell(0, 4, f"{self.page_no()} / {{nb}}", align="C")
        self.set_text_color(0, 0, 0)

    def wrap(self, text: str, width: float) -> list[str]:
        """Greedy line breaking; a long word that does not fit is hyphenated when it can be."""
        lines: list[str] = []
        line = ""
        for word in text.split(" "):
            trial = f"{line} {word}" if line else word
            if self.get_string_width(trial) <= width:
                line = trial
                continue
            split = self._hyphenate(
                word, width - self.get_string_width(f"{line} -" if line else "-")
            )
            if split and line:
                lines.append(f"{line} {split[0]}-")
                word = split[1]
            elif line:
                lines.append(line)
            line = word
            while self.get_string_width(line) > width:  # a word wider than the column
                cut = max(1, int(len(line) * width / self.get_string_width(line)) - 1)
                lines.append(line[:cut])
                line = line[cut:]
        if line:
            lines.append(line)
        return lines

    def _hyphenate(self, word: str, room: float) -> tuple[str, str] | None:
        """Split a plain lower-case word (>= 9 letters) before a consonant-vowel syllable start.

        A rough rule ("precan-cerous", "immu-nohistochemistry", "varia-tion"), good enough for a
        sample: the PDF parser only has to join the two halves back.
        """
        if len(word) < 9 or not re.fullmatch(r"[a-z]+[,.;:]?", word) or room <= 0:
            return None
        vowels, digraph_heads = "aeiouy", "cgpstw"
        for i in range(len(word) - 4, 3, -1):
            head, tail = word[:i], word[i:]
            if (
                tail[0] not in vowels
                and tail[1] in vowels
                and not (tail[0] == "h" and head[-1] in digraph_heads)
                and head[-1] != "q"
                and self.get_string_width(head) <= room
            ):
                return head, tail
        return None

    def paragraph(self, text: str, size: float = 10.5, style: str = "", gap: float = 2.2) -> None:
        self.set_font("Times", style, size)
        height = size * 0.47
        for line in self.wrap(text, self.epw):
            self.cell(0, height, line, new_x="LMARGIN", new_y="NEXT")
        self.ln(gap)

    def heading(self, text: str, level: int) -> None:
        size = {1: 13, 2: 11.5}.get(level, 10.5)
        if self.will_page_break(size * 0.5 * 3):
            self.add_page()
        self.ln(2)
        self.set_font("Helvetica", "B", size)
        for line in self.wrap(text, self.epw):
            self.cell(0, size * 0.5, line, new_x="LMARGIN", new_y="NEXT")
        self.ln(1.5)


def render(article: Article, out_dir: Path) -> Path:
    url = f"https://doi.org/{article.doi}"
    pdf = ArticlePDF(latin1(f"{article.journal} | {url}"))
    pdf.set_title(article.title)
    pdf.set_author(", ".join(article.authors))
    pdf.set_subject(f"doi:{article.doi}")
    pdf.set_creator("litrag samples/make_sample_pdf.py (fpdf2)")
    pdf.set_creation_date(datetime(2024, 1, 1, tzinfo=UTC))  # reproducible bytes
    pdf.add_page()

    pdf.set_font("Helvetica", "B", 17)
    for line in pdf.wrap(article.title, pdf.epw):
        pdf.cell(0, 8, line, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(2)
    pdf.paragraph(", ".join(article.authors), size=11, gap=1)
    pdf.paragraph(f"{article.citation}. doi:{article.doi}", size=9.5, style="I", gap=1)
    licence = article.licence or "Creative Commons Attribution License"
    pdf.paragraph(
        f"Rendered from the CC-BY article {article.doi} for the litrag demo; text \u00a9 the "
        f"authors, CC-BY 4.0 ({licence}). Tables and figures are omitted.",
        size=8.5,
        style="I",
        gap=4,
    )

    pdf.heading("Abstract", 1)
    for kind, _level, text in article.abstract:
        if kind == "h":
            pdf.set_font("Times", "B", 10.5)
            pdf.cell(0, 5, text, new_x="LMARGIN", new_y="NEXT")
        else:
            pdf.paragraph(text)
    for kind, level, text in article.body:
        if kind == "h":
            pdf.heading(text, level)
        else:
            pdf.paragraph(text)
    if article.references:
        pdf.heading("References", 1)
        for i, ref in enumerate(article.references, 1):
            pdf.paragraph(f"{i}. {ref}", size=8.5, gap=0.8)

    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / f"{quote(article.doi, safe='')}.pdf"
    pdf.output(str(out))
    print(f"{out}: {pdf.pages_count} pages, {out.stat().st_size} bytes")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("article", nargs="?", type=Path, default=DEFAULT_ARTICLE, help="JATS XML")
    ap.add_argument("-o", "--out-dir", type=Path, default=Path(__file__).parent / "pdf")
    args = ap.parse_args()
    render(Article(args.article), args.out_dir)


if __name__ == "__main__":
    main()
