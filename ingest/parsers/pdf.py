"""Full text of a research-paper PDF, one :class:`~core.schemas.Section` per page and heading.

pypdf gives the text of a page as lines in content-stream order, with no paragraph breaks and no
font information we rely on. Plain-text heuristics turn that into sections:

* **Running headers and footers** (journal line, page numbers, "Downloaded from ...") are lines
  that, with digits normalised, recur near the top or bottom of at least half of the pages (or of
  half of the odd or even pages, since journals alternate them); see :func:`strip_running_lines`.
* **Headings** are lines that are exactly one of the usual section names (Introduction, Results,
  Materials and methods, References ...), optionally numbered; letters only are compared, so
  ``REFERENCESANDNOTES`` and ``A c kno wledg ements`` are found too. Text before the first heading
  is filed under ``("Page N",)``. Every section keeps its ``page``.
* **References** are dropped from their heading up to the next recognised heading (Acknowledgements,
  Funding ... follow them in some journals); the dropped lines are counted in
  ``Document.unsupported["references_lines"]``. Should that drop most of the text, the heading
  was not the closing reference list and nothing is dropped.
* **Paragraphs** end at a blank line, before a figure/table caption, or after a line that ends a
  sentence and is clearly shorter than the page's usual line. Lines of a paragraph are joined,
  de-hyphenating ``immuno-`` + ``genicity`` (lower-case letter, hyphen, then a lower-case letter)
  unless the document elsewhere spells the hyphenated compound and never the joined word.
"""

from __future__ import annotations

import html
import io
import itertools
import logging
import math
import re
import threading
import unicodedata
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from pathlib import PurePosixPath
from urllib.parse import unquote

from pypdf import PasswordType, PdfReader
from pypdf.errors import DependencyError, FileNotDecryptedError, PyPdfError

from core.errors import ParseError
from core.ids import doc_id_for, find_doi, normalize_doi
from core.schemas import Document, Identifiers, Section, SourceType
from ingest.parsers.base import MONTHS, ParseResult, Source
from ingest.parsers.links import section_mentions

__all__ = [
    "detect_heading",
    "join_lines",
    "looks_like_pdf",
    "parse_pdf",
    "split_paragraphs",
    "strip_running_lines",
]

# --------------------------------------------------------------------------------------------
# pypdf logging: it warns (through the "pypdf" logger) about every recoverable oddity of a file.


_LOG_LOCK = threading.Lock()
_LOG_USERS = 0
_LOG_SAVED_LEVEL = logging.NOTSET


@contextmanager
def _quiet_pypdf() -> Iterator[None]:
    """Raise the pypdf logger to ERROR while any parse runs; errors still get through."""
    global _LOG_USERS, _LOG_SAVED_LEVEL
    logger = logging.getLogger("pypdf")
    with _LOG_LOCK:
        if _LOG_USERS == 0:
            _LOG_SAVED_LEVEL = logger.level
            logger.setLevel(max(logging.ERROR, logger.level))
        _LOG_USERS += 1
    try:
        yield
    finally:
        with _LOG_LOCK:
            _LOG_USERS -= 1
            if _LOG_USERS == 0:
                logger.setLevel(_LOG_SAVED_LEVEL)


# --------------------------------------------------------------------------------------------
# Text clean-up


_CHAR_MAP = str.maketrans(
    {
        "\ufb00": "ff",
        "\ufb01": "fi",
        "\ufb02": "fl",
        "\ufb03": "ffi",
        "\ufb04": "ffl",
        "\ufb05": "ft",
        "\ufb06": "st",
        "\u00a0": " ",  # no-break space
        "\u2007": " ",  # figure space
        "\u202f": " ",  # narrow no-break space
        "\u2010": "-",  # hyphen
        "\u2011": "-",  # non-breaking hyphen
        "\t": " ",
    }
)
_CONTROL_RE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_SPACES_RE = re.compile(r" {2,}")
#: Springer Nature prints this invisible line on every first page.
_JUNK_LINE_RE = re.compile(r"^[\d():,;\s]*1234567890[\d():,;\s]*$")


