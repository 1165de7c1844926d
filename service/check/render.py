"""The checked report as Markdown: the report in its own order with a verdict after each claim
sentence, the evidence quoted, the references resolved and a summary table.

Every text that came from the report or from a stored document passes through
``MarkdownSanitiser`` (URLs removed, one line, ``[``, ``]``, ``\\`` and ``<`` escaped): a report
cannot put a link, an image, HTML or a heading into the output. The only links are the ones built
from stored identifiers (``core.ids.source_url``); the verdict marks are added after escaping.
"""

from __future__ import annotations

from service.answer.safety import MarkdownSanitiser
from service.check.checker import CheckedReport
from service.check.models import ClaimCheck

VERDICT_TEXT = {
    "supported": "supported by",
    "contradicted": "contradicted by",
    "no_evidence": "no evidence in the indexed corpus",
}
MARK = {"supported": "✓", "contradicted": "✗", "no_evidence": "∅"}


def _cell(safe: MarkdownSanitiser, text: str) -> str:
    return safe(text).replace("|", "\\|")


def _code(text: str) -> str:
    """A URL as written, shown as code (never a link): no backticks, no line breaks, no '|'."""
    return "`" + " ".join(text.split()).replace("`", "").replace("|", "%7C") + "`"


def _verdict_tag(claim: ClaimCheck, evidence_no: dict[str, int]) -> str:
    refs = ", ".join(f"E{evidence_no[e.chunk_id]}" for e in claim.evidence)
    tag = f"{MARK[claim.verdict]} {VERDICT_TEXT[claim.verdict]}"
    tag += f" {refs}" if refs else ""
    if claim.cited_not_supporting:
        tag += "; cited record does not support it: " + ", ".join(claim.cited_not_supporting)
    missing = [c.label for c in claim.citations if not c.found]
    if missing:
        tag += "; cites references not in the store: " + ", ".join(missing)
    return f"**\\[{tag}\\]**"


def render_markdown(checked: CheckedReport) -> str:
    """The Markdown of a checked report."""
    safe = MarkdownSanitiser()
    result = checked.result
    s = result.summary
    evidence_no: dict[str, int] = {}
    evidence = []
    for claim in result.claims:
        for e in claim.evidence:
            if e.chunk_id not in evidence_no:
                evidence_no[e.chunk_id] = len(evidence_no) + 1
                evidence.append(e)

    out: list[str] = ["# Report check", ""]
    out.append(
        f"{s.claims} claim sentences: {s.supported} supported, {s.contradicted} contradicted, "
        f"{s.no_evidence} with no evidence in the indexed corpus; {s.skipped} headings and "
        f"other sentences skipped. References: {s.references_found} of {s.references} found in "
        f"the store. Verifier: {result.method}; {result.timings.get('total_ms', 0) / 1000:.1f} s."
    )
    out += ["", "| verdict | claims |", "|---|---:|"]
    out += [
        f"| {MARK[v]} {VERDICT_TEXT[v]} | {n} |"
        for v, n in (
            ("supported", s.supported),
            ("contradicted", s.contradicted),
            ("no_evidence", s.no_evidence),
        )
    ]
    out += [
        f"| cites a stored record that does not support it | {s.cited_not_supporting} |",
        "",
        "## The report, checked",
        "",
    ]
    paragraph: list[str] = []

    def flush() -> None:
        if paragraph:
            out.extend([" ".join(paragraph), ""])
            paragraph.clear()

    for seg in checked.parsed.segments:
        if seg.kind == "claim" and seg.claim is not None:
            claim = result.claims[seg.claim]
            paragraph.append(f"{safe(seg.text)} {_verdict_tag(claim, evidence_no)}")
        elif seg.kind == "skipped":
            text = seg.text if seg.reason not in ("table", "code block") else f"({seg.reason})"
            paragraph.append(f"{safe(text)} *(skipped: {safe(seg.reason)})*")
        elif seg.kind == "heading":
            flush()
            # the report's headings sit below this document's own
            out.extend([f"{'#' * min(6, seg.level + 2)} {safe(seg.text)}", ""])
        elif seg.kind == "reference":
            flush()
            out.extend([f"*(the report's reference list, {safe(seg.text)}: resolved below)*", ""])
        else:  # a rule or the end of a paragraph
            flush()
    flush()

    out += ["## Evidence", ""]
    if not evidence:
        out += ["No passage of the indexed corpus supports or contradicts a claim.", ""]
    for i, e in enumerate(evidence, 1):
        link = f" <{e.url}>" if e.url else ""
        out.append(
            f"- **E{i}** ({e.verdict}) {safe(e.title)}, {safe(e.section)} "
            f"(`{e.doc_id.replace('`', '')}`){link}: “{safe(e.quote.text)}”"
        )
    out += ["", "## References in the report", ""]
    if not result.references:
        out += ["The report cites no identifier or URL.", ""]
    else:
        out += ["| id as written | kind | in the store | stored title | cited by claims |"]
        out += ["|---|---|---|---|---|"]
        for r in result.references:
            found = "found" if r.found else "not in the store"
            title = _cell(safe, r.title) if r.title else (_cell(safe, r.note) if r.note else "")
            shown = _code(r.id) if r.kind == "url" else _cell(safe, r.id)
            claims = ", ".join(str(n) for n in r.claims)
            out.append(f"| {shown} | {r.kind} | {found} | {title} | {claims} |")
        out.append("")
    return "\n".join(out)
