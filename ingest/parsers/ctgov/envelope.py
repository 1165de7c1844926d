"""The JSON envelope of CT.gov API v2 records: one study, a page ``{"studies": [...]}``, a JSON
array or JSON lines, each study becoming a Document or a RecordFailure."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

from core.errors import ParseError
from ingest.parsers.base import ParseResult, RecordFailure, Source
from ingest.parsers.ctgov.study import NoNctId, build_document
from ingest.parsers.ctgov.values import child, text_of


def looks_like_ctgov_json(head: bytes) -> bool:
    """True when the first bytes (a few KB) look like a CT.gov API v2 study, page or list."""
    head = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if not head.startswith((b"{", b"[")):
        return False
    return b'"protocolSection"' in head or re.search(rb'"studies"\s*:\s*\[', head) is not None


def parse_ctgov_json(source: Source) -> Iterator[ParseResult]:
    """Documents from API v2 JSON: one study, a page ``{"studies": [...]}``, an array or JSON lines.

    Invalid whole-file JSON raises :class:`ParseError`; in JSON lines a bad line, and anywhere a
    study without a valid ``nctId``, becomes a :class:`RecordFailure` and the rest still parse.
    """
    try:
        text = source.data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ParseError(source.name, f"not UTF-8 text: {exc}") from exc
    if _is_json_lines(source.name, text):
        yield from _parse_json_lines(source.name, text)
        return
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ParseError(
            source.name, f"invalid JSON at line {exc.lineno} col {exc.colno}: {_json_msg(exc)}"
        ) from exc
    except RecursionError as exc:
        raise ParseError(source.name, "invalid JSON: nested too deeply") from exc
    yield from _parse_json_value(source.name, value, prefix="")


def _json_msg(exc: json.JSONDecodeError) -> str:
    """The decoder's message without its dangling 'starting at' (the position is given apart)."""
    return re.sub(r"\s+(?:starting\s+)?at$", "", exc.msg)


def _is_json_lines(name: str, text: str) -> bool:
    """JSON lines: named so, or several lines whose first non-blank line is a whole JSON object."""
    if name.lower().endswith((".jsonl", ".ndjson")):
        return True
    first, sep, rest = text.lstrip().partition("\n")
    if not sep or not rest.strip() or not first.rstrip().endswith("}"):
        return False
    try:
        return isinstance(json.loads(first), dict)
    except json.JSONDecodeError:
        return False


def _parse_json_lines(name: str, text: str) -> Iterator[ParseResult]:
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            reason = f"invalid JSON at col {exc.colno}: {_json_msg(exc)}"
            yield RecordFailure(source=name, record=f"line {n}", reason=reason)
            continue
        except RecursionError:
            yield RecordFailure(source=name, record=f"line {n}", reason="JSON nested too deeply")
            continue
        if isinstance(value, dict) and "protocolSection" not in value and "studies" in value:
            yield from _parse_json_value(name, value, prefix=f"line {n} ")
        else:
            yield _study_or_failure(name, value, f"line {n}")


def _parse_json_value(name: str, value: Any, prefix: str) -> Iterator[ParseResult]:
    studies: list[Any]
    if isinstance(value, list):
        studies = value
    elif isinstance(value, dict) and "protocolSection" in value:
        studies = [value]
    elif isinstance(value, dict) and "studies" in value:
        if not isinstance(value["studies"], list):
            raise ParseError(name, '"studies" is not a list')
        studies = value["studies"]
    else:
        raise ParseError(name, "not a ClinicalTrials.gov API v2 study, page or list of studies")
    for i, study in enumerate(studies, start=1):
        yield _study_or_failure(name, study, f"{prefix}study #{i}")


def _study_or_failure(name: str, study: Any, record: str) -> ParseResult:
    if not isinstance(study, dict):
        reason = f"not a JSON object (got {type(study).__name__})"
        return RecordFailure(source=name, record=record, reason=reason)
    try:
        return build_document(study, name)
    except NoNctId as exc:
        title = text_of(
            child(child(study, "protocolSection"), "identificationModule"), "briefTitle"
        )
        label = f"{record} ({title})" if title else record
        return RecordFailure(source=name, record=label, reason=str(exc))
    except (ValueError, TypeError, AttributeError, KeyError) as exc:
        nct = text_of(child(child(study, "protocolSection"), "identificationModule"), "nctId")
        label = f"{record} ({nct})" if nct else record
        return RecordFailure(source=name, record=label, reason=f"{type(exc).__name__}: {exc}")
