"""Values of a CT.gov v2 record: safe accessors over JSON, text cleaning, enum words, dates.

Records are read defensively: a field of the wrong type counts as missing instead of failing the
study.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import date
from typing import Any

from ingest.parsers.base import MONTHS

#: A JSON object of a v2 record.
JSON = dict[str, Any]
#: What a record's caps left out, by kind (becomes ``Document.unsupported``).
Counts = dict[str, int]


# Descriptions that only say there is no description (frequent in the re-shaped v2 extracts).
_PLACEHOLDERS = frozenset(
    {"no detailed description", "not provided", "n/a", "na", "none", "click here to enter text."}
)
_MD_ESCAPE_RE = re.compile(r"\\([\[\]<>*_~^=+|#`{}()!.\-])")
ISO_DATE_RE = re.compile(r"^\d{4}(?:-\d{2}(?:-\d{2})?)?$")
_LEGACY_DATE_RE = re.compile(r"^([A-Za-z]+)\.?\s+(?:(\d{1,2}),?\s+)?(\d{4})$")
_ENUM_RE = re.compile(r"^[A-Z0-9_]+$")
_HUMAN = {
    "NA": "Not applicable",
    "ACTIVE_NOT_RECRUITING": "Active, not recruiting",
    "UNKNOWN": "Unknown status",
    "NON_RANDOMIZED": "Non-randomized",
    "EARLY_PHASE1": "Early Phase 1",
}
PHASE_RE = re.compile(r"^(EARLY[\s_]*)?PHASE\s*(\d)$")


def child(d: Any, key: str) -> JSON:
    """The object under ``key`` ({} when missing or not an object)."""
    v = d.get(key) if isinstance(d, dict) else None
    return v if isinstance(v, dict) else {}


def children(d: Any, key: str) -> list[JSON]:
    """The objects listed under ``key`` (non-objects left out)."""
    v = d.get(key) if isinstance(d, dict) else None
    return [x for x in v if isinstance(x, dict)] if isinstance(v, list) else []


def text_of(d: Any, key: str) -> str | None:
    """A scalar field as stripped text; None when missing, empty or not a scalar."""
    v = d.get(key) if isinstance(d, dict) else None
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, str):
        v = v.strip()
        return v or None
    if isinstance(v, int | float):
        return str(v)
    return None


def texts_of(d: Any, key: str) -> list[str]:
    """A string or list-of-strings field as stripped, de-duplicated strings."""
    v = d.get(key) if isinstance(d, dict) else None
    if isinstance(v, str):
        v = [v]
    if not isinstance(v, list):
        return []
    return dedupe(x.strip() for x in v if isinstance(x, str) and x.strip())


def dedupe(items: Iterable[str]) -> list[str]:
    """``items`` without repeats, first occurrence kept."""
    return list(dict.fromkeys(items))


def clean(text: str | None) -> str:
    """Normalise line ends, drop v2 markdown escapes and trailing spaces, squeeze blank lines."""
    if not text:
        return ""
    if "\n" not in text and "\r" not in text and "\\" not in text:
        return text.strip()
    t = text.replace("\r\n", "\n").replace("\r", "\n")
    if "\\" in t:
        t = _MD_ESCAPE_RE.sub(r"\1", t)
    lines = [ln.rstrip() for ln in t.split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def non_placeholder(text: str | None) -> str:
    """Cleaned text, or '' when it only says there is none ('N/A', 'Not provided')."""
    t = clean(text)
    return "" if t.lower() in _PLACEHOLDERS else t


def clip(text: str, limit: int) -> str:
    """``text`` on one line, cut with an ellipsis to at most ``limit`` characters."""
    t = " ".join(text.split())
    return t if len(t) <= limit else t[: limit - 1].rstrip() + "…"


def human_words(value: str | None) -> str:
    """'ACTIVE_NOT_RECRUITING' -> 'Active, not recruiting'; free text is returned unchanged."""
    if not value:
        return ""
    if not _ENUM_RE.match(value):
        return value
    if value in _HUMAN:
        return _HUMAN[value]
    m = PHASE_RE.match(value)
    if m:
        return ("Early Phase " if m.group(1) else "Phase ") + m.group(2)
    return value.replace("_", " ").capitalize()


def lower_human_words(value: str | None) -> str:
    """:func:`human_words` in lower case, for use inside a sentence."""
    return human_words(value).lower()


def labelled(label: str, value: str | None) -> str | None:
    """'Label: value', or None when there is no value."""
    return f"{label}: {value}" if value else None


def join_lines(lines: Iterable[str | None]) -> str:
    """The non-empty lines joined with newlines."""
    return "\n".join(x for x in lines if x)


def join_blocks(blocks: Iterable[str | None]) -> str:
    """The non-empty blocks joined with blank lines."""
    return "\n\n".join(b for b in blocks if b)


def capped(items: list[Any], limit: int, counts: Counts, key: str) -> list[Any]:
    """The first ``limit`` items; the number left out is added to ``counts[key]``."""
    if len(items) > limit:
        counts[key] = counts.get(key, 0) + len(items) - limit
        return items[:limit]
    return items


def iso_date(raw: str | None) -> str | None:
    """'2020-03', '2020-03-15' as given; legacy 'March 2020' / 'March 15, 2020' converted."""
    if not raw:
        return None
    s = raw.strip()
    if ISO_DATE_RE.match(s):
        return s
    m = _LEGACY_DATE_RE.match(s)
    if not m or m.group(1).lower() not in MONTHS:
        return None
    month = MONTHS[m.group(1).lower()]
    out = f"{m.group(3)}-{month:02d}"
    return f"{out}-{int(m.group(2)):02d}" if m.group(2) else out


def to_date(iso: str | None) -> date | None:
    """A date from an ISO date of year, month or day precision (missing parts = 1)."""
    if not iso or not ISO_DATE_RE.match(iso):
        return None
    parts = [int(p) for p in iso.split("-")]
    try:
        return date(parts[0], parts[1] if len(parts) > 1 else 1, parts[2] if len(parts) > 2 else 1)
    except ValueError:
        return None


def date_struct(status: JSON, key: str) -> tuple[str | None, str | None]:
    """(ISO date, type) of a v2 ``...DateStruct``; a plain string is accepted too."""
    v = status.get(key)
    if isinstance(v, dict):
        raw = text_of(v, "date")
        return (iso_date(raw) or raw), text_of(v, "type")
    if isinstance(v, str) and v.strip():
        return (iso_date(v) or v.strip()), None
    return None, None


def date_line(label: str, status: JSON, key: str) -> str | None:
    """'Label: date (type)' of a v2 ``...DateStruct``, or None."""
    d, kind = date_struct(status, key)
    if not d:
        return None
    return f"{label}: {d} ({lower_human_words(kind)})" if kind else f"{label}: {d}"
