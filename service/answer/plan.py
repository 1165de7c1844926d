"""Report planning: a broad question → titled sections, each with a retrieval sub-query.

Deterministic facet split (no LLM needed): the first sentence is the topic; the areas the question
names ("Explore cancer treatment, rare diseases and personalized medicine, including clinical
trials and challenges") become sections. Negated scope ("beyond COVID-19") is kept in titles but
removed from retrieval queries, where it would pull in exactly what the user wants to exclude.
"""

from __future__ import annotations

import json
import re

from core.verify.terms import key_terms
from service.answer import prompts
from service.answer.llm import LLMClient, LLMError

_QWORDS = re.compile(
    r"^(what|which|how|why|who|where|when)\s+(are|is|were|was|do|does|did|can|could|should|have|"
    r"has)\s+(the\s+)?",
    re.IGNORECASE,
)
_NEGATED_SCOPE = re.compile(
    r"\b(beyond|other than|excluding|except|apart from|besides|outside( of)?)"
    r"\s+[\w\-]+(\s+[\w\-]+)?",
    re.IGNORECASE,
)
_LEAD_VERBS = re.compile(
    r"^(please\s+)?(explore|discuss|cover|covering|include|including|focus on|consider|address|"
    r"describe|summari[sz]e|compare|review|look at|examine)\s+",
    re.IGNORECASE,
)
_SPLIT = re.compile(
    r"\s*(?:,|;|:|\band\b|\bincluding\b|\bsuch as\b|\bas well as\b|\bwith a focus on\b"
    r"|\bplus\b)\s*",
    re.IGNORECASE,
)
#: the first section of a facet-split report: the topic itself
OVERVIEW = "Overview"
_TRIALS = re.compile(r"\b(clinical\s+)?trials?\b", re.IGNORECASE)


def retrieval_query(text: str) -> str:
    """``text`` without question words and negated scope, for retrieval."""
    q = _QWORDS.sub("", text.strip().rstrip("?.! "))
    q = _NEGATED_SCOPE.sub("", q)
    return re.sub(r"\s{2,}", " ", q).strip(" ,;")


def excluded_scope(question: str) -> list[str]:
    """What the question puts out of scope: "beyond COVID-19" → ["COVID-19"] (the first word
    after the negation; a second word only when it is capitalised or has a digit)."""
    out = []
    for m in _NEGATED_SCOPE.finditer(question):
        words = m.group(0)[len(m.group(1)) :].split()
        if not words:
            continue
        keep = words[:1] + [w for w in words[1:2] if any(ch.isupper() or ch.isdigit() for ch in w)]
        out.append(" ".join(keep).strip(" ,;:?!."))
    return [t for t in out if len(t) >= 2]


def is_trials_facet(title: str) -> bool:
    """Sections about trials retrieve trial records."""
    return bool(_TRIALS.search(title))


def plan_sections(question: str, max_sections: int) -> list[tuple[str, str]]:
    """(title, retrieval query) pairs; the first is always the overview of the topic."""
    parts = [p.strip() for p in re.split(r"(?<=[?.!])\s+", question.strip()) if p.strip()]
    topic = parts[0].rstrip("?.! ") if parts else question.strip()
    rest = " ".join(parts[1:])
    if not rest and ":" in topic:
        topic, rest = topic.split(":", 1)
    core = retrieval_query(topic)
    sections = [(OVERVIEW, core or topic)]
    # a facet is retrieved with the topic from its first identity term on ("rare diseases mRNA
    # vaccine technology"): "rare diseases latest developments in mRNA vaccine technology" finds
    # passages on mRNA vaccines in general, whose many words outweigh the facet's two
    terms = key_terms(core)
    subject = core[core.index(terms[0]) :] if terms else core
    seen = {"overview"}
    for raw in _SPLIT.split(_LEAD_VERBS.sub("", rest.strip().rstrip("?.! "))):
        facet = _LEAD_VERBS.sub("", raw.strip(" .?!")).strip()
        facet = re.sub(r"^(the|on|in|about|of)\s+", "", facet, flags=re.IGNORECASE)
        if len(facet) < 3 or facet.lower() in seen:
            continue
        seen.add(facet.lower())
        title = facet[0].upper() + facet[1:]
        sections.append((title, f"{facet} {subject}".strip()))
        if len(sections) >= max_sections:
            break
    return sections


def plan_report(llm: LLMClient | None, question: str, n: int) -> list[tuple[str, str]]:
    """A report's sections (title, retrieval query): the LLM's sub-questions when one is
    configured and answers usably, else the facet split of :func:`plan_sections`."""
    if llm is not None:
        try:
            raw = llm.complete(
                [
                    {
                        "role": "user",
                        "content": prompts.SUBQUESTIONS.format(n=n, question=question),
                    }
                ]
            )
            items = json.loads(raw[raw.index("[") : raw.rindex("]") + 1])
            plan = [
                (str(x["title"]).strip(), retrieval_query(str(x["question"])))
                for x in items
                if isinstance(x, dict) and x.get("title") and x.get("question")
            ][:n]
            if plan:
                return plan
        except (LLMError, ValueError, KeyError, TypeError):
            pass  # a plan is not worth failing the report for: fall back to the facet split
    return plan_sections(question, n)
