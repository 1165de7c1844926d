"""JATS / NLM full-text article parser (PMC ``.nxml``, PLOS and eLife ``.xml``).

One file holds one ``<article>``; :func:`parse_jats` yields exactly one
:class:`~core.schemas.Document` for it (``source_type=article``) or raises
:class:`~core.errors.ParseError`. The XML is read with a locked-down lxml parser: no entity
expansion, no network, no DTD loading, no huge-tree mode; a ``<!DOCTYPE>`` line (PMC, PLOS,
eLife all have one) is accepted but never fetched.

Section paths
    * Abstracts (``kind="abstract"``): ``("Abstract",)``; a structured abstract gives one section
      per ``<sec>``: ``("Abstract", "Background")``. A typed or titled abstract uses its title:
      ``("Author Summary",)``, ``("eLife digest",)``, else a label from ``@abstract-type``
      (``toc`` -> ``"TOC summary"``).
    * Body (``kind="body"``): nested ``<sec>`` titles, outermost first:
      ``("Results", "Efficacy")``. Paragraphs of one section are joined with a blank line; text
      before, between or after sub-sections gives one section per contiguous run of paragraphs.
      An untitled ``<sec>`` takes a label from ``@sec-type`` (``materials|methods`` ->
      ``"Materials and methods"``) or, without one, is transparent (its parent's path). Text
      outside any titled section uses ``("Main text",)`` (``("Back matter",)`` in ``<back>``).
      A trailing colon is dropped from titles (``"Background:"`` -> ``"Background"``).
    * Boxed text: its own level when titled (``("Discussion", "Box 1: Key points")``), else
      transparent. Lists: each ``<list-item>`` is one paragraph (its label kept in front); a
      list inside a ``<p>`` stays inline in that paragraph. ``<disp-quote>``, ``<fn>``,
      ``<statement>`` paragraphs are kept in place.
    * Back matter (``kind="back"``): ``("Acknowledgements",)`` for ``<ack>``; ``<sec>`` in
      ``<back>`` by title (eLife ``("Additional information", "Competing interests")``); an
      ``<fn-group>`` by its title (else ``("Footnotes",)``); ``<glossary>`` by title (else
      ``("Glossary",)``, one ``"term: definition"`` paragraph per item); funding (one
      ``"Funder: award id"`` paragraph per ``<award-group>``, then ``<funding-statement>``) as
      ``("Funding",)``. Appendices (``<app-group>/<app>``) are ``kind="body"`` with path
      ``(app title,)``, e.g. ``("Appendix 1", ...)``.

Captions (``kind="caption"``)
    Every ``<fig>``, ``<table-wrap>``, ``<supplementary-material>``, ``<media>``,
    ``<fig-group>``, ``<chem-struct-wrap>`` with caption text is one section whose path is the
    enclosing section path plus the printed label (trailing ``.``/``:`` removed), e.g.
    ``("Results", "Figure 1")``, ``("Supporting Information", "Table S2")``,
    ``("Results", "Figure 1—source data 1")``; unlabelled ones use a short caption title
    (``"Additional file 1"``) or ``"Figure"``, ``"Table"``, ``"Supplementary material"``, ...
    Text: caption title, caption paragraphs, then table footnotes (``<table-wrap-foot>``) and
    ``<attrib>``. Captions follow the paragraph run they appear in, so body paragraphs stay
    contiguous; floats nested in a caption (eLife source data) follow their parent. Floats
    outside the body (``<floats-group>``) have the bare label as path: ``("Table 1",)``.

Inline text
    Inline markup is flattened to text and whitespace collapsed. ``<xref>`` text stays as
    printed (``[12]``, ``(Smith et al., 2010)``); in titles ``<xref>`` (footnote marks) is dropped.
    Formulas: MathML made only of tokens, rows and sub/superscripts is kept as linear text
    (``θ0 = 0``); anything else (fractions, matrices, TeX, images) leaves no text.

Counted in ``Document.unsupported`` (element name -> count): every ``<inline-formula>`` and
``<disp-formula>`` (kept text or not); ``table``, ``td``, ``th`` of each table (cells are not
indexed, captions are); ``graphic``, ``inline-graphic``, ``media`` files; ``sub-article`` /
``response`` (eLife decision letters and author responses are not indexed); ``trans-abstract``;
front-matter text not indexed (``aff``, ``author-notes``, ``related-article``, ...); floats
without any caption text; references without text; entity references left unexpanded
(``&name;``); and any other element met where it is not handled. Bibliographic metadata that is
read elsewhere or has no prose (``volume``, ``history``, ``object-id``, ``article-categories``,
...) is not counted.
"""

