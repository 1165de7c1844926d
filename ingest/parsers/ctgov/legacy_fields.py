"""Reading fields of a legacy ``<clinical_study>`` record: element text, hard-wrapped
``<textblock>`` prose, enum values."""

from __future__ import annotations

import re
import textwrap
from typing import Any

from ingest.parsers.ctgov.values import JSON, clean, dedupe

_BULLET_RE = re.compile(r"^(?:[-*•·o]|\d{1,3}[.)]|[A-Za-z][.)]|\(\w{1,4}\))\s")


def text_at(el: Any, path: str) -> str | None:
    """Text of the first element at ``path`` (whitespace-squeezed lines kept), or None."""
    found = el.find(path)
    if found is None:
        return None
    text = clean("".join(found.itertext()))
    return text or None


def texts_at(el: Any, path: str) -> list[str]:
    """Texts of every element at ``path``, cleaned and de-duplicated."""
    return dedupe(t for e in el.findall(path) if (t := clean("".join(e.itertext()))))


def textblock_at(el: Any, path: str) -> str | None:
    """A legacy ``<textblock>``: dedented, hard-wrapped lines re-joined, bullets kept.

    The dump wraps lines at a fixed width, so a line continues the previous one when the
    previous line was too long for the current line's first word to have fitted on it.
    """
    found = el.find(path)
    if found is None:
        return None
    raw = "".join(found.itertext()).replace("\r\n", "\n").replace("\r", "\n")
    raw_lines = textwrap.dedent(raw.expandtabs(4)).split("\n")
    width = max((len(ln.rstrip()) for ln in raw_lines), default=0)
    wrapped = width >= 60
    paragraphs: list[str] = []
    lines: list[str] = []
    prev_len = 0
    for line in raw_lines:
        stripped = line.strip()
        if not stripped:
            if lines:
                paragraphs.append("\n".join(lines))
                lines = []
            continue
        indent = line[: len(line) - len(line.lstrip())]
        text = re.sub(r"^([-*•·])\s+", r"\1 ", re.sub(r"\s{2,}", " ", stripped))
        first_word = stripped.split(None, 1)[0]
        continues = (
            wrapped
            and lines
            and prev_len + 1 + len(first_word) > width
            and not _BULLET_RE.match(text)
        )
        if continues:
            lines[-1] += " " + text
        else:
            lines.append(indent + text)
        prev_len = len(line.rstrip())
    if lines:
        paragraphs.append("\n".join(lines))
    # Consecutive list items stay one list instead of being spread over paragraphs.
    out = ""
    for para in paragraphs:
        both_items = _BULLET_RE.match(para.lstrip()) and _BULLET_RE.match(
            out.rsplit("\n", 1)[-1].lstrip()
        )
        out += ("\n" if both_items else "\n\n") + para if out else para
    return out or None


def enum_value(raw: str | None) -> str | None:
    """'Active, not recruiting' -> 'ACTIVE_NOT_RECRUITING'."""
    if not raw:
        return None
    value = re.sub(r"[^A-Za-z0-9]+", "_", raw).strip("_").upper()
    return value or None


def drop_empty(d: JSON) -> JSON:
    """``d`` without None, empty strings, lists and objects (as v2 leaves them out)."""
    return {k: v for k, v in d.items() if v not in (None, "", [], {})}
