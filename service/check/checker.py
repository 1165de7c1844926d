"""Check a report written elsewhere against the indexed literature.

For every claim sentence (``service.check.parse``):

1. **retrieve** the ``top_k`` best passages for the sentence (hybrid, at most two per document),
   plus the best three passages of every stored document the sentence cites (the claims' query
   vectors are embedded in one batch first);
2. **verify** the sentence against *each passage on its own* (one verifier call per passage), so a
   passage supports a claim only when it alone states it — with the verifier's key-terms check,
   every number and code of the claim ("mRNA-4157", "PD-L1") must be in that one passage;
3. **decide**: ``supported`` when any passage supports it; else ``contradicted`` when a passage
   contradicts it; else ``no_evidence`` (nothing in the indexed corpus states it).

A passage decides only when it speaks of what the claim speaks of. It must hold at least half of
the claim's content words: the verifier, run on a retrieved passage rather than on a passage an
answer cited, finds "support" in passages that share a word or two with the claim (a trial's
"Study Design:" chunk), so passages under that share are not scored at all. To contradict, it
must also name every identity-bearing term with letters (a drug code, a gene: "mRNA-4157",
"PD-L1"); numbers may differ, that is what a contradiction often is.

The report's own references (NCT numbers, PMIDs, PMCIDs, DOIs, URLs) are resolved with the store's
identifier lookup (``VectorStore.find_docs``, the lookup ingestion uses to find a stored
document): found, with the stored title, or not in the store. A URL without an identifier cannot
name a stored document. For each reference a sentence cites, the verdict of the stored record's
own passages is reported, and an id whose record does not support the sentence is flagged.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from core.embedding import CachedEmbedder
from core.ids import source_url
from core.retrieval import Retriever
from core.schemas import ScoredChunk, SearchFilter
from core.verify import Support, Verdict, Verifier
from core.verify.terms import content_words, key_terms, term_in
from service.check.models import (
    DEFAULT_CHECK_TOP_K,
    CheckResponse,
    CheckSummary,
    CitedReference,
    CitedVerdict,
    ClaimCheck,
    ClaimVerdict,
    Evidence,
    Quote,
    ReferenceCheck,
    SkippedSentence,
)
from service.check.parse import Claim, ParsedReport, WrittenId, parse_report

#: Passages per claim from one document (the rest of the top-k comes from other documents).
PER_DOC_CAP = 2
#: Passages of each cited stored document checked against the sentence citing it.
CITED_TOP_K = 3
#: Stored fields of each identifier kind.
ID_FIELDS = {"nct": "nct_id", "pmid": "pmid", "pmcid": "pmcid", "doi": "doi"}
#: A passage decides (supports or contradicts) only when it has this share of the claim's content
#: words: one that does not speak of what the claim speaks of cannot state it or its opposite.
MIN_COVERAGE = 0.5
#: Most evidence passages listed per claim.
MAX_EVIDENCE = 3


@dataclass(frozen=True, slots=True)
class Resolution:
    """Where an identifier points in the store."""

    doc_ids: tuple[str, ...]
    title: str | None = None
    url: str | None = None


@dataclass
class CheckedReport:
    """The parsed report and its result (the Markdown rendering needs both)."""

    parsed: ParsedReport
    result: CheckResponse


@dataclass
class _Judged:
    """One passage and the verifier's verdict on the claim against it alone."""

    hit: ScoredChunk
    support: Support
    verdict: Verdict = field(init=False)

    def __post_init__(self) -> None:
        self.verdict = self.support.verdict


def coverage(claim: str, passage: str) -> float:
    """Share of the claim's content words that the passage contains."""
    words = content_words(claim)
    return len(words & content_words(passage)) / len(words) if words else 0.0


def subject_terms(claim: str) -> list[str]:
    """The claim's identity-bearing terms that contain a letter (codes, genes, acronyms)."""
    return list(dict.fromkeys(t for t in key_terms(claim) if any(ch.isalpha() for ch in t)))


def can_contradict(claim: str, passage: str) -> bool:
    """Whether ``passage`` names every subject term of ``claim`` (so it speaks of the same
    thing and may contradict it)."""
    lower = passage.lower()
    return all(term_in(t, lower) for t in subject_terms(claim))


def _evidence(j: _Judged) -> Evidence:
    s, c = j.support, j.hit
    verdict = "supported" if j.verdict is Verdict.SUPPORTED else "contradicted"
    return Evidence(
        verdict=verdict,
        chunk_id=c.chunk.chunk_id,
        doc_id=c.chunk.doc_id,
        title=c.doc.title,
        section=" > ".join(c.chunk.section_path),
        url=source_url(c.doc.identifiers),
        quote=Quote(
            text=c.chunk.text[s.quote_start : s.quote_end], start=s.quote_start, end=s.quote_end
        ),
        score=round(s.score, 4),
        reason=s.reason,
    )


