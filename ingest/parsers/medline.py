"""MEDLINE / PubMed citation XML: one abstract :class:`~core.schemas.Document` per citation.

Reads ``PubmedArticleSet`` (PubMed E-utilities and the current baseline), the older
``MedlineCitationSet`` (baseline files up to 2016, bare ``MedlineCitation`` elements) and a file
that is a single ``PubmedArticle`` or ``MedlineCitation``. The XML is streamed with a parser that
never loads the declared DTD, never resolves entities and never touches the network.

Per citation: ``doc_id`` ``pmid:<PMID>``; title from ``ArticleTitle``; one section per
``AbstractText`` (``("Abstract", Label)`` when labelled, consecutive unlabelled texts together
under ``("Abstract",)``); a citation without an abstract gets its title as a ``("Title",)``
section and ``unsupported["no_abstract"] = 1``. A citation without a PMID, or one that fails,
becomes a :class:`RecordFailure` and the others still come through; XML that is not well-formed
raises :class:`ParseError` where it breaks (citations before that point have been yielded).
"""

from __future__ import annotations

import gzip
import io
import re
import zlib
from collections.abc import Iterable, Iterator
from datetime import date

from lxml import etree

from core.errors import ParseError
from core.ids import doc_id_for, normalize_doi, normalize_nct, normalize_pmcid
from core.schemas import Document, Identifiers, LinkMention, Section, SourceType
from ingest.parsers.base import MONTHS, ParseResult, RecordFailure, Source
from ingest.parsers.links import merged, nct_mentions

__all__ = ["looks_like_medline", "parse_medline"]

_GZIP_MAGIC = b"\x1f\x8b"
_ROOT_MARKERS = (b"<PubmedArticleSet", b"<PubmedArticle", b"<MedlineCitation")
_ROOT_TAGS = frozenset(
    {"PubmedArticleSet", "PubmedArticle", "MedlineCitationSet", "MedlineCitation"}
)
_YEAR_RE = re.compile(r"\b(1[89]\d{2}|2\d{3})\b")
_WS_RE = re.compile(r"\s+")


def looks_like_medline(head: bytes) -> bool:
    """True when the first bytes (gzip-compressed or not) open a MEDLINE / PubMed XML file."""
    if head[:2] == _GZIP_MAGIC:
        try:
            # A truncated head cannot be fully decompressed; take what the stream gives.
            head = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(head, 4096)
        except zlib.error:
            return False
    return any(marker in head[:4096] for marker in _ROOT_MARKERS)


def _text(elem: etree._Element | None) -> str:
    """All text under ``elem`` (inline markup such as <i>, <sub> flattened), spaces collapsed."""
    if elem is None:
        return ""
    return _WS_RE.sub(" ", "".join(_flatten(elem))).strip()


def _flatten(elem: etree._Element) -> list[str]:
    """Text pieces of ``elem`` in document order.

    Pretty-printing whitespace (containing a line break) right before a <sub> or <sup> is
    dropped, so that ``β\\n<sub>2</sub>-agonist`` reads ``β2-agonist``.
    """
    parts = [elem.text or ""]
    for child in elem:
        if isinstance(child.tag, str):
            if child.tag in ("sub", "sup") and "\n" in parts[-1][len(parts[-1].rstrip()) :]:
                parts[-1] = parts[-1].rstrip()
            parts.extend(_flatten(child))
        parts.append(child.tail or "")
    return parts


def _child_text(parent: etree._Element | None, path: str) -> str:
    return _text(parent.find(path)) if parent is not None else ""


def _month(raw: str) -> int | None:
    raw = raw.strip().lower()
    if raw.isdigit():
        return int(raw) if 1 <= int(raw) <= 12 else None
    return MONTHS.get(raw) or MONTHS.get(raw[:3])


def _pub_date(pub: etree._Element | None) -> tuple[int | None, date | None]:
    """(year, first day of the publication date) from a PubDate or ArticleDate element."""
    if pub is None:
        return None, None
    year_text = _child_text(pub, "Year")
    if not year_text:
        m = _YEAR_RE.search(_child_text(pub, "MedlineDate"))  # '1998 Dec-1999 Jan'
        return (int(m.group(1)), date(int(m.group(1)), 1, 1)) if m else (None, None)
    if not year_text.isdigit():
        return None, None
    year = int(year_text)
    season = re.split(r"[-/ ]", _child_text(pub, "Season"))[0]  # 'May-Jun'; 'Winter' gives none
    month = _month(_child_text(pub, "Month")) or _month(season) or 1
    day_text = _child_text(pub, "Day")
    day = int(day_text) if day_text.isdigit() else 1
    try:
        return year, date(year, month, day)
    except ValueError:
        try:
            return year, date(year, month, 1)
        except ValueError:
            return year, None