def _clean_line(line: str) -> str:
    line = _CONTROL_RE.sub("", line.translate(_CHAR_MAP))
    return _SPACES_RE.sub(" ", line).strip()


# --------------------------------------------------------------------------------------------
# Running headers and footers


_DIGITS_RE = re.compile(r"\d+")
_WS_RE = re.compile(r"\s+")
_LETTERS_RE = re.compile(r"[^\W\d_]")


def _running_key(line: str) -> str:
    """The line with digit runs as '#', whitespace collapsed, lower-cased."""
    return _WS_RE.sub(" ", _DIGITS_RE.sub("#", line)).strip().lower()


def _zone_indices(lines: Sequence[str], zone: int) -> set[int]:
    """Indices of the first and last ``zone`` non-blank lines."""
    nonblank = [i for i, s in enumerate(lines) if s.strip()]
    return set(nonblank[:zone]) | set(nonblank[-zone:] if zone else [])


def strip_running_lines(
    pages: list[list[str]], *, zone: int = 4, min_ratio: float = 0.5
) -> list[list[str]]:
    """Remove running headers/footers from ``pages`` (each a list of lines); returns new lists.

    A line is running when its key (digits as '#', whitespace collapsed, case folded) is among
    the first or last ``zone`` non-blank lines of at least ``min_ratio`` of all pages (at least 2
    pages), or of the odd or the even pages alone (at least 3 pages: journals alternate left and
    right headers). Such lines are removed from the top and bottom zones of every page, and
    anywhere on a page when the key has 8 or more letters (a journal line that the PDF happens to
    draw mid-page); a bare page number is only removed near the edges. Blank lines are kept.
    """
    n = len(pages)
    if n < 2:
        return [list(p) for p in pages]
    zones = [_zone_indices(p, zone) for p in pages]
    overall: Counter[str] = Counter()
    by_parity: tuple[Counter[str], Counter[str]] = (Counter(), Counter())
    for number, (lines, idx) in enumerate(zip(pages, zones, strict=True), start=1):
        keys = {_running_key(lines[i]) for i in idx}
        overall.update(keys)
        by_parity[number % 2].update(keys)
    running = {k for k, c in overall.items() if c >= max(2, math.ceil(min_ratio * n))}
    for parity, counter in enumerate(by_parity):
        group = sum(1 for number in range(1, n + 1) if number % 2 == parity)
        need = max(3, math.ceil(min_ratio * group))
        running |= {k for k, c in counter.items() if c >= need}
    running.discard("")
    if not running:
        return [list(p) for p in pages]
    distinctive = {k for k in running if len(_LETTERS_RE.findall(k)) >= 8}
    out: list[list[str]] = []
    for lines, idx in zip(pages, zones, strict=True):
        kept: list[str] = []
        for i, line in enumerate(lines):
            key = _running_key(line)
            if key in distinctive or (i in idx and key in running):
                continue
            kept.append(line)
        out.append(kept)
    return out


# --------------------------------------------------------------------------------------------
# Headings