from __future__ import annotations

import codecs
import copy
import re
from collections import Counter
from collections.abc import Iterator
from datetime import date
from typing import cast

from lxml import etree

from core.errors import ParseError
from core.ids import doc_id_for, normalize_doi, normalize_pmcid
from core.schemas import Document, Identifiers, Section, SourceType
from ingest.parsers.base import MONTHS, ParseResult, Source
from ingest.parsers.jats_references import read_references
from ingest.parsers.links import jats_mentions

_El = etree._Element

_MML = "{http://www.w3.org/1998/Math/MathML}"
_XLINK_HREF = "{http://www.w3.org/1999/xlink}href"
_ALI_LICENSE_REF = "{http://www.niso.org/schemas/ali/1.0/}license_ref"

#: Floats: indexed through their captions, after the paragraph run they sit in.
_FLOATS = frozenset(
    {
        "fig",
        "fig-group",
        "table-wrap",
        "table-wrap-group",
        "supplementary-material",
        "media",
        "chem-struct-wrap",
        "boxed-text",
    }
)
#: An unlabelled float with a caption title at most this long is named by that title.
_MAX_TITLE_LABEL = 60
_FLOAT_DEFAULT_LABEL = {
    "fig": "Figure",
    "fig-group": "Figure",
    "table-wrap": "Table",
    "table-wrap-group": "Table",
    "supplementary-material": "Supplementary material",
    "media": "Media",
    "chem-struct-wrap": "Chemical structure",
}
#: Elements that open a new section level.
_SECTIONS = frozenset({"sec", "app", "notes", "glossary", "ack", "bio"})
#: Block elements whose paragraphs belong to the enclosing section.
_INLINE_BLOCKS = frozenset(
    {"disp-quote", "fn", "statement", "speech", "verse-group", "list-item", "def"}
)
#: Single-paragraph blocks.
_PARAGRAPHS = frozenset({"p", "attrib", "verse-line", "preformat", "code", "long-desc", "address"})
#: Structure that is consumed by the walkers or is identifiers only.
_CONSUMED = frozenset({"title", "label", "object-id", "sec-meta", "ref-list", "alt-title"})
#: Front-matter bibliographic metadata: read elsewhere or not prose; not counted.
_FRONT_METADATA = frozenset(
    {
        "article-id",
        "article-categories",
        "title-group",
        "contrib-group",
        "pub-date",
        "pub-date-not-available",
        "volume",
        "volume-id",
        "issue",
        "issue-id",
        "issue-title",
        "issue-sponsor",
        "fpage",
        "lpage",
        "page-range",
        "elocation-id",
        "history",
        "counts",
        "self-uri",
        "custom-meta-group",
        "pub-history",
        "article-version",
        "article-version-alternatives",
        "isbn",
        "supplement",
        "kwd-group",
        "permissions",
        "abstract",
        "funding-group",
    }
)
#: Elements whose text is surrounded by a space when flattened (block boundaries).
_SPACED = frozenset(
    {
        "p",
        "list",
        "list-item",
        "def-list",
        "def-item",
        "term",
        "def",
        "disp-quote",
        "title",
        "label",
        "attrib",
        "fn",
        "statement",
        "caption",
        "tr",
        "td",
        "th",
        "verse-line",
        "address",
        "aff",
    }
)
#: Cross-references that are marks (footnote symbols, affiliations), dropped from titles.
_MARK_XREFS = frozenset({"fn", "table-fn", "corresp", "aff", "author-notes", "other", None})
_SIMPLE_MATH = frozenset(
    {"math", "mrow", "mi", "mn", "mo", "mtext", "ms", "mspace", "mstyle", "mpadded"}
    | {"msub", "msup", "msubsup", "mfenced", "semantics", "none"}
)
_MATH_SKIP = frozenset({"annotation", "annotation-xml"})
_SPACED_OPS = frozenset({"=", "<", ">", "≤", "≥", "≈", "≠", "±", "→"})