def _authors(article: etree._Element | None) -> list[str]:
    if article is None:
        return []
    names: list[str] = []
    for author in article.iterfind("AuthorList/Author"):
        if author.get("ValidYN") == "N":
            continue
        collective = _child_text(author, "CollectiveName")
        if collective:
            names.append(collective)
            continue
        last = _child_text(author, "LastName")
        first = _child_text(author, "ForeName") or _child_text(author, "Initials")
        name = f"{first} {last}".strip()
        if name:
            names.append(name)
    return names


def _dedupe(values: Iterable[str]) -> list[str]:
    seen: set[str] = set()
    out: list[str] = []
    for value in values:
        key = value.lower()
        if value and key not in seen:
            seen.add(key)
            out.append(value)
    return out


def _identifiers(
    pmid: str, citation: etree._Element, pubmed_data: etree._Element | None
) -> Identifiers:
    doi: str | None = None
    pmcid: str | None = None
    if pubmed_data is not None:
        # Only the article's own id list: PubmedData/ReferenceList holds the cited works' ids.
        for aid in pubmed_data.iterfind("ArticleIdList/ArticleId"):
            kind = (aid.get("IdType") or "").lower()
            if kind == "doi" and doi is None:
                doi = normalize_doi(_text(aid))
            elif kind == "pmc" and pmcid is None:
                pmcid = normalize_pmcid(_text(aid))
    if doi is None:
        for loc in citation.iterfind("Article/ELocationID"):
            if (loc.get("EIdType") or "").lower() == "doi" and loc.get("ValidYN") != "N":
                doi = normalize_doi(_text(loc))
                if doi:
                    break
    if pmcid is None:
        for other in citation.iterfind("OtherID"):
            token = _text(other).split(" ")[0]
            if token.upper().startswith("PMC"):
                pmcid = normalize_pmcid(token)
                if pmcid:
                    break
    return Identifiers(pmid=pmid, doi=doi, pmcid=pmcid)


def _links(article: etree._Element | None) -> list[LinkMention]:
    """The trials a citation names: its ``DataBankList`` ClinicalTrials.gov accession numbers
    (the NLM's record of the trial it reports), then NCT numbers in its abstract."""
    if article is None:
        return []
    out: list[LinkMention] = []
    for bank in article.iterfind("DataBankList/DataBank"):
        name = _child_text(bank, "DataBankName").lower().replace(" ", "")
        if name != "clinicaltrials.gov":
            continue
        for acc in bank.iterfind("AccessionNumberList/AccessionNumber"):
            nct = normalize_nct(_text(acc))
            if nct:
                out.append(
                    LinkMention(
                        kind="nct",
                        value=nct,
                        relation="registration",
                        source="medline-databank",
                        where="DataBankList",
                    )
                )
    for abstract_text in article.iterfind("Abstract/AbstractText"):
        label = _WS_RE.sub(" ", abstract_text.get("Label") or "").strip()
        # an abstract names the trial it reports (as in JATS); measured in docs/links.md
        out += nct_mentions(
            _text(abstract_text),
            source="medline-abstract",
            where=f"Abstract > {label}" if label else "Abstract",
            registration=True,
        )
    return merged(out)


def _abstract_sections(article: etree._Element | None) -> list[Section]:
    sections: list[Section] = []
    if article is None:
        return sections
    paths: list[tuple[str, ...]] = []
    texts: list[list[str]] = []
    for abstract_text in article.iterfind("Abstract/AbstractText"):
        text = _text(abstract_text)
        if not text:
            continue
        label = _WS_RE.sub(" ", abstract_text.get("Label") or "").strip()
        path: tuple[str, ...] = ("Abstract", label) if label else ("Abstract",)
        if paths and paths[-1] == path:
            texts[-1].append(text)
        else:
            paths.append(path)
            texts.append([text])
    for path, paragraphs in zip(paths, texts, strict=True):
        sections.append(Section(path=path, text="\n\n".join(paragraphs), kind="abstract"))
    return sections


