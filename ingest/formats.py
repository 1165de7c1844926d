"""Format detection by content and dispatch to the parser of each format."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from enum import StrEnum

from core.config import IngestSettings
from core.errors import ParseError
from ingest.parsers.base import ParseResult, RecordFailure, Source
from ingest.parsers.ctgov import (
    looks_like_ctgov_json,
    looks_like_ctgov_xml,
    parse_ctgov_json,
    parse_ctgov_xml,
)
from ingest.parsers.jats import looks_like_jats, parse_jats
from ingest.parsers.medline import looks_like_medline, parse_medline
from ingest.parsers.pdf import looks_like_pdf, parse_pdf

_HEAD = 8192


class Format(StrEnum):
    """Input formats litrag reads."""

    JATS = "jats"
    PDF = "pdf"
    CTGOV_JSON = "ctgov-json"
    CTGOV_XML = "ctgov-xml"
    MEDLINE = "medline"


def _binary(head: bytes) -> bool:
    """Mostly non-text bytes (and not UTF-16 text)."""
    if not head or head[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return False
    sample = head[:1024]
    controls = sum(1 for b in sample if b < 9 or 13 < b < 32)
    return b"\x00" in sample or controls > len(sample) // 20


def detect_format(source: Source) -> Format:
    """The format of ``source`` judged by its content (the extension is only a tie-breaker).

    Raises :class:`ParseError` saying what the content looks like when no parser fits.
    """
    head = source.data[:_HEAD]
    if looks_like_pdf(head):
        return Format.PDF
    if _binary(head):
        return _unknown(source, "binary content that is not a PDF, XML or JSON document")
    text_head = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if text_head[:1] in (b"{", b"["):
        if looks_like_ctgov_json(head):
            return Format.CTGOV_JSON
        return _unknown(source, "JSON without ClinicalTrials.gov study fields (protocolSection)")
    if text_head[:1] == b"<":
        if looks_like_medline(head):
            return Format.MEDLINE
        if looks_like_ctgov_xml(head):
            return Format.CTGOV_XML
        if looks_like_jats(head):
            return Format.JATS
        return _unknown(source, "XML that is neither JATS, MEDLINE nor ClinicalTrials.gov")
    if source.name.endswith(".jsonl") and looks_like_ctgov_json(head):
        return Format.CTGOV_JSON
    return _unknown(source, "unrecognised content (not PDF, JATS/MEDLINE/CT.gov XML or JSON)")


def _unknown(source: Source, what: str) -> Format:
    raise ParseError(source.name, f"unknown format: {what}")


_XML_DECL_ENCODING = re.compile(rb"""^\s*<\?xml[^>]*encoding=["']([A-Za-z0-9._-]+)["']""")


def check_encoding(source: Source, fmt: Format) -> None:
    """Refuse text whose bytes do not match its declared (or JSON's mandatory) encoding."""
    if fmt is Format.PDF:
        return
    data = source.data
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return  # UTF-16 with a byte-order mark: the parsers decode it
    encoding = "utf-8"
    if fmt is not Format.CTGOV_JSON:
        m = _XML_DECL_ENCODING.match(data[:200])
        if m:
            encoding = m.group(1).decode("ascii").lower()
    if encoding.replace("_", "-") not in ("utf-8", "utf8"):
        return  # another declared encoding: lxml decodes and checks it
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ParseError(
            source.name,
            f"wrong text encoding: byte {data[exc.start]:#04x} at offset {exc.start} is not valid "
            "UTF-8 (the encoding declared or required for this format); re-save the file as UTF-8",
        ) from None


def parse_source(source: Source, limits: IngestSettings) -> Iterator[ParseResult]:
    """Detect the format of ``source`` and parse it; every failure names the file and record."""
    fmt = detect_format(source)
    check_encoding(source, fmt)
    try:
        if fmt is Format.PDF:
            yield from parse_pdf(source, max_pages=limits.max_pdf_pages)
        elif fmt is Format.JATS:
            yield from parse_jats(source)
        elif fmt is Format.MEDLINE:
            yield from parse_medline(source)
        elif fmt is Format.CTGOV_XML:
            yield from parse_ctgov_xml(source)
        else:
            yield from parse_ctgov_json(source)
    except ParseError:
        raise
    except UnicodeDecodeError as exc:
        raise ParseError(
            source.name,
            f"wrong text encoding: byte {exc.object[exc.start]:#04x} at offset "
            f"{exc.start} is not valid {exc.encoding}",
        ) from exc
    except (ValueError, json.JSONDecodeError) as exc:
        raise ParseError(source.name, f"{fmt.value}: {exc}") from exc


__all__ = ["Format", "ParseResult", "RecordFailure", "Source", "detect_format", "parse_source"]