_HEADINGS: dict[str, str] = {
    "abstract": "Abstract",
    "summary": "Summary",
    "introduction": "Introduction",
    "background": "Background",
    "results": "Results",
    "resultsanddiscussion": "Results and discussion",
    "discussion": "Discussion",
    "conclusion": "Conclusion",
    "conclusions": "Conclusions",
    "discussionandconclusions": "Discussion and conclusions",
    "methods": "Methods",
    "materialsandmethods": "Materials and methods",
    "materialandmethods": "Materials and methods",
    "methodsandmaterials": "Materials and methods",
    "experimentalprocedures": "Experimental procedures",
    "experimentalsection": "Experimental section",
    "starmethods": "STAR methods",
    "onlinemethods": "Methods",
    "references": "References",
    "referencesandnotes": "References",
    "bibliography": "References",
    "literaturecited": "References",
    "acknowledgements": "Acknowledgements",
    "acknowledgments": "Acknowledgements",
    "acknowledgement": "Acknowledgements",
    "acknowledgment": "Acknowledgements",
    "funding": "Funding",
    "dataavailability": "Data availability",
    "dataavailabilitystatement": "Data availability",
    "availabilityofdataandmaterials": "Data availability",
    "codeavailability": "Code availability",
    "authorcontributions": "Author contributions",
    "authorscontributions": "Author contributions",
    "competinginterests": "Competing interests",
    "conflictofinterest": "Conflict of interest",
    "conflictsofinterest": "Conflict of interest",
    "conflictofintereststatement": "Conflict of interest",
    "declarationofinterests": "Conflict of interest",
    "declarations": "Declarations",
    "additionalinformation": "Additional information",
    "supplementaryinformation": "Supplementary information",
    "supplementarymaterial": "Supplementary material",
    "supplementarymaterials": "Supplementary material",
    "supplementarydata": "Supplementary data",
    "abbreviations": "Abbreviations",
    "reportingsummary": "Reporting summary",
}
_REFERENCES = "References"
_NUMBERING_RE = re.compile(r"^\s*(?:\d+(?:\.\d+)*\.?|[IVX]+\.)\s*")
_NON_LETTERS_RE = re.compile(r"[^a-z]")


def detect_heading(line: str) -> str | None:
    """The canonical name when ``line`` is a bare known heading ('2. Results'), else None."""
    if not line.strip() or len(line) > 60:
        return None
    key = _NON_LETTERS_RE.sub("", _NUMBERING_RE.sub("", line).lower())
    return _HEADINGS.get(key)


# --------------------------------------------------------------------------------------------
# Paragraphs and de-hyphenation


_CAPTION_RE = re.compile(
    r"^(?:Extended Data |Supplementary )?(?:Fig\.?|Figure|Table|Scheme)\s*S?\d+[\s.:|]"
)
_SENTENCE_END_RE = re.compile(r"[.!?:][\"'\u201d\u2019)\]]?(?:\s*\d[\d,\u2013-]*)?$")
_TRAILING_FRAGMENT_RE = re.compile(r"([^\W\d_]*[a-z]) ?-$")
_LEADING_WORD_RE = re.compile(r"^([a-z][^\W\d_]*)")
_HYPHENATED_RE = re.compile(r"\b[^\W\d_]+(?:- ?[^\W\d_]+)+\b")
_WORD_RE = re.compile(r"[^\W\d_]+")
_LAST_TOKEN_RE = re.compile(r"\S*\s?-$")
_FIRST_TOKEN_RE = re.compile(r"^\S+")


def split_paragraphs(lines: Sequence[str], typical_width: int = 80) -> list[list[str]]:
    """Group lines into paragraphs (lists of lines).

    A paragraph ends at a blank line, before a caption ('Fig. 2 |', 'Table 1.') and after a
    line that ends a sentence while being shorter than 80 % of the longest of the three lines
    before and after it (``typical_width`` when it has no neighbours): the last line of a
    justified paragraph stops short of the column edge.
    """
    stripped = [raw.strip() for raw in lines]
    paragraphs: list[list[str]] = []
    current: list[str] = []
    for i, line in enumerate(stripped):
        if not line:
            if current:
                paragraphs.append(current)
                current = []
            continue
        if current and _CAPTION_RE.match(line):
            paragraphs.append(current)
            current = []
        current.append(line)
        if _SENTENCE_END_RE.search(line):
            window = range(max(0, i - 3), min(len(stripped), i + 4))
            neighbours = [len(stripped[j]) for j in window if j != i and stripped[j]]
            if len(line) < 0.8 * (max(neighbours) if neighbours else typical_width):
                paragraphs.append(current)
                current = []
    if current:
        paragraphs.append(current)
    return paragraphs