_ABSTRACT_LABELS = {
    "toc": "TOC summary",
    "summary": "Author summary",
    "executive-summary": "Executive summary",
    "editor": "Editors' summary",
    "editors-summary": "Editors' summary",
    "graphical": "Graphical abstract",
    "teaser": "Teaser",
    "short": "Short abstract",
}
_SEC_TYPE_WORDS = {"intro": "Introduction", "materials": "Materials", "conclusion": "Conclusions"}

#: Which ``pub-date`` to prefer (lower is better).
_DATE_RANK = {"pub": 0, "epub": 0, "ppub": 1, "epub-ppub": 1, "collection": 2, "pmc-release": 4}
_SEASONS = {"spring": 3, "summer": 6, "fall": 9, "autumn": 9, "winter": 12}

_FIRST_TAG = re.compile(rb"<([A-Za-z_][\w.:-]*)[\s/>]")
_DOCTYPE = re.compile(rb"<!DOCTYPE\s+([A-Za-z_][\w.:-]*)", re.IGNORECASE)
_COMMENT_OR_PI = re.compile(rb"<!--.*?(?:-->|$)|<\?.*?(?:\?>|$)", re.DOTALL)
_JATS_MARKERS = (
    b"JATS",
    b"//NLM//DTD",
    b"journalpublishing",
    b"archivearticle",
    b"jats.nlm.nih.gov",
    b"<front",
    b"<article-meta",
    b"<journal-meta",
)


def looks_like_jats(head: bytes) -> bool:
    """Cheap content sniff on the first ~4 KB: an ``<article>`` root plus a JATS/NLM marker."""
    head = head[:4096]
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        head = head.decode("utf-16", errors="ignore").encode("utf-8")
    head = head.removeprefix(codecs.BOM_UTF8)
    body = _COMMENT_OR_PI.sub(b"", head)
    first = _FIRST_TAG.search(body)
    if first is not None:
        root = first.group(1)
    else:  # a long DOCTYPE internal subset can push the root past the sniffed bytes
        doctype = _DOCTYPE.search(body)
        if doctype is None:
            return False
        root = doctype.group(1)
    if root.rsplit(b":", 1)[-1] != b"article":
        return False
    return any(marker in head for marker in _JATS_MARKERS)


def parse_jats(source: Source) -> Iterator[ParseResult]:
    """Parse one JATS article from ``source.data``; yields exactly one Document."""
    yield _parse(source)


# --------------------------------------------------------------------------------------------
# helpers


def _norm(text: str) -> str:
    return " ".join(text.split())


def _alltext(el: _El) -> str:
    return "".join(cast("Iterator[str]", el.itertext()))


def _plain(el: _El | None) -> str:
    """All text of ``el``, whitespace-normalised (for names and identifiers)."""
    return "" if el is None else " ".join(_alltext(el).split())


def _name(el: _El) -> str:
    """Element name as counted in ``unsupported`` (``mml:math`` for namespaced elements)."""
    tag = el.tag
    if not isinstance(tag, str):
        return "node"
    if tag.startswith("{"):
        local = tag.split("}", 1)[1]
        return f"{el.prefix}:{local}" if el.prefix else local
    return tag


def _clean_label(text: str) -> str:
    return _norm(text).rstrip(".:").strip()


def _pretty_sec_type(sec_type: str) -> str:
    words = []
    for part in sec_type.split("|"):
        part = part.strip().lower()
        if part:
            words.append(_SEC_TYPE_WORDS.get(part, part.replace("-", " ").capitalize()))
    if not words:
        return ""
    return words[0] + "".join(f" and {w.lower()}" for w in words[1:])


def _math_text(el: _El) -> str | None:
    """Linear text of simple MathML (tokens, rows, scripts); None when not simple."""
    parts: list[str] = []
    if not _math_collect(el, parts):
        return None
    return _norm("".join(parts)) or None


