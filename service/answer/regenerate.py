"""One regeneration of an LLM draft whose sentences fail verification.

Attempt 1 is the composed first draft (verified, citations repaired). When some of its sentences
are still contradicted or not supported and ``answer.regenerate`` is on, the model is asked once
more, in the same conversation: its first reply, then those sentences with the verifier's reasons
and the request to rewrite each so that a passage states it (or leave it out). The reply is parsed
like any draft (markers to passages that were given only) and takes the failing sentences' place;
the supported sentences of attempt 1 stay exactly as they were (same text, same citations, so
they verify and repair alike). The merged draft is composed again — verified, repaired, sentences
still failing flagged or dropped per policy — and is the response (attempt 2). A rewritten
sentence that only states "insufficient evidence" withdraws the claim and is left out.

Requests: one per answer; for a report, one per section that has failing sentences (each section
was generated from its own numbered passages, and a section's conversation is reused, so a
section's passages stay numbered as the model saw them). If the LLM fails during the
regeneration, the sections it could not rewrite keep attempt 1's sentences, and when no request
succeeded the response is attempt 1; the error is recorded in attempt 2, never raised.

Both attempts are recorded in ``verification.attempts`` (``used`` marks the response's).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from openai.types.chat import ChatCompletionMessageParam

from core.verify.terms import is_abstention
from service.answer import prompts
from service.answer.compose import Composed, answer_sentences
from service.answer.draft import Draft, DraftSentence, parse_cited_text
from service.answer.extractive import NO_EVIDENCE
from service.answer.llm import LLMClient, LLMError
from service.models import FailingSentence, GenerationAttempt, SentenceCheck


@dataclass(frozen=True)
class Generation:
    """One LLM request of the first draft: what was asked, what the model replied, the chunk ids
    of the passages in prompt order (``[n]`` = ``passage_ids[n-1]``) and the report section the
    reply belongs to (None in answer mode)."""

    messages: list[ChatCompletionMessageParam]
    text: str
    passage_ids: list[str]
    section: str | None = None


def with_regeneration(
    llm: LLMClient,
    generations: Sequence[Generation],
    draft: Draft,
    first: Composed,
    recompose: Callable[[Draft], Composed],
    *,
    enabled: bool,
) -> Composed:
    """The response: ``first`` when all its sentences are supported (or regeneration is off),
    else ``recompose`` of the draft with the failing sentences rewritten once. Either way its
    ``verification.attempts`` records each attempt."""
    if not generations:  # no LLM request made the draft (e.g. nothing was retrieved)
        return first
    sentences = answer_sentences(draft)
    checks = first[5].sentences
    assert len(sentences) == len(checks), "compose verifies answer_sentences(draft) in order"
    rank = {p.chunk_id: p.rank for p in first[4]}
    failing = [i for i, c in enumerate(checks) if not c.supported]
    attempt1 = _attempt(1, len(generations), first, sentences, rank)
    if not failing or not enabled:
        first[5].attempts = [attempt1.model_copy(update={"used": True})]
        return first

    rewritten: dict[str | None, Draft] = {}  # section -> the rewritten sentences
    errors: list[str] = []
    asked = 0
    for gen in generations:
        mine = [i for i in failing if sentences[i].section == gen.section]
        if not mine:
            continue
        position = {cid: n for n, cid in enumerate(gen.passage_ids, 1)}
        listed = [
            (
                sentences[i].text,
                [position[c] for c in sentences[i].chunk_ids if c in position],
                checks[i].reason,
            )
            for i in mine
        ]
        messages: list[ChatCompletionMessageParam] = [
            *gen.messages,
            {"role": "assistant", "content": gen.text},
            {
                "role": "user",
                "content": prompts.REGENERATE.format(failing=prompts.format_failing(listed)),
            },
        ]
        asked += 1
        try:
            text = llm.complete(messages)
        except LLMError as exc:
            errors.append(f"{gen.section + ': ' if gen.section else ''}{exc}")
            continue
        rewritten[gen.section] = parse_cited_text(text, gen.passage_ids, gen.section)

    error = "; ".join(errors) or None
    if not rewritten:
        attempt2 = GenerationAttempt(
            attempt=2,
            llm_requests=asked,
            sentences=0,
            supported=0,
            failing=[],
            answer="",
            used=False,
            error=error,
        )
        first[5].attempts = [attempt1.model_copy(update={"used": True}), attempt2]
        return first

    merged = _merge(draft, sentences, set(failing), rewritten)
    if not merged.sentences and generations[0].section is None:
        merged.sentences = [DraftSentence(NO_EVIDENCE, [])]
    second = recompose(merged)
    attempt2 = _attempt(2, asked, second, answer_sentences(merged), rank).model_copy(
        update={"used": True, "error": error}
    )
    second[5].attempts = [attempt1, attempt2]
    return second


def _merge(
    draft: Draft,
    sentences: list[DraftSentence],
    failing: set[int],
    rewritten: dict[str | None, Draft],
) -> Draft:
    """Attempt 1's sentences with each section's failing ones replaced, at the place of its first
    failing sentence, by that section's rewritten sentences (abstentions and repeats of sentences
    already in the answer left out). Failing
    sentences of a section that was not rewritten stay. What parsing removed from either reply
    (citations, URLs, instruction-like sentences) stays reported, removed citations pointing at
    their sentence's new place."""
    out = Draft(
        removed_urls=list(draft.removed_urls),
        skipped_instructions=list(draft.skipped_instructions),
    )
    new_index: dict[int, int] = {}  # id(sentence of attempt 1) -> its index in the merged draft
    placed: set[str | None] = set()
    for i, s in enumerate(sentences):
        if i not in failing or s.section not in rewritten:
            new_index[id(s)] = len(out.sentences)
            out.sentences.append(s)
            continue
        if s.section in placed:
            continue
        placed.add(s.section)
        extra = rewritten[s.section]
        kept: dict[int, int] = {}
        have = {_same(x.text) for x in out.sentences} | {
            _same(x.text) for n, x in enumerate(sentences) if n not in failing
        }
        for r in extra.sentences:
            # an abstention withdraws the claim; a repeat of a sentence already there adds nothing
            if not is_abstention(r.text) and _same(r.text) not in have:
                have.add(_same(r.text))
                kept[id(r)] = len(out.sentences)
                out.sentences.append(r)
        out.removed_citations += [
            r.model_copy(update={"sentence": _moved(r.sentence, extra.sentences, kept)})
            for r in extra.removed_citations
        ]
        out.removed_urls += extra.removed_urls
        out.skipped_instructions += extra.skipped_instructions
    out.removed_citations = [
        r.model_copy(update={"sentence": _moved(r.sentence, draft.sentences, new_index)})
        for r in draft.removed_citations
    ] + out.removed_citations
    return out