def join_lines(lines: Sequence[str], keep_hyphen: frozenset[str] = frozenset()) -> str:
    """Join the lines of one paragraph into one line, de-hyphenating words split at line ends.

    ``immuno-`` + ``genicity`` gives ``immunogenicity`` (a lower-case letter and a hyphen end the
    line, a lower-case letter starts the next) unless ``'immuno-genicity'`` (lower-cased) is in
    ``keep_hyphen``. Any other line ending in a hyphen (``mRNA-`` + ``4157``, ``(2,3)-`` + ``and``)
    is joined without a space, keeping the hyphen; soft hyphens are always removed.
    """
    out = ""
    for raw in lines:
        line = raw.strip()
        if not line:
            continue
        if not out:
            out = line
        elif out.endswith("\u00ad"):
            out = out[:-1] + line
        elif out.endswith("-"):
            frag = _TRAILING_FRAGMENT_RE.search(out)
            word = _LEADING_WORD_RE.match(line)
            if frag and word:
                compound = f"{frag.group(1)}-{word.group(1)}".lower()
                head = out[: frag.start()] + frag.group(1)
                out = head + ("-" if compound in keep_hyphen else "") + line
            else:
                out += line
        else:
            out += " " + line
    return out.replace("\u00ad", "")


def _hyphen_vocabulary(texts: Sequence[str]) -> frozenset[str]:
    """Compounds that keep their hyphen when a line break splits them (lower-cased).

    A compound is kept when its joined form never occurs in the document and either it is also
    written hyphenated within a line ("single-molecule", or eLife's "single- molecule"), or both
    halves occur as words of 3+ letters on their own ("well-" + "studied"). Line-end fragments
    ("immuno-", "genicity") do not count as words.
    """
    inline: set[str] = set()
    words: set[str] = set()
    breaks: set[tuple[str, str]] = set()
    for text in texts:
        previous_hyphenated = False
        pending = ""  # the fragment ending the previous line, if any
        for raw in text.splitlines():
            line = raw.strip()
            body = line
            fragment = _TRAILING_FRAGMENT_RE.search(line) if line.endswith("-") else None
            if line.endswith("-"):
                body = _LAST_TOKEN_RE.sub("", body)
            if previous_hyphenated:
                body = _FIRST_TOKEN_RE.sub("", body)
            inline.update(
                m.group(0).lower().replace("- ", "-") for m in _HYPHENATED_RE.finditer(body)
            )
            words.update(w.lower() for w in _WORD_RE.findall(body))
            word = _LEADING_WORD_RE.match(line) if pending else None
            if word:
                breaks.add((pending, word.group(1).lower()))
            pending = fragment.group(1).lower() if fragment else ""
            previous_hyphenated = line.endswith("-")
    keep = {c for c in inline if c.replace("-", "") not in words}
    for left, right in breaks:
        joined_unseen = left + right not in words
        if joined_unseen and min(len(left), len(right)) >= 3 and {left, right} <= words:
            keep.add(f"{left}-{right}")
    return frozenset(keep)


# --------------------------------------------------------------------------------------------
# Metadata: title, DOI, year


_TITLE_JUNK_RE = re.compile(
    r"\bjournal\b|doi|https?:|www\.|©|\bvol\.|issn|copyright|received|accepted|published|"
    r"citation|open access|licen[cs]e|@|\bet al\b",
    re.IGNORECASE,
)
_AUTHORISH_RE = re.compile(r"[^\W\d_]\d+(?:,\d+)*\s*[,&†*]|[†*‡§]|\band\s*$|\d\s*$")
_BAD_META_TITLE_RE = re.compile(
    r"^(untitled|microsoft word|document\d*|title)\b|\.(pdf|docx?|tex|indd|dvi)$|^[\w./:-]+$",
    re.IGNORECASE,
)
_PUBLISHED_RE = re.compile(
    r"Published(?: online)?:?\s*"
    r"(?:(?P<d>\d{1,2})\s+(?P<m>[A-Za-z]{3,9})\.?,?\s+(?P<y>(?:19|20)\d{2})"
    r"|(?P<m2>[A-Za-z]{3,9})\.?\s+(?P<d2>\d{1,2}),\s+(?P<y2>(?:19|20)\d{2})"
    r"|(?P<y3>(?:19|20)\d{2})[.-](?P<m3>\d{1,2})[.-](?P<d3>\d{1,2}))"
)
_CITATION_YEAR_RE = re.compile(r"\(((?:19|20)\d{2})\)\s*\d+\s*:\s*\d+")
_COPYRIGHT_YEAR_RE = re.compile(r"©\s*(?:The Author\(s\)\s*)?((?:19|20)\d{2})\b", re.IGNORECASE)