def _math_collect(el: _El, parts: list[str]) -> bool:
    tag = el.tag
    if not isinstance(tag, str):
        return True
    local = tag[len(_MML) :] if tag.startswith(_MML) else tag
    if local in _MATH_SKIP:
        return True
    if local not in _SIMPLE_MATH:
        return False
    if local in ("mi", "mn", "mtext", "ms"):
        parts.append(_norm(_alltext(el)))
        return True
    if local == "mo":
        op = _norm(_alltext(el))
        parts.append(f" {op} " if op in _SPACED_OPS else op)
        return True
    if local == "semantics":
        children = [c for c in el if isinstance(c.tag, str)]
        return _math_collect(children[0], parts) if children else True
    if local == "mfenced":
        seps = el.get("separators", ",").strip() or ","
        parts.append(el.get("open", "("))
        for i, child in enumerate(c for c in el if isinstance(c.tag, str)):
            if i:
                parts.append(seps[min(i - 1, len(seps) - 1)])
            if not _math_collect(child, parts):
                return False
        parts.append(el.get("close", ")"))
        return True
    return all(_math_collect(child, parts) for child in el)


def _date_of(el: _El) -> tuple[date | None, int | None]:
    year_text = _norm(el.findtext("year") or "")
    if not year_text[:4].isdigit():
        return None, None
    year = int(year_text[:4])
    month = 1
    month_text = _norm(el.findtext("month") or "").lower()
    if month_text.isdigit():
        month = int(month_text)
    elif month_text[:3] in MONTHS:
        month = MONTHS[month_text[:3]]
    else:
        season = _norm(el.findtext("season") or "").lower()
        month = next((m for s, m in _SEASONS.items() if s in season), 1)
    day_text = _norm(el.findtext("day") or "")
    day = int(day_text) if day_text.isdigit() else 1
    for y, m, d in ((year, month, day), (year, month, 1), (year, 1, 1)):
        try:
            return date(y, m, d), year
        except ValueError:
            continue
    return None, year


# --------------------------------------------------------------------------------------------
# the walker


