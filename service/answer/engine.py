"""Retrieve → generate (extractive or LLM) → verify → render, for answers and reports."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

from openai.types.chat import ChatCompletionMessageParam

from core.config import Settings
from core.embedding import CachedEmbedder, Embedder
from core.retrieval import Retriever
from core.schemas import ScoredChunk, SearchFilter
from core.store.links import DocLink, resolve_links
from core.verify import Verifier, make_verifier
from core.verify.terms import term_in
from service.answer import prompts
from service.answer.compose import Composed, compose
from service.answer.coverage import Coverage, assess
from service.answer.draft import Draft, DraftSentence, parse_cited_text
from service.answer.events import Delta, Event, Final, Passages, Question
from service.answer.extractive import NO_EVIDENCE, Candidates, candidates, extract
from service.answer.gaps import (
    Gap,
    find_gap,
    identity_terms,
    on_subject,
    passage_text,
    searchable,
)
from service.answer.llm import LLMClient, LLMError
from service.answer.plan import (
    OVERVIEW,
    excluded_scope,
    is_trials_facet,
    plan_report,
    retrieval_query,
)
from service.answer.regenerate import Generation, with_regeneration
from service.answer.results import (
    final_response,
    supported_by_any,
    timings_ms,
    unique_hits,
    with_trials,
)
from service.answer.safety import (
    DeltaBuffer,
    MarkdownSanitiser,
    draft_safe,
    without_instructions,
)
from service.answer.trial_facts import trial_sentence
from service.answer.trial_links import linked_sentences, trial_rows
from service.errors import GeneratorUnavailable
from service.models import AnswerResponse, Passage, TrialRow


@dataclass
class _Section:
    title: str
    query: str
    hits: list[ScoredChunk]
    facts: list[DraftSentence]  # trial records' facts sentences (trials sections)


#: passages kept from the search for an identity term no retrieved passage mentions
MISSING_TERM_HITS = 4
#: trial records stated as facts sentences in an answer / a report's trials section
TRIAL_FACTS_PER_ANSWER = 2
TRIAL_FACTS_PER_SECTION = 3


class AnswerEngine:
    """Answers questions from one store; stateless between requests."""

    def __init__(
        self,
        settings: Settings,
        retriever: Retriever,
        embedder: Embedder,
        llm: LLMClient | None,
    ) -> None:
        self.settings = settings
        self.retriever = retriever
        self.embedder = embedder
        self.llm = llm

    # -- helpers ------------------------------------------------------------------------------
    def check(self, req: Question) -> None:
        """Raise what would fail the request before any work (e.g. no LLM for generator=llm):
        a stream calls this before its response starts."""
        self._generator(req)

    def _generator(self, req: Question) -> Literal["extractive", "llm"]:
        if req.generator == "llm" and self.llm is None:
            raise GeneratorUnavailable(
                "generator 'llm' requested but no LLM endpoint is configured (LITRAG_LLM__BASE_URL)"
            )
        if req.generator == "extractive" or self.llm is None:
            return "extractive"
        return "llm"

    def _messages(self, question: str, hits: list[ScoredChunk]) -> list[ChatCompletionMessageParam]:
        # document text is data: sentences that read as instructions to a model are left out
        passages = [
            (h.doc.title, " > ".join(h.chunk.section_path), without_instructions(h.chunk.text))
            for h in hits
        ]
        return [
            {"role": "system", "content": prompts.SYSTEM},
            {
                "role": "user",
                "content": prompts.USER.format(
                    passages=prompts.format_passages(passages),
                    question=question,
                    max_sentences=self.settings.answer.max_sentences,
                ),
            },
        ]

    def _extractive(
        self,
        embedder: Embedder,
        question: str,
        hits: list[ScoredChunk],
        section: str | None,
        max_sentences: int,
        seen: set[str] | None = None,
        scored: Candidates | None = None,
    ) -> list[DraftSentence]:
        a = self.settings.answer
        return extract(
            question,
            hits,
            embedder,
            max_sentences=max_sentences,
            min_relevance=a.min_relevance,
            section=section,
            exclude=seen,
            scored=scored,
        )

    def _search(
        self,
        query: str,
        req: Question,
        top_k: int,
        flt: SearchFilter | None,
        exclude: frozenset[str] = frozenset(),
    ) -> tuple[list[ScoredChunk], float]:
        """The top ``top_k`` passages, without documents whose title names what the question
        puts out of scope ("beyond COVID-19": no COVID-19 booster trial)."""
        out_of_scope = excluded_scope(req.text)
        res = self.retriever.search(
            query,
            top_k=top_k * 2 if out_of_scope else top_k,
            mode=req.retrieval_mode,
            search_filter=flt,
            per_doc_cap=self.settings.answer.per_doc_cap,
            exclude_chunk_ids=exclude,
        )
        hits = [
            h
            for h in res.chunks
            if not any(term_in(t, searchable(h.doc.title)) for t in out_of_scope)
        ]
        return hits[:top_k], res.embed_ms + res.search_ms

    def _with_records(
        self,
        hits: list[ScoredChunk],
        picks: list[ScoredChunk],
        section: str | None,
        question: str,
        embedder: Embedder,
    ) -> tuple[list[ScoredChunk], list[DraftSentence]]:
        """The facts sentences of the trials ``picks``, and ``hits`` extended with the record
        passages those sentences cite (fetched from the store: they become retrieved passages).
        Each facts sentence is followed by a quote from a retrieved results passage of the
        trial's own publication, when there is one (``trial_links``)."""
        out, have = list(hits), {h.chunk.chunk_id for h in hits}
        sentences: list[DraftSentence] = []
        links = resolve_links(self.retriever.store, [p.doc for p in picks]) if picks else {}
        quoted: set[str] = set()
        for hit in picks:
            made = trial_sentence(hit, self.retriever.store.doc_chunks(hit.chunk.doc_id), section)
            if made is None:
                continue
            sentence, cited = made
            out += [c for c in cited if c.chunk.chunk_id not in have]
            have.update(c.chunk.chunk_id for c in cited)
            sentences.append(sentence)
            sentences += linked_sentences(
                question, hit.chunk.doc_id, hits, links, embedder, section, quoted
            )
        return out, sentences

    @staticmethod
    def _trial_picks(hits: list[ScoredChunk], limit: int, terms: list[str]) -> list[ScoredChunk]:
        """The best-ranked hit of each trial record among ``hits`` (at most ``limit``); with
        ``terms``, only records whose passages mention one of them."""
        picks: dict[str, ScoredChunk] = {}
        for h in hits:
            if h.doc.trial is None or h.chunk.doc_id in picks or len(picks) >= limit:
                continue
            if terms and not any(term_in(t, passage_text(h)) for t in terms):
                continue
            picks[h.chunk.doc_id] = h
        return list(picks.values())

    def _compose(
        self,
        draft: Draft,
        retrieved: list[ScoredChunk],
        verifier: Verifier,
        policy: Literal["flag", "drop"],
        generator: Literal["extractive", "llm"],
        generations: list[Generation],
        sections: list[tuple[str, str]] | None = None,
        trials: list[TrialRow] | None = None,
        coverage: dict[str, Coverage] | None = None,
        publications: dict[str, list[DocLink]] | None = None,
    ) -> Composed:
        """Verify and render the draft; an LLM draft's citations are repaired and its failing
        sentences regenerated once (``answer.regenerate``)."""

        def run(d: Draft, repair: bool) -> Composed:
            return compose(
                d,
                retrieved,
                verifier,
                policy,
                repair=repair,
                sections=sections,
                trials=trials,
                coverage=coverage,
                publications=publications,
            )

        composed = run(draft, generator == "llm")
        if generator != "llm" or self.llm is None:
            return composed
        return with_regeneration(
            self.llm,
            generations,
            draft,
            composed,
            lambda d: run(d, True),
            enabled=self.settings.answer.regenerate,
        )

    # -- answer mode --------------------------------------------------------------------------
    def answer(self, req: Question) -> AnswerResponse:
        """A cited answer (non-streaming)."""
        for event in self.events(req, stream_deltas=False):
            if isinstance(event, Final):
                return event.response
        raise AssertionError("the engine always ends with a Final event")

    def events(self, req: Question, stream_deltas: bool = True) -> Iterator[Event]:
        """passages → delta* → final (the verified response)."""
        if req.mode == "report":
            yield from self._report_events(req)
        else:
            yield from self._answer_events(req, stream_deltas)

    def _answer_events(self, req: Question, stream_deltas: bool) -> Iterator[Event]:
        t0 = time.perf_counter()
        generator = self._generator(req)
        top_k = req.top_k or self.settings.answer.top_k
        hits, retrieve_ms = self._search(req.text, req, top_k, req.filters)
        cache = CachedEmbedder(self.embedder)
        verifier = make_verifier(self.settings.answer, cache)
        facts: list[DraftSentence] = []
        gap: Gap | None = None
        if generator == "extractive" and hits:
            hits, more_ms = self._about_missing_terms(req, hits)
            retrieve_ms += more_ms
            gap = find_gap(req.text, hits, supported_by_any(verifier))
            # trial records the question names (or any, for a question about trials) are
            # stated as facts sentences; their record passages join the retrieved ones
            terms = [gap.subject] if gap and gap.subject else identity_terms(req.text)
            if is_trials_facet(req.text) or terms:
                picks = self._trial_picks(hits, TRIAL_FACTS_PER_ANSWER, terms)
                hits, facts = self._with_records(hits, picks, None, req.text, cache)
        yield Passages([Passage.of(i + 1, h) for i, h in enumerate(hits)])
        t1 = time.perf_counter()
        degraded = False
        draft = Draft()
        generations: list[Generation] = []
        if generator == "llm" and hits:
            assert self.llm is not None
            try:
                messages = self._messages(req.text, hits)
                if stream_deltas:
                    parts: list[str] = []
                    buffer = DeltaBuffer()
                    for delta in self.llm.stream(messages):
                        parts.append(delta)
                        if safe := buffer.feed(delta):
                            yield Delta(safe)
                    if rest := buffer.flush():
                        yield Delta(rest)
                    text = "".join(parts)
                else:
                    text = self.llm.complete(messages)
                ids = [h.chunk.chunk_id for h in hits]
                draft = parse_cited_text(text, ids)
                generations.append(Generation(messages, text, ids))
            except LLMError:
                if self.settings.llm.fallback != "extractive":
                    raise
                degraded, generator, draft = True, "extractive", Draft()
        if generator == "extractive" or not hits:
            draft.sentences = self._answer_sentences(req.text, hits, facts, gap, cache)
            if stream_deltas:
                for i, s in enumerate(draft.sentences):
                    yield Delta((" " if i else "") + draft_safe(s.text))
        if not draft.sentences:
            draft.sentences = [DraftSentence(NO_EVIDENCE, [])]
        t2 = time.perf_counter()
        policy = req.unsupported or self.settings.answer.unsupported
        composed = self._compose(draft, hits, verifier, policy, generator, generations)
        t3 = time.perf_counter()
        timings = timings_ms(t0, t1, t2, t3, retrieve_ms)
        yield Final(final_response(req, "answer", composed, generator, degraded, timings, None))

    def _about_missing_terms(
        self, req: Question, hits: list[ScoredChunk]
    ) -> tuple[list[ScoredChunk], float]:
        """``hits`` plus, for each identity term of the question no hit mentions, the passages
        a search for that term alone finds that do mention it (what the corpus says about it)."""
        texts = [passage_text(h) for h in hits]
        have = {h.chunk.chunk_id for h in hits}
        ms = 0.0
        terms = identity_terms(req.text)
        for term in terms:
            if any(term_in(term, t) for t in texts):
                continue
            # the term in the question's context, without the other terms that already match
            words = [w for w in retrieval_query(req.text).split() if w.strip("?.,;:") not in terms]
            query = " ".join([term, *words])
            more, took = self._search(query, req, MISSING_TERM_HITS, req.filters, frozenset(have))
            ms += took
            found = [h for h in more if term_in(term, passage_text(h))]
            hits = [*hits, *found]
            have.update(h.chunk.chunk_id for h in found)
        return hits, ms

    def _answer_sentences(
        self,
        question: str,
        hits: list[ScoredChunk],
        facts: list[DraftSentence],
        gap: Gap | None,
        embedder: Embedder,
    ) -> list[DraftSentence]:
        """The extractive answer: what the passages do not state (if anything), the named trials'
        facts, then the most relevant sentences — about the subject when there is a gap."""
        focus = on_subject(gap.subject, hits) if gap and gap.subject else None
        n = max(1, self.settings.answer.max_sentences - len(facts))
        # sentences about the subject are on topic by what they mention, not by their cosine
        floor = -1.0 if focus else self.settings.answer.min_relevance
        # a trial's linked results sentence is already among the facts: never twice
        found = extract(
            question,
            hits,
            embedder,
            max_sentences=n,
            min_relevance=floor,
            focus=focus,
            exclude={f.text for f in facts},
        )
        lead = [DraftSentence(gap.statement, [])] if gap else []
        return [*lead, *facts, *found]

    # -- report mode --------------------------------------------------------------------------
    def _report_events(self, req: Question) -> Iterator[Event]:
        t0 = time.perf_counter()
        generator = self._generator(req)
        a = self.settings.answer
        top_k = req.top_k or a.top_k
        plan = plan_report(self.llm, req.text, a.report_max_sections)
        retrieve_ms = 0.0
        sections: list[_Section] = []
        used: set[str] = set()
        trial_filter = with_trials(req.filters)
        trial_hits: dict[str, ScoredChunk] = {}
        for title, query in plan:
            flt = trial_filter if is_trials_facet(title) else req.filters
            hits, ms = self._search(query, req, top_k, flt, frozenset(used))
            retrieve_ms += ms
            facts: list[DraftSentence] = []
            if is_trials_facet(title):
                picks = self._trial_picks(hits, TRIAL_FACTS_PER_SECTION, [])
                hits, facts = self._with_records(hits, picks, title, query, self.embedder)
            used.update(h.chunk.chunk_id for h in hits)
            sections.append(_Section(title, query, hits, facts))
            # the trials table: trial records retrieved for every part of the question
            t_hits, ms = self._search(query, req, 5, trial_filter)
            retrieve_ms += ms
            for h in t_hits:
                best = trial_hits.get(h.chunk.doc_id)
                if best is None or h.score > best.score:
                    trial_hits[h.chunk.doc_id] = h
        all_hits = unique_hits(h for s in sections for h in s.hits)
        yield Passages([Passage.of(i + 1, h) for i, h in enumerate(all_hits)])
        t1 = time.perf_counter()
        draft = Draft()
        generations: list[Generation] = []
        degraded = False
        seen: set[str] = set()
        cache = CachedEmbedder(self.embedder)
        core = sections[0].query if sections[0].title == OVERVIEW else retrieval_query(req.text)
        coverage: dict[str, Coverage] = {}
        for sec in sections:
            scored = candidates(sec.query, sec.hits, cache, seen)
            # judged against "<facet> <core topic>" (how the floors were chosen), whatever
            # shorter query retrieved the section
            facet_query = sec.query if sec.title == OVERVIEW else f"{sec.title} {core}"
            coverage[sec.title] = assess(facet_query, core, scored, cache, a)
            if not sec.facts and not coverage[sec.title].evidence:
                continue  # no evidence on this facet: compose says so
            if generator == "llm" and sec.hits:
                assert self.llm is not None
                try:
                    messages = self._messages(f"{sec.title}: {sec.query}", sec.hits)
                    text = self.llm.complete(messages)
                    ids = [h.chunk.chunk_id for h in sec.hits]
                    parse_cited_text(text, ids, sec.title, draft)
                    generations.append(Generation(messages, text, ids, sec.title))
                    continue
                except LLMError:
                    if self.settings.llm.fallback != "extractive":
                        raise
                    degraded, generator = True, "extractive"
            n = max(1, a.report_section_sentences - len(sec.facts))
            draft.sentences += sec.facts + self._extractive(
                cache, sec.query, sec.hits, sec.title, n, seen, scored
            )
        for sec in sections:
            yield Delta(f"## {MarkdownSanitiser()(sec.title)}\n")
        t2 = time.perf_counter()
        trials, publications = trial_rows(self.retriever.store, trial_hits, a.report_max_trials)
        verifier = make_verifier(a, cache)
        policy = req.unsupported or a.unsupported
        titled = [(s.title, s.query) for s in sections]
        composed = self._compose(
            draft,
            all_hits,
            verifier,
            policy,
            generator,
            generations,
            titled,
            trials,
            coverage,
            publications,
        )
        t3 = time.perf_counter()
        timings = timings_ms(t0, t1, t2, t3, retrieve_ms)
        yield Final(final_response(req, "report", composed, generator, degraded, timings, trials))