class ReportChecker:
    """Checks reports against one store with one verifier (make one per request: the NLI
    verifier caches pair scores and is not shared between threads)."""

    def __init__(self, retriever: Retriever, verifier: Verifier) -> None:
        # the same store, sparse encoder and fusion; the query vectors of all claims are embedded
        # in one batch (``check``) and served from this request's cache
        self.embedder = CachedEmbedder(retriever.embedder)
        self.retriever = Retriever(
            retriever.store, self.embedder, retriever.sparse, retriever.fusion
        )
        self.verifier = verifier
        self._resolved: dict[tuple[str, str], Resolution] = {}

    # -- references -----------------------------------------------------------------------------
    def resolve(self, wid: WrittenId) -> Resolution:
        """The stored documents with this identifier (none for a URL without one)."""
        key = (wid.kind, wid.value)
        if key in self._resolved:
            return self._resolved[key]
        doc_ids: tuple[str, ...] = ()
        title = url = None
        if wid.kind in ID_FIELDS:
            doc_ids = tuple(sorted(self.retriever.store.find_docs(ID_FIELDS[wid.kind], wid.value)))
        if doc_ids:
            first = self.retriever.store.doc_chunks(doc_ids[0], limit=1)
            if first:
                title = first[0].doc.title
                url = source_url(first[0].doc.identifiers)
        self._resolved[key] = Resolution(doc_ids, title, url)
        return self._resolved[key]

    # -- claims ---------------------------------------------------------------------------------
    def _judge(self, claim: str, hits: list[ScoredChunk]) -> list[_Judged]:
        """The verifier's verdict on the claim against each passage on its own, for the
        passages that speak of what the claim speaks of (the others cannot decide: they are not
        scored at all)."""
        on_topic = [h for h in hits if coverage(claim, h.chunk.text) >= MIN_COVERAGE]
        self.verifier.prepare(on_topic)
        judged = [_Judged(h, self.verifier.check(claim, [h])) for h in on_topic]
        for j in judged:
            if j.verdict is Verdict.CONTRADICTED and not can_contradict(claim, j.hit.chunk.text):
                j.verdict = Verdict.NOT_SUPPORTED
        return judged

    @staticmethod
    def _decide(judged: list[_Judged], retrieved: int) -> tuple[ClaimVerdict, str, list[_Judged]]:
        supporting = [j for j in judged if j.verdict is Verdict.SUPPORTED]
        if supporting:
            supporting.sort(key=lambda j: -j.support.score)
            n = len(supporting)
            return "supported", f"{n} of {retrieved} retrieved passages support it", supporting
        contradicting = [j for j in judged if j.verdict is Verdict.CONTRADICTED]
        if contradicting:
            n = len(contradicting)
            return (
                "contradicted",
                f"{n} of {retrieved} retrieved passages contradict it and none supports it",
                contradicting,
            )
        if not retrieved:
            return "no_evidence", "no passage was retrieved", []
        return (
            "no_evidence",
            f"none of the {retrieved} retrieved passages states it ({len(judged)} shared at least "
            "half of its content words and were judged)",
            [],
        )

    @staticmethod
    def _cited_verdict(judged: list[_Judged], doc_ids: tuple[str, ...]) -> tuple[CitedVerdict, str]:
        own = [j for j in judged if j.hit.chunk.doc_id in doc_ids]
        if any(j.verdict is Verdict.SUPPORTED for j in own):
            return "supported", "a passage of the cited record supports the sentence"
        if any(j.verdict is Verdict.CONTRADICTED for j in own):
            return "contradicted", "a passage of the cited record contradicts the sentence"
        return "not_supported", (
            f"none of the {len(own)} best passages of the cited record states the sentence"
        )

    def _citations(
        self, claim: Claim, parsed: ParsedReport, judged: list[_Judged]
    ) -> list[CitedReference]:
        entries = {e.label: e for e in parsed.references}
        cited: list[tuple[str, list[WrittenId]]] = []
        for label in claim.labels:
            entry = entries.get(label)
            cited.append((label, entry.ids if entry else []))
        cited += [(w.written, [w]) for w in claim.ids]
        out: list[CitedReference] = []
        for label, ids in cited:
            doc_ids = tuple(dict.fromkeys(d for w in ids for d in self.resolve(w).doc_ids))
            verdict: CitedVerdict
            if label not in entries and not ids:
                verdict, reason = (
                    "not_in_store",
                    f"the report's reference list has no entry {label}",
                )
            elif not ids:
                verdict, reason = (
                    "not_in_store",
                    "the entry names no NCT number, PMID, PMCID, DOI or URL to look up",
                )
            elif not doc_ids:
                verdict, reason = "not_in_store", "none of its identifiers is a stored document"
            else:
                verdict, reason = self._cited_verdict(judged, doc_ids)
            out.append(
                CitedReference(
                    label=label,
                    ids=[w.written for w in ids],
                    found=bool(doc_ids),
                    doc_ids=list(doc_ids),
                    verdict=verdict,
                    reason=reason,
                )
            )
        return out

    def check_claim(
        self, n: int, claim: Claim, parsed: ParsedReport, top_k: int, timings: dict[str, float]
    ) -> ClaimCheck:
        """The verdict of one claim, with its evidence and what its cited records say."""
        t0 = time.perf_counter()
        hits = self.retriever.search(claim.query, top_k=top_k, per_doc_cap=PER_DOC_CAP).chunks
        entries = {e.label: e for e in parsed.references}
        cited_ids = [w for label in claim.labels if label in entries for w in entries[label].ids]
        cited_docs = sorted({d for w in cited_ids + claim.ids for d in self.resolve(w).doc_ids})
        if cited_docs:
            more = self.retriever.search(
                claim.query,
                top_k=CITED_TOP_K * len(cited_docs),
                search_filter=SearchFilter(doc_ids=cited_docs),
                per_doc_cap=CITED_TOP_K,
            ).chunks
            seen = {h.chunk.chunk_id for h in hits}
            hits += [h for h in more if h.chunk.chunk_id not in seen]
        t1 = time.perf_counter()
        judged = self._judge(claim.query, hits)
        verdict, reason, deciding = self._decide(judged, len(hits))
        citations = self._citations(claim, parsed, judged)
        timings["retrieve_ms"] += (t1 - t0) * 1000
        timings["verify_ms"] += (time.perf_counter() - t1) * 1000
        return ClaimCheck(
            n=n,
            text=claim.text,
            verdict=verdict,
            reason=reason,
            evidence=[_evidence(j) for j in deciding[:MAX_EVIDENCE]],
            citations=citations,
            cited_not_supporting=[
                i for c in citations if c.found and c.verdict != "supported" for i in c.ids
            ],
            passages_retrieved=len(hits),
            passages_judged=len(judged),
        )

    # -- the report -----------------------------------------------------------------------------
    def references(self, parsed: ParsedReport, claims: list[ClaimCheck]) -> list[ReferenceCheck]:
        """Every identifier and URL the report writes, once, resolved."""
        by_key: dict[tuple[str, str], ReferenceCheck] = {}

        def add(w: WrittenId, label: str | None, claim: int | None) -> None:
            key = (w.kind, w.value)
            ref = by_key.get(key)
            if ref is None:
                r = self.resolve(w)
                note = ""
                if w.kind == "url":
                    note = "no identifier in this URL: the store holds documents by NCT number, "
                    note += "PMID, PMCID and DOI"
                elif not r.doc_ids:
                    note = "not in the store"
                ref = by_key[key] = ReferenceCheck(
                    id=w.written,
                    kind=w.kind,
                    found=bool(r.doc_ids),
                    doc_ids=list(r.doc_ids),
                    title=r.title,
                    url=r.url,
                    note=note,
                )
            if label is not None and label not in ref.labels:
                ref.labels.append(label)
            if claim is not None and claim not in ref.claims:
                ref.claims.append(claim)

        entries = {e.label: e for e in parsed.references}
        for e in parsed.references:
            for w in e.ids:
                add(w, e.label, None)
        for c, claim in zip(claims, parsed.claims, strict=True):
            for label in claim.labels:
                for w in entries[label].ids if label in entries else []:
                    add(w, label, c.n)
            for w in claim.ids:
                add(w, None, c.n)
        return list(by_key.values())

    def check(self, text: str, top_k: int = DEFAULT_CHECK_TOP_K) -> CheckedReport:
        """Check every claim of ``text`` (a text without claims gives an empty result: its
        ``skipped`` says what was found instead)."""
        t0 = time.perf_counter()
        parsed = parse_report(text)
        t_embed = time.perf_counter()
        self.embedder.embed([c.query for c in parsed.claims])
        timings = {"embed_ms": (time.perf_counter() - t_embed) * 1000, "retrieve_ms": 0.0}
        timings["verify_ms"] = 0.0
        claims = [
            self.check_claim(i + 1, c, parsed, top_k, timings) for i, c in enumerate(parsed.claims)
        ]
        t1 = time.perf_counter()
        references = self.references(parsed, claims)
        t2 = time.perf_counter()
        counts = {v: sum(c.verdict == v for c in claims) for v in ("supported", "contradicted")}
        summary = CheckSummary(
            claims=len(claims),
            supported=counts["supported"],
            contradicted=counts["contradicted"],
            no_evidence=len(claims) - sum(counts.values()),
            skipped=len(parsed.skipped),
            references=len(references),
            references_found=sum(r.found for r in references),
            references_not_found=sum(not r.found for r in references),
            cited_not_supporting=sum(bool(c.cited_not_supporting) for c in claims),
        )
        timings |= {"references_ms": (t2 - t1) * 1000, "total_ms": (t2 - t0) * 1000}
        result = CheckResponse(
            claims=claims,
            references=references,
            skipped=[
                SkippedSentence(text=s.text, reason=s.reason or s.kind) for s in parsed.skipped
            ],
            summary=summary,
            method=self.verifier.method,
            timings={k: round(v, 1) for k, v in timings.items()},
        )
        return CheckedReport(parsed, result)