class _Walker:
    """Collects sections and ``unsupported`` counts over one article (and reads its inline text
    for the reference list, see :mod:`ingest.parsers.jats_references`)."""

    def __init__(self) -> None:
        self.sections: list[Section] = []
        self.unsupported: Counter[str] = Counter()
        #: Path of text outside any titled section (body: "Main text", back: "Back matter").
        self.fallback: tuple[str, ...] = ("Main text",)

    # -- counting ---------------------------------------------------------------------------

    def count(self, el: _El) -> None:
        self.unsupported[_name(el)] += 1

    def count_table(self, table: _El) -> None:
        self.unsupported["table"] += 1
        for cell in table.iter("td", "th"):
            self.unsupported[cell.tag] += 1

    # -- inline text ------------------------------------------------------------------------

    def text(self, el: _El | None, *, drop_xref: bool = False) -> str:
        """Flattened, whitespace-normalised text of ``el`` (floats inside are counted)."""
        if el is None:
            return ""
        if len(el) == 0:
            return " ".join((el.text or "").split())
        out: list[str] = []
        self.inline_children(el, out, None, drop_xref=drop_xref)
        return _norm("".join(out))

    def inline_children(
        self, el: _El, out: list[str], floats: list[_El] | None, *, drop_xref: bool = False
    ) -> None:
        if el.text:
            out.append(el.text)
        for child in el:
            self.inline(child, out, floats, drop_xref=drop_xref)
            if child.tail:
                out.append(child.tail)

    def inline(
        self, el: _El, out: list[str], floats: list[_El] | None, *, drop_xref: bool = False
    ) -> None:
        tag = el.tag
        if not isinstance(tag, str):
            if isinstance(el, etree._Entity):
                self.unsupported[f"&{el.name};"] += 1
                out.append(" ")
            return  # comments and processing instructions
        if tag in _FLOATS:
            if floats is not None:
                floats.append(el)
            else:
                self.count(el)
        elif tag in ("inline-formula", "disp-formula"):
            math = self.formula(el)
            if math:
                out.append(f" {math} " if tag == "disp-formula" else math)
        elif tag == _MML + "math":
            self.count(el)
            out.append(_math_text(el) or "")
        elif tag in ("graphic", "inline-graphic", "tex-math", "private-char"):
            self.count(el)
        elif tag == "alternatives":
            self.alternatives(el, out)
        elif tag == "table":
            self.count_table(el)
        elif tag == "break":
            out.append(" ")
        elif tag == "xref" and drop_xref and el.get("ref-type") in _MARK_XREFS:
            return
        elif tag == "name":
            out.append(f" {self.person(el, citation=True)} ")
        elif tag in _SPACED:
            out.append(" ")
            self.inline_children(el, out, floats, drop_xref=drop_xref)
            out.append(" ")
        else:
            self.inline_children(el, out, floats, drop_xref=drop_xref)

    def formula(self, el: _El) -> str | None:
        """Text of a formula when simple; the formula is counted either way."""
        self.count(el)
        math = next(el.iter(_MML + "math"), None)
        if math is not None:
            return _math_text(math)
        if any(True for _ in el.iter("tex-math", "graphic", "inline-graphic")):
            return None
        out: list[str] = []
        if el.text:
            out.append(el.text)
        for child in el:
            if child.tag != "label":
                self.inline(child, out, None)
            if child.tail:
                out.append(child.tail)
        return _norm("".join(out)) or None

    def alternatives(self, el: _El, out: list[str]) -> None:
        math = next(el.iter(_MML + "math"), None)
        if math is not None:
            self.count(math)
            out.append(_math_text(math) or "")
            return
        for child in el:
            if child.tag == "table":
                self.count_table(child)
            elif isinstance(child.tag, str):
                self.count(child)

    def person(self, el: _El, *, citation: bool = False) -> str:
        """'Given Surname Suffix' (or 'Surname GN' in citations) from a ``<name>``."""
        surname = given = suffix = ""
        for part in el:
            if part.tag == "surname":
                surname = _plain(part)
            elif part.tag == "given-names":
                given = _plain(part)
            elif part.tag == "suffix":
                suffix = _plain(part)
        if not surname and not given:
            return _plain(el)
        parts = [surname, given] if citation else [given, surname]
        return " ".join(p for p in [*parts, suffix] if p)

    # -- blocks -----------------------------------------------------------------------------

    def paragraph(self, el: _El, paras: list[str], floats: list[_El]) -> None:
        out: list[str] = []
        self.inline_children(el, out, floats)
        text = _norm("".join(out))
        if text:
            paras.append(text)

    def section(self, el: _El, path: tuple[str, ...], kind: str) -> None:
        """One titled level: its own paragraph runs, floats and sub-sections."""
        paras: list[str] = []
        floats: list[_El] = []
        self.blocks(el, path, kind, paras, floats)
        self.flush(path, kind, paras, floats)

    def flush(self, path: tuple[str, ...], kind: str, paras: list[str], floats: list[_El]) -> None:
        path = path or self.fallback
        if paras:
            text = "\n\n".join(paras)
            self.sections.append(Section(path=path or ("Main text",), text=text, kind=kind))
            paras.clear()
        while floats:
            self.float_block(floats.pop(0), path, kind, floats)

    def blocks(
        self,
        el: _El,
        path: tuple[str, ...],
        kind: str,
        paras: list[str],
        floats: list[_El],
    ) -> None:
        """Add the block children of ``el`` to the current paragraph run."""
        for child in el:
            tag = child.tag
            if not isinstance(tag, str):
                if isinstance(child, etree._Entity):
                    self.unsupported[f"&{child.name};"] += 1
                continue
            if tag in _CONSUMED:
                continue
            if tag in _PARAGRAPHS:
                self.paragraph(child, paras, floats)
            elif tag in _SECTIONS or (
                tag == "fn-group" and (not path or self.text(child.find("title")))
            ):
                self.flush(path, kind, paras, floats)
                self.section(child, self.child_path(child, path), kind)
            elif tag == "app-group":
                self.flush(path, kind, paras, floats)
                self.section(child, path, "body")
            elif tag in _FLOATS:
                floats.append(child)
            elif tag == "list":
                self.list_block(child, path, kind, paras, floats)
            elif tag == "def-list":
                self.def_list(child, paras)
            elif tag in _INLINE_BLOCKS or tag in ("fn-group", "caption", "table-wrap-foot"):
                self.blocks(child, path, kind, paras, floats)
            elif tag in ("disp-formula", "disp-formula-group"):
                for formula in [child] if tag == "disp-formula" else child.iter("disp-formula"):
                    text = self.formula(formula)
                    if text:
                        paras.append(text)
            elif tag == "table":
                self.count_table(child)
            else:
                self.count(child)

    def list_block(
        self,
        el: _El,
        path: tuple[str, ...],
        kind: str,
        paras: list[str],
        floats: list[_El],
    ) -> None:
        title = self.text(el.find("title"))
        if title:
            paras.append(title)
        for item in el:
            if item.tag == "list-item":
                item_paras: list[str] = []
                self.blocks(item, path, kind, item_paras, floats)
                label = _norm(self.text(item.find("label")))
                if label and item_paras:
                    item_paras[0] = f"{label} {item_paras[0]}"
                paras.extend(item_paras)
            elif item.tag == "list":
                self.list_block(item, path, kind, paras, floats)
            elif isinstance(item.tag, str) and item.tag not in _CONSUMED:
                self.count(item)

    def def_list(self, el: _El, paras: list[str]) -> None:
        title = self.text(el.find("title"))
        if title:
            paras.append(title)
        for item in el:
            if item.tag == "def-item":
                term = self.text(item.find("term"))
                definition = " ".join(self.text(d) for d in item.findall("def"))
                text = f"{term}: {definition}" if term and definition else term or definition
                if text:
                    paras.append(text)
            elif item.tag == "def-list":
                self.def_list(item, paras)
            elif isinstance(item.tag, str) and item.tag not in _CONSUMED:
                self.count(item)

    def title(self, el: _El) -> str:
        """The ``<title>`` of ``el`` as a path component (no footnote marks, no final colon)."""
        return self.text(el.find("title"), drop_xref=True).rstrip(":").strip()

    def child_path(self, el: _El, path: tuple[str, ...]) -> tuple[str, ...]:
        tag = el.tag
        title = self.title(el)
        if tag == "ack":
            return (*path, "Acknowledgements")
        if title:
            return (*path, title)
        if tag == "app":
            return (*path, _clean_label(self.text(el.find("label"))) or "Appendix")
        if tag == "sec":
            pretty = _pretty_sec_type(el.get("sec-type") or "")
            return (*path, pretty) if pretty else path
        defaults = {"glossary": "Glossary", "notes": "Notes", "fn-group": "Footnotes"}
        return (*path, defaults[tag]) if tag in defaults and not path else path

    def float_block(self, el: _El, path: tuple[str, ...], kind: str, floats: list[_El]) -> None:
        """A figure, table, supplement or box met in a section at ``path``."""
        tag = el.tag
        if tag == "boxed-text":
            caption = el.find("caption")
            title = self.title(el) or (self.title(caption) if caption is not None else "")
            label = _clean_label(self.text(el.find("label")))
            name = f"{label}: {title}" if label and title else label or title
            self.section(el, (*path, name) if name else path, kind)
            return
        paras: list[str] = []
        nested: list[_El] = []
        title = ""
        for child in el:
            ctag = child.tag
            if not isinstance(ctag, str) or ctag in _CONSUMED:
                continue
            if ctag == "caption":
                title = self.text(child.find("title"))
                if title:
                    paras.append(title)
                self.blocks(child, path, kind, paras, nested)
            elif ctag == "media" and tag == "supplementary-material":
                self.count(child)  # the file itself; its caption is a "Click here" link
            elif ctag in ("table-wrap-foot", "attrib", "long-desc"):
                if ctag == "table-wrap-foot":
                    self.blocks(child, path, kind, paras, nested)
                else:
                    self.paragraph(child, paras, nested)
            elif ctag in _FLOATS:
                nested.append(child)
            elif ctag == "table":
                self.count_table(child)
            elif ctag == "alternatives":
                self.alternatives(child, [])
            else:
                self.count(child)
        if paras:
            label = _clean_label(self.text(el.find("label")))
            if not label:
                short_title = _clean_label(title) if len(title) <= _MAX_TITLE_LABEL else ""
                label = short_title or _FLOAT_DEFAULT_LABEL.get(str(tag), "Figure")
            text = "\n\n".join(paras)
            self.sections.append(Section(path=(*path, label), text=text, kind="caption"))
        elif tag not in ("fig-group", "table-wrap-group"):
            self.count(el)
        floats[0:0] = nested