def _plausible_meta_title(title: str | None) -> str | None:
    if not title:
        return None
    text = _WS_RE.sub(" ", html.unescape(title)).strip()
    if len(text) <= 10 or _BAD_META_TITLE_RE.search(text):
        return None
    return text


def _title_from_page(lines: Sequence[str]) -> str | None:
    """First substantial line of page 1 that is not a journal line, plus its continuation."""
    cleaned = [s for s in (_clean_line(x) for x in lines) if s]
    for i, line in enumerate(cleaned[:60]):
        if len(line) <= 20 or _TITLE_JUNK_RE.search(line) or _AUTHORISH_RE.search(line):
            continue
        if detect_heading(line) or sum(c.isdigit() for c in line) > 0.2 * len(line):
            continue
        parts = [line]
        for nxt in cleaned[i + 1 : i + 3]:
            if (
                len(nxt) < 3
                or len(nxt) > 120
                or nxt.count(",") >= 2
                or _TITLE_JUNK_RE.search(nxt)
                or _AUTHORISH_RE.search(nxt)
                or detect_heading(nxt)
            ):
                break
            parts.append(nxt)
        return join_lines(parts)
    return None


def _doi_from_name(name: str) -> str | None:
    stem = PurePosixPath(name.replace("\\", "/").split("!")[-1]).name
    if stem.lower().endswith(".pdf"):
        stem = stem[:-4]
    return normalize_doi(unquote(stem)) if "10." in unquote(stem) else None


def _dates_from_text(text: str) -> tuple[int | None, date | None]:
    """(year, publication date) from a first page: 'Published: 4 October 2022', '(2023) 14:3496'."""
    m = _PUBLISHED_RE.search(text)
    if m:
        try:
            if m.group("y"):
                month = MONTHS.get(m.group("m").lower())
                if month:
                    return int(m.group("y")), date(int(m.group("y")), month, int(m.group("d")))
            elif m.group("y2"):
                month = MONTHS.get(m.group("m2").lower())
                if month:
                    return int(m.group("y2")), date(int(m.group("y2")), month, int(m.group("d2")))
            else:
                y, mo, d = int(m.group("y3")), int(m.group("m3")), int(m.group("d3"))
                return y, date(y, mo, d)
        except ValueError:
            pass
    for pattern in (_CITATION_YEAR_RE, _COPYRIGHT_YEAR_RE):
        found = pattern.search(text)
        if found:
            return int(found.group(1)), None
    return None, None


# --------------------------------------------------------------------------------------------
# Parsing


def looks_like_pdf(head: bytes) -> bool:
    """True when ``%PDF-`` occurs within the first 1024 bytes."""
    return b"%PDF-" in head[:1024]


@dataclass
class _Block:
    """Lines of one section on one page."""

    path: tuple[str, ...]
    page: int
    lines: list[str] = field(default_factory=list)


