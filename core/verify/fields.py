"""Method ``record-fields/v1``: a sentence built from a record's fields is checked field by field.

A trial's facts sentence ("NCT05933577 is a phase 3 interventional trial in Melanoma; its overall
status is active, not recruiting.") states values of labelled fields. The NLI model reads such
field lists poorly (measured: it passes a wrong status or condition about as often as the right
one), so each stated (label, value) is looked up in the cited passages instead: **supported**
when every value is in its field ("Phase: Phase 3", "Overall status: Active, not recruiting"),
**contradicted** when a cited passage has the field with other values, else **not supported**.
Case, punctuation and spacing aside; "Interventions:" lists span the lines below the label.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from core.schemas import ScoredChunk
from core.verify.base import Support, Verdict

METHOD = "record-fields/v1"
# a field label at the start of a line: "Overall status:", "Interventions:" (not "- Drug: x")
_LABEL = re.compile(r"^([A-Z][A-Za-z /()-]{1,40}):", re.MULTILINE)


def _norm(text: str) -> str:
    return " " + " ".join(re.sub(r"[^a-z0-9]+", " ", text.lower()).split()) + " "


def field_spans(text: str) -> dict[str, tuple[int, int]]:
    """``{label (lower-case): (start, end) of its value}``; a value runs to the next label."""
    marks = list(_LABEL.finditer(text))
    spans: dict[str, tuple[int, int]] = {}
    for m, nxt in zip(marks, [*marks[1:], None], strict=False):
        start, end = m.end(), nxt.start() if nxt is not None else len(text)
        value = text[start:end]
        start += len(value) - len(value.lstrip())
        end -= len(value) - len(value.rstrip())
        spans.setdefault(m.group(1).strip().lower(), (start, end))
    return spans


def check_fields(facts: Sequence[tuple[str, str]], cited: Sequence[ScoredChunk]) -> Support:
    """The verdict for a sentence stating ``facts`` (label, value) against ``cited``."""
    if not facts or not cited:
        return Support(Verdict.NOT_SUPPORTED, 0.0, "no record fields to check", None, 0, 0)
    found: list[tuple[str, int, int]] = []  # (chunk id, span of the first fact's field)
    for label, value in facts:
        want = _norm(value)
        seen_other: tuple[ScoredChunk, int, int] | None = None
        hit: tuple[str, int, int] | None = None
        for c in cited:
            span = field_spans(c.chunk.text).get(label.lower())
            if span is None:
                continue
            if want in _norm(c.chunk.text[span[0] : span[1]]):
                hit = (c.chunk.chunk_id, *span)
                break
            seen_other = seen_other or (c, *span)
        if hit is not None:
            found.append(hit)
            continue
        if seen_other is not None:
            c, a, b = seen_other
            said = " ".join(c.chunk.text[a:b].split())[:120]
            reason = f"the cited record's {label} is '{said}', not '{value}'"
            return Support(Verdict.CONTRADICTED, 0.0, reason, c.chunk.chunk_id, a, b)
        reason = f"not in the cited record: {label} '{value}'"
        return Support(Verdict.NOT_SUPPORTED, 0.0, reason, None, 0, 0)
    listed = "; ".join(f"{label}: {value}" for label, value in facts)
    chunk_id, a, b = found[0]
    return Support(
        Verdict.SUPPORTED, 1.0, f"every field is in the cited record ({listed})", chunk_id, a, b
    )