_CONNECTIVE = re.compile(
    r"^(?:however|moreover|also|additionally|furthermore|in addition|similarly|thus|therefore|"
    r"indeed)\b[,\s]*"
)


def _same(text: str) -> str:
    """``text`` compared as words: case, spacing, dashes, end punctuation and an opening
    connective ("However, ...") ignored."""
    words = " ".join(text.lower().replace("—", " ").replace("–", " ").split()).strip(" .!?;:-")
    return _CONNECTIVE.sub("", words)


def _moved(
    sentence: int | None, before: list[DraftSentence], new_index: dict[int, int]
) -> int | None:
    """The merged-draft index of ``before[sentence]`` (None when it is no longer there)."""
    if sentence is None or not 0 <= sentence < len(before):
        return None
    return new_index.get(id(before[sentence]))


def _attempt(
    n: int,
    requests: int,
    composed: Composed,
    sentences: list[DraftSentence],
    rank: dict[str, int],
) -> GenerationAttempt:
    """How one attempt verified (``used`` False; the caller marks the response's)."""
    checks: list[SentenceCheck] = composed[5].sentences
    return GenerationAttempt(
        attempt=n,
        llm_requests=requests,
        sentences=len(checks),
        supported=sum(c.supported for c in checks),
        failing=[
            FailingSentence(
                text=c.text,
                passages=[rank[cid] for cid in s.chunk_ids if cid in rank],
                verdict="contradicted" if c.verdict == "contradicted" else "not_supported",
                reason=c.reason,
            )
            for c, s in zip(checks, sentences, strict=True)
            if not c.supported
        ],
        answer=composed[0],
        used=False,
    )