# --------------------------------------------------------------------------------------------
# the document


def _parse(source: Source) -> Document:
    parser = etree.XMLParser(
        resolve_entities=False, no_network=True, huge_tree=False, recover=False, load_dtd=False
    )
    try:
        root = etree.fromstring(source.data, parser)
    except etree.XMLSyntaxError as exc:
        raise ParseError(source.name, f"malformed XML: {exc}") from exc
    except ValueError as exc:
        raise ParseError(source.name, f"malformed XML: {exc}") from exc
    if root.tag != "article":
        raise ParseError(source.name, f"not a JATS article: root element is <{_name(root)}>")

    walker = _Walker()
    meta = root.find("front/article-meta")
    if meta is None:
        raise ParseError(source.name, "no article-title (no front/article-meta)")
    title = walker.text(meta.find("title-group/article-title"), drop_xref=True)
    if not title:
        raise ParseError(source.name, "no article-title")

    # Abstracts and body.
    for abstract in meta.findall("abstract"):
        label = walker.title(abstract)
        if not label:
            kind = (abstract.get("abstract-type") or "").strip()
            label = _ABSTRACT_LABELS.get(kind, kind.replace("-", " ").capitalize()) or "Abstract"
        walker.section(abstract, (label,), "abstract")
    body = root.find("body")
    if body is not None:
        walker.section(body, (), "body")
    walker.fallback = ()  # floats outside the body are named by their label alone
    for floats_group in root.findall("floats-group"):
        walker.section(floats_group, (), "body")
    if not walker.sections:
        raise ParseError(source.name, "no abstract or body text")

    # Back matter.
    references = read_references((body, root.find("back")), walker)
    back = root.find("back")
    if back is not None:
        walker.fallback = ("Back matter",)
        walker.section(back, (), "back")
    funding = _funding(meta, walker)
    if funding:
        walker.sections.append(Section(path=("Funding",), text="\n\n".join(funding), kind="back"))

    # Anything else at the top level.
    for child in root:
        if isinstance(child.tag, str) and child.tag not in (
            "front",
            "body",
            "back",
            "floats-group",
        ):
            walker.count(child)
    for child in meta:
        if isinstance(child.tag, str) and child.tag not in _FRONT_METADATA:
            walker.count(child)

    identifiers = _identifiers(meta)
    pub_date, year = _pub_date(meta)
    if year is None:
        copyright_year = _norm(meta.findtext("permissions/copyright-year") or "")
        year = int(copyright_year[:4]) if copyright_year[:4].isdigit() else None

    return Document(
        doc_id=doc_id_for(identifiers, source.data),
        source_type=SourceType.ARTICLE,
        title=title,
        identifiers=identifiers,
        sections=walker.sections,
        journal=_journal(root, walker),
        pub_date=pub_date,
        year=year,
        authors=_authors(meta, walker),
        license=_license(meta, walker),
        keywords=_keywords(meta, walker),
        references=references,
        links=jats_mentions(root),
        source_path=source.name,
        unsupported=dict(sorted(walker.unsupported.items())),
    )