def _document(
    source: Source, pmid: str, citation: etree._Element, pubmed_data: etree._Element | None
) -> Document:
    article = citation.find("Article")
    title = _child_text(article, "ArticleTitle") or _child_text(article, "VernacularTitle")
    sections = _abstract_sections(article)
    unsupported: dict[str, int] = {}
    n_other = len(citation.findall("OtherAbstract"))
    if n_other:
        unsupported["OtherAbstract"] = n_other
    if not sections:
        if not title:
            raise ValueError("neither title nor abstract")
        sections = [Section(path=("Title",), text=title, kind="abstract")]
        unsupported["no_abstract"] = 1
    journal = article.find("Journal") if article is not None else None
    year, pub_date = _pub_date(
        journal.find("JournalIssue/PubDate") if journal is not None else None
    )
    if year is None and article is not None:
        year, pub_date = _pub_date(article.find("ArticleDate"))
    keywords = _dedupe(
        [_text(k) for k in citation.iterfind("KeywordList/Keyword")]
        + [_text(d) for d in citation.iterfind("MeshHeadingList/MeshHeading/DescriptorName")]
    )
    ids = _identifiers(pmid, citation, pubmed_data)
    return Document(
        doc_id=doc_id_for(ids, prefer="pmid"),
        source_type=SourceType.ABSTRACT,
        title=title,
        identifiers=ids,
        sections=sections,
        journal=_child_text(journal, "Title") or _child_text(journal, "ISOAbbreviation") or None,
        pub_date=pub_date,
        year=year,
        authors=_authors(article),
        keywords=keywords,
        links=_links(article),
        source_path=source.name,
        unsupported=unsupported,
    )


def _record(source: Source, index: int, elem: etree._Element) -> ParseResult:
    """One citation: a PubmedArticle (MedlineCitation + PubmedData) or a bare MedlineCitation."""
    if elem.tag == "PubmedArticle":
        citation = elem.find("MedlineCitation")
        pubmed_data = elem.find("PubmedData")
    else:
        citation, pubmed_data = elem, None
    if citation is None:
        return RecordFailure(source.name, f"citation #{index}", "no MedlineCitation")
    pmid = _child_text(citation, "PMID")
    if not pmid:
        return RecordFailure(source.name, f"citation #{index}", "no PMID")
    try:
        return _document(source, pmid, citation, pubmed_data)
    except Exception as exc:  # one bad citation must not lose the others
        return RecordFailure(source.name, f"PMID {pmid}", f"{type(exc).__name__}: {exc}")


def _xml_bytes(source: Source) -> bytes:
    data = source.data
    if data[:2] == _GZIP_MAGIC:
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as exc:
            raise ParseError(source.name, f"corrupt gzip data: {exc}") from exc
    if not data.strip():
        raise ParseError(source.name, "empty file")
    return data


def parse_medline(source: Source) -> Iterator[ParseResult]:
    """Yield a Document (or a RecordFailure) per citation of a MEDLINE / PubMed XML file."""
    data = _xml_bytes(source)
    events = etree.iterparse(
        io.BytesIO(data),
        events=("end",),
        tag=("PubmedArticle", "MedlineCitation", "PubmedBookArticle"),
        load_dtd=False,
        dtd_validation=False,
        resolve_entities=False,
        no_network=True,
        remove_comments=True,
        remove_pis=True,
        huge_tree=True,
    )
    index = 0
    try:
        for _event, elem in events:
            parent = elem.getparent()
            if (
                elem.tag == "MedlineCitation"
                and parent is not None
                and parent.tag == "PubmedArticle"
            ):
                continue  # handled with its PubmedArticle
            index += 1
            if elem.tag == "PubmedBookArticle":
                yield RecordFailure(
                    source.name, f"citation #{index}", "PubmedBookArticle not supported"
                )
            else:
                yield _record(source, index, elem)
            # Free what has been read: the element and the siblings before it.
            elem.clear()
            if parent is not None:
                while elem.getprevious() is not None:
                    del parent[0]
    except etree.XMLSyntaxError as exc:
        raise ParseError(source.name, f"malformed XML: {exc}") from exc
    root = events.root
    if index == 0 and (root is None or root.tag not in _ROOT_TAGS):
        found = root.tag if root is not None else "nothing"
        raise ParseError(source.name, f"not MEDLINE/PubMed XML (root element {found})")
