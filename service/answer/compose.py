"""Draft → response: verify every sentence, number citations by first use, list cited sources."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from core.ids import source_url
from core.schemas import ScoredChunk
from service.answer.draft import Draft
from service.answer.verify import METHOD, Verifier
from service.models import (
    Citation,
    Passage,
    Quote,
    ReportSection,
    SentenceCheck,
    Source,
    TrialRow,
    Verification,
)

UNVERIFIED = "⚠ unverified"
NO_SUPPORTED_ANSWER = (
    "Insufficient evidence: no sentence of the generated answer was supported by the passages "
    "it cited (see verification)."
)


Composed = tuple[
    str, list[ReportSection] | None, list[Citation], list[Source], list[Passage], Verification
]


def compose(
    draft: Draft,
    retrieved: Sequence[ScoredChunk],
    verifier: Verifier,
    policy: Literal["flag", "drop"],
    *,
    sections: list[tuple[str, str]] | None = None,
    trials: list[TrialRow] | None = None,
) -> Composed:
    """Verify and render. Only chunks in ``retrieved`` can ever be cited."""
    by_id = {h.chunk.chunk_id: h for h in retrieved}
    checks: list[SentenceCheck] = []
    cite_n: dict[str, int] = {}
    citations: list[Citation] = []
    source_n: dict[str, int] = {}
    sources: list[Source] = []
    rendered: list[tuple[str | None, str]] = []  # (section, sentence text with markers)
    verifier.prepare([by_id[c] for s in draft.sentences for c in s.chunk_ids if c in by_id])
    for idx, sent in enumerate(draft.sentences):
        cited = [by_id[c] for c in sent.chunk_ids if c in by_id]  # never a chunk not retrieved
        support = verifier.check(sent.text, cited)
        kept = support.supported or policy == "flag"
        numbers: list[int] = []
        if kept:
            for hit in cited:
                cid = hit.chunk.chunk_id
                if cid not in cite_n:
                    doc_id = hit.chunk.doc_id
                    if doc_id not in source_n:
                        source_n[doc_id] = len(sources) + 1
                        sources.append(Source.of(source_n[doc_id], hit))
                    cite_n[cid] = len(citations) + 1
                    qs, qe = (
                        (support.quote_start, support.quote_end)
                        if support.chunk_id == cid
                        else (0, len(hit.chunk.text))
                    )
                    citations.append(
                        Citation(
                            n=cite_n[cid],
                            chunk_id=cid,
                            doc_id=doc_id,
                            source=source_n[doc_id],
                            title=hit.doc.title,
                            section=" > ".join(hit.chunk.section_path),
                            page=hit.chunk.page,
                            quote=Quote(text=hit.chunk.text[qs:qe], start=qs, end=qe),
                            url=source_url(hit.doc.identifiers),
                        )
                    )
                numbers.append(cite_n[cid])
            markers = "".join(f"[{n}]" for n in numbers)
            text = sent.text
            if markers:
                text = (
                    f"{text[:-1]} {markers}{text[-1]}" if text[-1] in ".!?" else f"{text} {markers}"
                )
            if not support.supported:
                text += f" ({UNVERIFIED})"
            rendered.append((sent.section, text))
        checks.append(
            SentenceCheck(
                index=idx,
                section=sent.section,
                text=sent.text,
                citations=numbers,
                supported=support.supported,
                score=round(support.score, 4),
                reason=support.reason,
                kept=kept,
            )
        )
    passages = [Passage.of(i + 1, h) for i, h in enumerate(retrieved)]
    verification = Verification(
        method=METHOD,
        unsupported_policy=policy,
        all_supported=all(c.supported for c in checks if c.kept),
        sentences=checks,
        removed_citations=draft.removed_citations,
        removed_urls=draft.removed_urls,
    )
    report_sections: list[ReportSection] | None = None
    if sections is None:
        # every sentence dropped as unsupported: say so rather than answer with nothing
        answer = " ".join(t for _, t in rendered) or NO_SUPPORTED_ANSWER
    else:
        report_sections = []
        parts: list[str] = []
        for title, query in sections:
            body = " ".join(t for s, t in rendered if s == title)
            if not body:
                body = "No retrieved passage addressed this part of the question."
            report_sections.append(ReportSection(title=title, query=query, text=body))
            parts.append(f"## {title}\n\n{body}")
        if trials is not None:
            parts.append("## Relevant clinical trial records\n\n" + render_trials(trials))
        parts.append("## Sources\n\n" + render_sources(citations, sources))
        answer = "\n\n".join(parts)
    return answer, report_sections, citations, sources, passages, verification


def render_trials(trials: Sequence[TrialRow]) -> str:
    """Markdown table of trials (all values from stored trial records)."""
    if not trials:
        return "No trial records were retrieved for this question."
    rows = ["| NCT id | phase | status | conditions | title |", "|---|---|---|---|---|"]
    for t in trials:
        phases = ", ".join(t.phases) or "n/a"
        conditions = "; ".join(t.conditions[:3]) + (" …" if len(t.conditions) > 3 else "")
        title = t.title.replace("|", "/")
        rows.append(
            f"| [{t.nct_id}]({t.url}) | {phases} | {t.overall_status or 'n/a'} | "
            f"{conditions.replace('|', '/')} | {title} |"
        )
    return "\n".join(rows)


def render_sources(citations: Sequence[Citation], sources: Sequence[Source]) -> str:
    """The reference list, one entry per citation number used in the text, from stored metadata."""
    if not citations:
        return "No sources were cited."
    docs = {s.n: s for s in sources}
    lines = []
    for c in citations:
        doc = docs[c.source]
        bits = [doc.title.rstrip(".") + "."]
        where = c.section + (f", p. {c.page}" if c.page else "")
        if where:
            bits.append(f"({where})")
        if doc.journal:
            bits.append(doc.journal + ".")
        if doc.year:
            bits.append(f"{doc.year}.")
        if c.url:
            bits.append(c.url)
        lines.append(f"[{c.n}] " + " ".join(bits))
    return "\n".join(lines)