def _open(source: Source) -> PdfReader:
    if not source.data:
        raise ParseError(source.name, "empty file")
    if not looks_like_pdf(source.data):
        raise ParseError(source.name, "not a PDF (no %PDF- header)")
    try:
        reader = PdfReader(io.BytesIO(source.data))
        encrypted = reader.is_encrypted
    except FileNotDecryptedError as exc:
        raise ParseError(source.name, f"encrypted PDF: {exc}") from exc
    except PyPdfError as exc:
        raise ParseError(source.name, f"corrupt or truncated PDF: {exc}") from exc
    except Exception as exc:  # pypdf also fails with KeyError, ValueError ... on broken files
        raise ParseError(
            source.name, f"corrupt or truncated PDF: {type(exc).__name__}: {exc}"
        ) from exc
    if encrypted:
        try:
            result = reader.decrypt("")
        except (DependencyError, NotImplementedError) as exc:
            raise ParseError(source.name, f"encrypted PDF that cannot be decrypted: {exc}") from exc
        except Exception as exc:  # pypdf raises assorted errors on broken encryption dicts
            raise ParseError(source.name, f"encrypted PDF, decryption failed: {exc}") from exc
        if result == PasswordType.NOT_DECRYPTED:
            raise ParseError(source.name, "encrypted PDF (needs a password)")
    return reader


def _extract_pages(source: Source, reader: PdfReader, max_pages: int) -> tuple[list[str], int]:
    """Raw text of every page and the number of pages whose text could not be read."""
    try:
        n_pages = len(reader.pages)
    except Exception as exc:  # a broken page tree surfaces here
        raise ParseError(source.name, f"corrupt or truncated PDF: {exc}") from exc
    if n_pages == 0:
        raise ParseError(source.name, "PDF has no pages")
    if n_pages > max_pages:
        raise ParseError(source.name, f"too many pages ({n_pages} > {max_pages})")
    texts: list[str] = []
    failed = 0
    first_error: Exception | None = None
    for page in range(n_pages):
        try:
            texts.append(reader.pages[page].extract_text() or "")
        except Exception as exc:  # pypdf fails in many ways on malformed content streams
            failed += 1
            first_error = first_error or exc
            texts.append("")
    if failed == n_pages:
        raise ParseError(source.name, f"corrupt or truncated PDF: {first_error}")
    if not any(t.strip() for t in texts):
        raise ParseError(source.name, "no extractable text (scanned PDF?)")
    return texts, failed


@dataclass
class _Meta:
    """What the document information dictionary offers."""

    title: str | None = None
    doi: str | None = None
    journal: str | None = None
    year: int | None = None
    keywords: list[str] = field(default_factory=list)


def _metadata(reader: PdfReader) -> _Meta:
    """Title, DOI, journal, creation year and keywords from the document information dictionary."""
    try:
        info = reader.metadata
    except Exception:  # a broken /Info dictionary is not worth failing the file for
        return _Meta()
    if info is None:
        return _Meta()
    meta = _Meta(title=_plausible_meta_title(str(info.title) if info.title else None))
    for key in ("/doi", "/DOI", "/Subject"):
        value = info.get(key)
        if isinstance(value, str) and (doi := find_doi(value)):
            meta.doi = doi
            break
    subject = info.get("/Subject")
    if isinstance(subject, str):
        m = re.match(r"^\s*([^,]{3,80}),\s*(?:doi:|https?://(?:dx\.)?doi\.org/)", subject)
        meta.journal = m.group(1).strip() if m else None
    try:
        created = info.creation_date
        meta.year = created.year if created else None
    except Exception:  # malformed date strings raise in pypdf
        meta.year = None
    raw_kw = info.get("/Keywords")
    if isinstance(raw_kw, str):
        seen: set[str] = set()
        for kw in re.split(r"[;,]", raw_kw):
            kw = _WS_RE.sub(" ", kw).strip()
            if kw and kw.lower() not in seen:
                seen.add(kw.lower())
                meta.keywords.append(kw)
    return meta


def _build_blocks(
    pages: list[list[str]], *, skip_references: bool = True
) -> tuple[list[_Block], int]:
    """Sections per page and heading, and the number of reference lines dropped."""
    blocks: list[_Block] = []
    heading: str | None = None
    in_refs = False
    ref_lines = 0
    for number, lines in enumerate(pages, start=1):
        block = _Block((heading,) if heading else (f"Page {number}",), number)
        for line in lines:
            found = detect_heading(line)
            if found:
                if block.lines:
                    blocks.append(block)
                in_refs = skip_references and found == _REFERENCES
                heading = found
                block = _Block((found,), number)
                continue
            if in_refs:
                if line.strip():
                    ref_lines += 1
                continue
            block.lines.append(line)
        if block.lines and not in_refs:
            blocks.append(block)
    return blocks, ref_lines


