"""The reference list of a JATS article: one :class:`~core.schemas.Reference` per ``<ref>``.

A reference's text is its mixed citation as printed (spaces between parts tidied), or, for a
structured ``<element-citation>``, a Vancouver-like line built from its fields: ``Authors (year)
Title. In: Editors, editors. Source vol(issue): pages. Rest.``. Of ``<citation-alternatives>`` the
first is read. DOI and PMID come from ``<pub-id>``/``<object-id>``/``<ext-link>``, else a DOI
found in the text. A ``<ref>`` without text is counted as unsupported, not kept; the first
``<ref>`` of each id wins.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Protocol, cast

from lxml import etree

from core.ids import find_doi, normalize_doi
from core.schemas import Reference

_El = etree._Element

_XLINK_HREF = "{http://www.w3.org/1999/xlink}href"
_CITATION_FIELDS = frozenset(
    {"year", "article-title", "chapter-title", "source", "volume", "issue", "fpage", "lpage"}
    | {"elocation-id"}
)
_CITATIONS = frozenset({"mixed-citation", "element-citation", "nlm-citation", "citation"})
_CITE_OPEN = re.compile(r"([(\[])\s+")
_CITE_CLOSE = re.compile(r"\s+([)\].,;:])")
_CITE_RANGE = re.compile("(\\d)\\s*([\u2013-])\\s*(\\d)")


class InlineReader(Protocol):
    """What reading citations needs from the article walker: inline text as the body has it."""

    def text(self, el: _El | None, *, drop_xref: bool = False) -> str:
        """Flattened, whitespace-normalised text of ``el``."""
        ...

    def inline(
        self, el: _El, out: list[str], floats: list[_El] | None, *, drop_xref: bool = False
    ) -> None:
        """Append the inline text of ``el`` to ``out``."""
        ...

    def count(self, el: _El) -> None:
        """Count ``el`` as not indexed."""
        ...

    def person(self, el: _El, *, citation: bool = False) -> str:
        """A person's name from a ``<name>``."""
        ...


def read_references(parts: Iterable[_El | None], reader: InlineReader) -> list[Reference]:
    """The references of every ``<ref>`` in ``parts`` (body, back), the first of each id kept."""
    references: list[Reference] = []
    seen_refs: set[str] = set()
    for part in parts:
        for ref in part.iter("ref") if part is not None else ():
            reference = _reference(reader, ref, len(seen_refs) + 1)
            if reference is not None and reference.ref_id not in seen_refs:
                seen_refs.add(reference.ref_id)
                references.append(reference)
    return references


def _reference(reader: InlineReader, ref: _El, index: int) -> Reference | None:
    ref_id = ref.get("id") or f"ref-{index}"
    label = reader.text(ref.find("label")) or None
    citations: list[_El] = []
    for child in ref:
        if child.tag in _CITATIONS:
            citations.append(child)
        elif child.tag == "citation-alternatives":
            citations.extend([c for c in child if c.tag in _CITATIONS][:1])
    texts = [_citation_text(reader, c) for c in citations]
    text = " ".join(t for t in texts if t)
    if not text:
        reader.count(ref)
        return None
    doi: str | None = None
    pmid: str | None = None
    for el in ref.iter("pub-id", "object-id", "ext-link"):
        kind = (el.get("pub-id-type") or el.get("ext-link-type") or "").lower()
        value = _squeeze("".join(cast("Iterable[str]", el.itertext())))
        if kind == "doi" and doi is None:
            doi = normalize_doi(value) or normalize_doi(el.get(_XLINK_HREF) or "")
        elif kind == "pmid" and pmid is None and value.isdigit():
            pmid = value
    if doi is None and "10." in text:
        doi = find_doi(text)
    return Reference(ref_id=ref_id, label=label, text=text, doi=doi, pmid=pmid)


def _citation_text(reader: InlineReader, el: _El) -> str:
    if (el.text and el.text.strip()) or any((c.tail or "").strip() for c in el):
        out: list[str] = []
        if el.text:
            out.append(el.text)
        for child in el:
            if child.tag not in ("object-id", "pub-id", "label"):
                out.append(" ")
                reader.inline(child, out, None)
                out.append(" ")
            if child.tail:
                out.append(child.tail)
        return _tidy_citation("".join(out))
    return _structured_citation(reader, el)


def _structured_citation(reader: InlineReader, el: _El) -> str:
    """'Authors (year) Title. Source vol(issue): pages. Rest.' from an element-citation."""
    authors: list[str] = []
    editors: list[str] = []
    fields: dict[str, str] = {}
    rest: list[str] = []
    groups = el.findall("person-group")
    for i, group in enumerate(groups or [el]):
        names = authors if i == 0 and group.get("person-group-type") != "editor" else editors
        for person in group:
            if person.tag == "name":
                names.append(reader.person(person, citation=True))
            elif person.tag in ("collab", "string-name"):
                names.append(reader.text(person))
            elif person.tag == "etal":
                names.append("et al.")
    for child in el:
        tag = child.tag
        if not isinstance(tag, str) or tag in (
            "person-group",
            "name",
            "collab",
            "string-name",
            "etal",
            "pub-id",
            "object-id",
        ):
            continue
        value = reader.text(child)
        if not value:
            continue
        if tag in _CITATION_FIELDS:
            fields.setdefault(tag, value)
        else:
            rest.append(value)
    head = ", ".join(authors)
    year = fields.get("year", "")
    if year:
        head = f"{head} ({year})" if head else year
    pieces = [head, fields.get("article-title") or fields.get("chapter-title", "")]
    if editors:
        pieces.append("In: " + ", ".join(editors) + ", editors")
    source = fields.get("source", "")
    volume = fields.get("volume", "")
    if fields.get("issue"):
        volume += f"({fields['issue']})"
    pages = fields.get("fpage", "")
    if pages and fields.get("lpage"):
        pages += f"\u2013{fields['lpage']}"
    pages = pages or fields.get("elocation-id", "")
    where = " ".join(p for p in (source, volume) if p)
    if pages:
        where = f"{where}: {pages}" if where else pages
    pieces.append(where)
    pieces.extend(rest)
    text = ""
    for piece in pieces:
        piece = piece.rstrip(". ")
        if piece and text:
            text = f"{text} {piece}" if text[-1] in "?!" else f"{text}. {piece}"
        elif piece:
            text = piece
    return f"{text}." if text and text[-1] not in "?!" else text


def _squeeze(text: str) -> str:
    return " ".join(text.split())


def _tidy_citation(text: str) -> str:
    """Spaces inserted between citation parts, removed again inside brackets and ranges."""
    text = _CITE_OPEN.sub(_group1, _squeeze(text))
    text = _CITE_CLOSE.sub(_group1, text)
    return _CITE_RANGE.sub(_range, text)


def _group1(m: re.Match[str]) -> str:
    return m.group(1)


def _range(m: re.Match[str]) -> str:
    return m.group(1) + m.group(2) + m.group(3)
