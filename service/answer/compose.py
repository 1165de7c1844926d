"""Draft → response: verify every sentence, repair LLM citations, number citations by first use,
list cited sources.

Every sentence gets a verdict from the verifier (all sentences in one batched ``check_all`` call
when the verifier has one): supported, contradicted or not supported by the chunks it cites. A
supported sentence is written with its markers (``... [1].``); a kept sentence that is not
supported also ends with ``(⚠ contradicted by [n])`` or ``(⚠ not supported by [n])``, ``[n]`` being
the cited chunk that decided the verdict (``(⚠ not supported)`` when it cites nothing), so it is
never shown as supported. Policy ``drop`` removes both kinds from the text (they stay in
``verification``).

Repair (LLM drafts only, ``repair=True``): a sentence that is not supported by what it cites is
checked against at most three other *retrieved* chunks, those sharing the most content words with
it (one batched call for all such sentences); when one supports it (the most probable one when
several do), the sentence cites that chunk instead and ``verification`` records the passages it
cited before. Only chunks in ``retrieved``
are ever cited.

Safety (``service.answer.safety``): every text compose writes as Markdown — sentences, section
titles, trial table cells, Sources lines — goes through one ``MarkdownSanitiser``: URLs removed,
``\\ [ ]`` backslash-escaped, a ``<`` that could open HTML written ``&lt;``; the only links are
the ones built from identifiers. Instruction-like sentences are dropped before verification.
``verification`` reports the removed URLs, the number of escaped characters and the
instruction-like sentences met in the passages or the draft. Sentences are verified as the draft
has them (an extracted quote stays a word-for-word quote) and shown sanitised;
``SentenceCheck.text`` is the sentence as the answer shows it, without its markers.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Literal, Protocol, runtime_checkable

from core.chunking import split_sentences
from core.ids import source_url
from core.schemas import ScoredChunk
from core.store.links import DocLink
from core.verify import Support, Verdict, Verifier
from core.verify.fields import METHOD as FIELDS_METHOD
from core.verify.fields import check_fields
from core.verify.terms import content_words
from service.answer.coverage import Coverage
from service.answer.draft import Draft, DraftSentence
from service.answer.safety import MarkdownSanitiser, is_instruction
from service.answer.trial_links import render_trials
from service.models import (
    Citation,
    EvidenceQuote,
    Passage,
    Quote,
    ReportSection,
    SentenceCheck,
    Source,
    TrialRow,
    Verification,
)

CONTRADICTED = "⚠ contradicted by"
NOT_SUPPORTED = "⚠ not supported by"
NO_SUPPORTED_ANSWER = (
    "Insufficient evidence: no sentence of the generated answer was supported by the passages "
    "it cited (see verification)."
)
REPAIR_CANDIDATES = 3


Composed = tuple[
    str, list[ReportSection] | None, list[Citation], list[Source], list[Passage], Verification
]


@runtime_checkable
class BatchVerifier(Protocol):
    """A verifier that checks several sentences in one batch (``NliVerifier``)."""

    def check_all(self, items: Sequence[tuple[str, Sequence[ScoredChunk]]]) -> list[Support]:
        """Verdicts for (sentence, cited chunks) items, in order."""
        ...


def check_all(
    verifier: Verifier, items: Sequence[tuple[str, Sequence[ScoredChunk]]]
) -> list[Support]:
    """Verdicts for several sentences: one batch when the verifier can, else one by one."""
    if not items:
        return []
    verifier.prepare(list({c.chunk.chunk_id: c for _, cited in items for c in cited}.values()))
    if isinstance(verifier, BatchVerifier):
        return verifier.check_all(items)
    return [verifier.check(sentence, cited) for sentence, cited in items]


NOT_COVERED = "Not covered by the indexed corpus"


def no_evidence_on(facet: str) -> str:
    """What a report section without evidence says: ``No retrieved evidence on rare diseases.``"""
    # "Rare diseases" reads as a phrase in the sentence; "HER2 vaccines" keeps its capitals
    lowered = facet[0].lower() + facet[1:] if facet[1:2].islower() else facet
    return f"No retrieved evidence on {lowered.rstrip('.')}."


def verify_sentences(
    verifier: Verifier,
    sentences: Sequence[DraftSentence],
    cited_of: Sequence[Sequence[ScoredChunk]],
) -> list[Support]:
    """Each sentence's verdict: record-fact sentences field by field (``check_fields``), the
    others by ``verifier`` in one batch."""
    prose = [i for i, s in enumerate(sentences) if not s.facts]
    found = check_all(verifier, [(sentences[i].text, cited_of[i]) for i in prose])
    out = dict(zip(prose, found, strict=True))
    return [
        out[i] if i in out else check_fields(s.facts, cited_of[i]) for i, s in enumerate(sentences)
    ]


def verdict_mark(verdict: Verdict, n: int | None) -> str:
    """What follows a kept sentence that is not supported: `` (⚠ contradicted by [n])``."""
    if verdict is Verdict.SUPPORTED:
        return ""
    label = CONTRADICTED if verdict is Verdict.CONTRADICTED else NOT_SUPPORTED
    return f" ({label} [{n}])" if n is not None else f" ({label.removesuffix(' by')})"


def repair_citations(
    sentences: Sequence[DraftSentence],
    cited: Sequence[Sequence[ScoredChunk]],
    supports: Sequence[Support],
    retrieved: Sequence[ScoredChunk],
    verifier: Verifier,
) -> dict[int, tuple[ScoredChunk, Support]]:
    """``{sentence index: (retrieved chunk that supports it, its verdict)}`` for the sentences
    that what they cite does not state (never contradicted ones) and another retrieved chunk
    supports."""
    words_of = {h.chunk.chunk_id: content_words(h.chunk.text) for h in retrieved}
    items: list[tuple[str, Sequence[ScoredChunk]]] = []
    owners: list[int] = []
    for i, (sent, have, support) in enumerate(zip(sentences, cited, supports, strict=True)):
        words = content_words(sent.text)
        # a contradicted sentence keeps its citation and its mark: re-citing it elsewhere would
        # hide that a passage it cites says the opposite
        if support.verdict is not Verdict.NOT_SUPPORTED or not words:
            continue
        skip = {h.chunk.chunk_id for h in have}
        overlap = {
            h.chunk.chunk_id: len(words & words_of[h.chunk.chunk_id])
            for h in retrieved
            if h.chunk.chunk_id not in skip
        }
        # stable sort: ties keep the retrieval order
        candidates = sorted(
            (h for h in retrieved if overlap.get(h.chunk.chunk_id, 0) > 0),
            key=lambda h: -overlap[h.chunk.chunk_id],
        )[:REPAIR_CANDIDATES]
        for hit in candidates:
            items.append((sent.text, [hit]))
            owners.append(i)
    found: dict[int, tuple[ScoredChunk, Support]] = {}
    for i, (_, (hit,)), support in zip(owners, items, check_all(verifier, items), strict=True):
        if support.supported and (i not in found or support.score > found[i][1].score):
            found[i] = (hit, support)
    return found


def repair_note(before: list[int], old: Support, to: int) -> str:
    """Why a sentence now cites passage ``to`` (``before``: the passages it cited)."""
    if not before:
        return f"it cited no retrieved passage; re-attributed to passage {to}"
    what = "contradicted" if old.verdict is Verdict.CONTRADICTED else "did not support"
    cited = ", ".join(map(str, before))
    return f"passage {cited} {what} it ({old.reason}); re-attributed to passage {to}"


def instruction_sentences(retrieved: Sequence[ScoredChunk]) -> list[str]:
    """The instruction-like sentences of the retrieved passages (never answer sentences)."""
    found: list[str] = []
    for hit in retrieved:
        text = hit.chunk.text
        found += [text[a:b] for a, b in split_sentences(text) if is_instruction(text[a:b])]
    return found


def answer_sentences(draft: Draft) -> list[DraftSentence]:
    """The draft sentences compose verifies, in order: ``verification.sentences[i]`` is
    ``answer_sentences(draft)[i]``."""
    # the extractor and the draft parser already leave these out; a draft from elsewhere may not
    return [s for s in draft.sentences if not is_instruction(s.text)]


def compose(
    draft: Draft,
    retrieved: Sequence[ScoredChunk],
    verifier: Verifier,
    policy: Literal["flag", "drop"],
    *,
    repair: bool = False,
    sections: list[tuple[str, str]] | None = None,
    trials: list[TrialRow] | None = None,
    coverage: Mapping[str, Coverage] | None = None,
    publications: Mapping[str, Sequence[DocLink]] | None = None,
) -> Composed:
    """Verify (and with ``repair``, re-attribute), sanitise and render. Only chunks in
    ``retrieved`` can ever be cited."""
    clean = MarkdownSanitiser(removed_urls=list(draft.removed_urls))
    skipped = [*draft.skipped_instructions, *instruction_sentences(retrieved)]
    sentences = answer_sentences(draft)
    skipped += [s.text for s in draft.sentences if is_instruction(s.text)]
    by_id = {h.chunk.chunk_id: h for h in retrieved}
    rank = {h.chunk.chunk_id: i + 1 for i, h in enumerate(retrieved)}
    # never a chunk that was not retrieved
    cited_of = [[by_id[c] for c in s.chunk_ids if c in by_id] for s in sentences]
    supports = verify_sentences(verifier, sentences, cited_of)
    repairs: dict[int, tuple[list[int], str]] = {}
    if repair:
        fixed = repair_citations(sentences, cited_of, supports, retrieved, verifier)
        for i, (hit, support) in fixed.items():
            before, old = [rank[h.chunk.chunk_id] for h in cited_of[i]], supports[i]
            repairs[i] = (before, repair_note(before, old, rank[hit.chunk.chunk_id]))
            cited_of[i], supports[i] = [hit], support
    titles = {title: clean(title) for title, _ in sections or []}

    checks: list[SentenceCheck] = []
    cite_n: dict[str, int] = {}
    citations: list[Citation] = []
    quoted: set[str] = set()  # chunks whose citation quote is the span supporting a sentence
    source_n: dict[str, int] = {}
    sources: list[Source] = []
    rendered: list[tuple[str | None, str]] = []  # (section, sentence text with markers)
    for idx, (sent, cited, support) in enumerate(zip(sentences, cited_of, supports, strict=True)):
        kept = support.supported or policy == "flag"
        shown = clean(sent.text)
        numbers: list[int] = []
        if kept:
            for hit in cited:
                cid = hit.chunk.chunk_id
                decided = support.chunk_id == cid
                qs, qe = (support.quote_start, support.quote_end) if decided else (0, 0)
                if cid not in cite_n:
                    doc_id = hit.chunk.doc_id
                    if doc_id not in source_n:
                        source_n[doc_id] = len(sources) + 1
                        sources.append(Source.of(source_n[doc_id], hit))
                    cite_n[cid] = len(citations) + 1
                    if not decided:
                        qs, qe = 0, len(hit.chunk.text)
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
                    if decided and support.supported:
                        quoted.add(cid)
                elif decided and support.supported and cid not in quoted:
                    # first quoted for a sentence it does not support: show the supporting span
                    citations[cite_n[cid] - 1].quote = Quote(
                        text=hit.chunk.text[qs:qe], start=qs, end=qe
                    )
                    quoted.add(cid)
                numbers.append(cite_n[cid])
            # the service's own markers go in after escaping, so they stay citations
            markers = "".join(f"[{n}]" for n in numbers)
            text = shown
            if markers:
                text = (
                    f"{text[:-1]} {markers}{text[-1]}" if text[-1] in ".!?" else f"{text} {markers}"
                )
            n_decided = cite_n.get(support.chunk_id) if support.chunk_id else None
            rendered.append((sent.section, text + verdict_mark(support.verdict, n_decided)))
        evidence = by_id.get(support.chunk_id) if support.chunk_id else None
        repaired_from, note = repairs.get(idx, (None, None))
        checks.append(
            SentenceCheck(
                index=idx,
                section=titles.get(sent.section, sent.section) if sent.section else None,
                text=shown,
                citations=numbers,
                verdict=support.verdict.value,
                supported=support.supported,
                score=round(support.score, 4),
                reason=support.reason,
                quote=None
                if evidence is None
                else EvidenceQuote(
                    text=evidence.chunk.text[support.quote_start : support.quote_end],
                    start=support.quote_start,
                    end=support.quote_end,
                    chunk_id=evidence.chunk.chunk_id,
                    citation=None,
                ),
                kept=kept,
                repaired_from=repaired_from,
                repair=note,
            )
        )
    for check in checks:  # a dropped sentence's chunk may be cited by a later sentence
        if check.quote is not None:
            check.quote.citation = cite_n.get(check.quote.chunk_id)
    passages = [Passage.of(i + 1, h) for i, h in enumerate(retrieved)]
    report_sections: list[ReportSection] | None = None
    if sections is None:
        # every sentence dropped as unsupported: say so rather than answer with nothing
        answer = " ".join(t for _, t in rendered) or NO_SUPPORTED_ANSWER
    else:
        report_sections = []
        parts: list[str] = []
        uncovered: list[str] = []
        for title, query in sections:
            body = " ".join(t for s, t in rendered if s == title)
            if not body:
                body = no_evidence_on(titles[title])
                uncovered.append(titles[title])
            report_sections.append(
                ReportSection(
                    title=titles[title],
                    query=query,
                    text=body,
                    evidence=titles[title] not in uncovered,
                    relevance=cov.relevance if (cov := (coverage or {}).get(title)) else None,
                    facet_contrast=cov.contrast if cov else None,
                )
            )
            parts.append(f"## {titles[title]}\n\n{body}")
        if uncovered:
            listed = "\n".join(f"- {t}" for t in uncovered)
            parts.append(f"## {NOT_COVERED}\n\n{listed}")
        if trials is not None:
            table = render_trials(trials, clean, publications or {})
            parts.append("## Relevant clinical trial records\n\n" + table)
        parts.append("## Sources\n\n" + render_sources(citations, sources, clean))
        answer = "\n\n".join(parts)
    verdicts = [s.verdict for s in supports]
    verification = Verification(
        method=verifier.method + (f" + {FIELDS_METHOD}" if any(s.facts for s in sentences) else ""),
        unsupported_policy=policy,
        all_supported=all(c.supported for c in checks if c.kept),
        supported=verdicts.count(Verdict.SUPPORTED),
        contradicted=verdicts.count(Verdict.CONTRADICTED),
        not_supported=verdicts.count(Verdict.NOT_SUPPORTED),
        repaired=len(repairs),
        sentences=checks,
        removed_citations=draft.removed_citations,
        removed_urls=list(dict.fromkeys(clean.removed_urls)),
        escaped=clean.escaped,
        skipped_instructions=list(dict.fromkeys(skipped)),
    )
    return answer, report_sections, citations, sources, passages, verification


def render_sources(
    citations: Sequence[Citation], sources: Sequence[Source], clean: Callable[[str], str]
) -> str:
    """The reference list, one entry per citation number used in the text, from stored metadata
    (sanitised by ``clean``; the URL is the one built from identifiers)."""
    if not citations:
        return "No sources were cited."
    docs = {s.n: s for s in sources}
    lines = []
    for c in citations:
        doc = docs[c.source]
        bits = [clean(doc.title).rstrip(".") + "."]
        where = c.section + (f", p. {c.page}" if c.page else "")
        if where:
            bits.append(f"({clean(where)})")
        if doc.journal:
            bits.append(clean(doc.journal) + ".")
        if doc.year:
            bits.append(f"{doc.year}.")
        if c.url:
            bits.append(c.url)
        lines.append(f"[{c.n}] " + " ".join(bits))
    return "\n".join(lines)