def _join_across_pages(blocks: list[_Block], keep_hyphen: frozenset[str]) -> None:
    """Move the end of a word hyphenated at the bottom of a page back onto that page."""
    for prev, nxt in itertools.pairwise(blocks):
        if prev.path != nxt.path or nxt.page != prev.page + 1:
            continue
        last = next((i for i in range(len(prev.lines) - 1, -1, -1) if prev.lines[i].strip()), None)
        first = next((i for i, s in enumerate(nxt.lines) if s.strip()), None)
        if last is None or first is None or not _TRAILING_FRAGMENT_RE.search(prev.lines[last]):
            continue
        token, _, rest = nxt.lines[first].strip().partition(" ")
        if not _LEADING_WORD_RE.match(token):
            continue
        prev.lines[last] = join_lines([prev.lines[last], token], keep_hyphen)
        nxt.lines[first] = rest


def _typical_width(lines: Sequence[str]) -> int:
    lengths = sorted(len(s) for s in lines if len(s.strip()) > 5)
    if not lengths:
        return 80
    return lengths[int(0.75 * (len(lengths) - 1))]


def _parse(source: Source, max_pages: int) -> Document:
    with _quiet_pypdf():
        reader = _open(source)
        raw_pages, failed = _extract_pages(source, reader, max_pages)
        meta = _metadata(reader)

    split_pages = [[_clean_line(s) for s in text.splitlines()] for text in raw_pages]
    stripped = strip_running_lines(split_pages)
    n_running = sum(len(a) - len(b) for a, b in zip(split_pages, stripped, strict=True))
    pages = [[s for s in lines if not _JUNK_LINE_RE.match(s)] for lines in stripped]

    blocks, ref_lines = _build_blocks(pages)
    if ref_lines > 0.6 * sum(1 for lines in pages for line in lines if line.strip()):
        # 'References' early in the file is not the reference list at the end: keep everything
        blocks, ref_lines = _build_blocks(pages, skip_references=False)
    keep = _hyphen_vocabulary(["\n".join(b.lines) for b in blocks])
    _join_across_pages(blocks, keep)
    width = _typical_width([s for b in blocks for s in b.lines])
    sections: list[Section] = []
    for block in blocks:
        paragraphs = [join_lines(p, keep) for p in split_paragraphs(block.lines, width)]
        text = "\n\n".join(p for p in paragraphs if p)
        if text:
            sections.append(Section(path=block.path, text=text, page=block.page, kind="body"))
    if not sections:
        raise ParseError(source.name, "no extractable text (scanned PDF?)")

    first_page = raw_pages[0]
    doi = _doi_from_name(source.name) or find_doi(first_page) or meta.doi
    ids = Identifiers(doi=doi)
    title = meta.title or _title_from_page(stripped[0]) or _title_from_page(split_pages[0])
    year, pub_date = _dates_from_text(unicodedata.normalize("NFKC", first_page))
    unsupported = {"references_lines": ref_lines}
    if n_running:
        unsupported["running_lines"] = n_running
    if failed:
        unsupported["unreadable_pages"] = failed
    return Document(
        doc_id=doc_id_for(ids, source.data),
        source_type=SourceType.PDF,
        title=title or PurePosixPath(source.name).stem,
        identifiers=ids,
        sections=sections,
        journal=meta.journal,
        pub_date=pub_date,
        year=year or meta.year,
        keywords=meta.keywords,
        links=section_mentions(sections, "pdf-text"),
        source_path=source.name,
        unsupported=unsupported,
    )


def parse_pdf(source: Source, max_pages: int = 2000) -> Iterator[ParseResult]:
    """Yield the one :class:`Document` of a PDF; raise :class:`ParseError` when it is unreadable."""
    yield _parse(source, max_pages)