def _funding(meta: _El, walker: _Walker) -> list[str]:
    """One line per award ('Source: award id') then the funding statements."""
    lines: list[str] = []
    for award in meta.iter("award-group"):
        sources = []
        for source in award.iter("funding-source"):
            out: list[str] = []
            walker.inline_children(_without(source, "institution-id"), out, None)
            if _norm("".join(out)):
                sources.append(_norm("".join(out)))
        ids = [walker.text(a) for a in award.iter("award-id")]
        line = "; ".join(sources)
        if any(ids):
            line = f"{line}: {', '.join(i for i in ids if i)}" if line else ", ".join(ids)
        if line and line not in lines:
            lines.append(line)
    for statement in meta.iter("funding-statement"):
        text = walker.text(statement)
        if text and text not in lines:
            lines.append(text)
    return lines


def _without(el: _El, drop: str) -> _El:
    """A copy of ``el`` without its ``drop`` descendants (tails kept)."""
    clone = copy.deepcopy(el)
    for child in list(clone.iter(drop)):
        parent = child.getparent()
        if parent is not None:
            tail = child.tail or ""
            previous = child.getprevious()
            if previous is not None:
                previous.tail = (previous.tail or "") + tail
            else:
                parent.text = (parent.text or "") + tail
            parent.remove(child)
    return clone


def _identifiers(meta: _El) -> Identifiers:
    pmcid = pmid = doi = None
    for aid in meta.findall("article-id"):
        kind = (aid.get("pub-id-type") or "").lower()
        value = _norm(_alltext(aid))
        if kind in ("pmc", "pmcid") and pmcid is None:
            pmcid = normalize_pmcid(value)
        elif kind == "pmid" and pmid is None and value.isascii() and value.isdigit():
            pmid = value
        elif kind == "doi" and doi is None:
            doi = normalize_doi(value)
    return Identifiers(pmcid=pmcid, pmid=pmid, doi=doi)


def _pub_date(meta: _El) -> tuple[date | None, int | None]:
    best: tuple[int, int, date | None, int | None] | None = None
    for el in meta.findall("pub-date"):
        kind = el.get("date-type") or el.get("pub-type") or ""
        rank = _DATE_RANK.get(kind, 3)
        parsed, year = _date_of(el)
        if year is None:
            continue
        precision = sum(1 for part in ("year", "month", "day") if el.find(part) is not None)
        key = (rank, -precision, parsed, year)
        if best is None or key[:2] < best[:2]:
            best = key
    return (best[2], best[3]) if best else (None, None)


def _journal(root: _El, walker: _Walker) -> str | None:
    journal_meta = root.find("front/journal-meta")
    if journal_meta is None:
        return None
    title = walker.text(next(journal_meta.iter("journal-title"), None))
    if title:
        return title
    for jid in journal_meta.findall("journal-id"):
        if jid.get("journal-id-type") == "nlm-ta":
            return walker.text(jid) or None
    return None


def _authors(meta: _El, walker: _Walker) -> list[str]:
    authors: list[str] = []
    for contrib in [*meta.findall("contrib-group/contrib"), *meta.findall("contrib")]:
        if (contrib.get("contrib-type") or "").strip().lower() != "author":
            continue
        name = contrib.find("name")
        if name is None:
            name = contrib.find("name-alternatives/name")
        if name is not None:
            author = walker.person(name)
        elif contrib.find("string-name") is not None:
            author = walker.text(contrib.find("string-name"))
        elif contrib.find("collab") is not None:
            author = _collab_name(contrib.find("collab"), walker)
        else:
            continue
        if author:
            authors.append(author)
    return authors


def _collab_name(collab: _El | None, walker: _Walker) -> str:
    """A group author's own name, without its nested member list or footnote marks."""
    if collab is None:
        return ""
    out: list[str] = [collab.text or ""]
    for child in collab:
        if child.tag not in ("contrib-group", "xref", "address", "aff"):
            walker.inline(child, out, None)
        out.append(child.tail or "")
    return _norm("".join(out))


def _license(meta: _El, walker: _Walker) -> str | None:
    permissions = meta.find("permissions")
    if permissions is None:
        return None
    ali = next(permissions.iter(_ALI_LICENSE_REF), None)
    if ali is not None and _norm(_alltext(ali)):
        return _norm(_alltext(ali))
    for lic in permissions.findall("license"):
        href = _norm(lic.get(_XLINK_HREF) or "")
        if href:
            return href
        for link in lic.iter("ext-link", "uri"):
            url = _norm(link.get(_XLINK_HREF) or _alltext(link))
            if "creativecommons.org" in url:
                return url
        text = walker.text(lic)
        if text:
            return text
    return None


def _keywords(meta: _El, walker: _Walker) -> list[str]:
    keywords: list[str] = []
    for group in meta.iter("kwd-group"):
        organisms = group.get("kwd-group-type") == "research-organism"
        for kwd in group.iter("kwd"):
            text = walker.text(kwd)
            if organisms and text.lower() in ("other", "none"):
                continue  # eLife's placeholder when no model organism applies
            if text and text not in keywords:
                keywords.append(text)
    return keywords
