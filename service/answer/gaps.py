"""Say what the retrieved passages do not state.

The question's identity terms (``core.verify.terms.key_terms``: codes with digits, acronyms —
"mRNA-4157", "PD-L1") name what an answer must be about. When no retrieved passage mentions all of
them, or a yes/no question's claim ("mRNA-4157 targets PD-L1") is supported by none of the
passages that do, the extractive answer opens with a plain statement of the gap — "No retrieved
passage states that mRNA-4157 targets PD-L1." — and then gives what the passages say about the
terms they do mention (the subject), cited.

The statement cites nothing and claims nothing about the literature beyond the retrieved
passages; the verifier treats it as an abstention.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from core.schemas import ScoredChunk
from core.verify.terms import key_terms, term_in
from service.answer.plan import retrieval_query

# a source's own brackets around part of a name: "[mRNA]-4157" is "mRNA-4157"
_BRACKETS = re.compile(r"[\[\]()]")
_AUX = re.compile(
    r"^(does|do|is|are|was|were|can|could|will|would|should|may|might|has|have)\s+(.+?)[?.!\s]*$",
    re.IGNORECASE,
)
_TOKEN = re.compile(r"\S+")
_ORDINAL = re.compile(r"\d+(st|nd|rd|th)", re.IGNORECASE)


@dataclass(frozen=True)
class Gap:
    """What the passages do not state, and the terms they do mention."""

    statement: str
    subject: str | None  # the identity term the answer goes on about (some passage mentions it)


def searchable(text: str) -> str:
    """``text`` as terms are looked for in it: lower-cased, without brackets."""
    return _BRACKETS.sub("", text.lower())


def passage_text(hit: ScoredChunk) -> str:
    """The searchable text of a passage: header (title, section) and passage."""
    return searchable(f"{hit.chunk.header}\n{hit.chunk.text}")


def identity_terms(question: str) -> list[str]:
    """The question's identity terms, negated scope ("beyond COVID-19") left out."""
    terms: list[str] = []
    for raw in key_terms(retrieval_query(question)):
        # "IVF--is it …": a dash written as two hyphens ends the term
        for part in re.split(r"-{2,}", raw):
            part = part.strip(".,;:?!-")
            if _ORDINAL.fullmatch(part):
                continue  # "2nd", "3rd": a position, not a name
            if len(part) >= 2 and any(ch.isdigit() or ch.isupper() for ch in part):
                terms.append(part)
    return list(dict.fromkeys(terms))


def _identity_like(token: str) -> bool:
    """A token that can be a subject on its own: a code, an acronym or a capitalised name."""
    return any(ch.isdigit() or ch.isupper() for ch in token)


def _third_person(verb: str) -> str:
    if verb == "have":
        return "has"
    if re.search(r"(s|sh|ch|x|z|o)$", verb):
        return verb + "es"
    if re.search(r"[^aeiou]y$", verb):
        return verb[:-1] + "ies"
    return verb + "s"


def claim_of(question: str) -> str | None:
    """A yes/no question's claim as a statement ("Does mRNA-4157 target PD-L1?" → "mRNA-4157
    targets PD-L1"); None when the subject is not one identity-like token or there is no verb
    right after it (no parser guesses a subject's extent)."""
    m = _AUX.match(retrieval_query(question) + "?") or _AUX.match(question.strip())
    if not m:
        return None
    aux, rest = m.group(1).lower(), m.group(2).strip()
    tokens = _TOKEN.findall(rest)
    if len(tokens) < 2 or not _identity_like(tokens[0]):
        return None
    subject, verb, tail = tokens[0], tokens[1], " ".join(tokens[2:])
    if aux in ("does", "do"):
        if not verb.isalpha() or not verb.islower():
            return None
        verb = _third_person(verb) if aux == "does" else verb
        return f"{subject} {verb} {tail}".strip()
    if aux in ("has", "have") and not (verb.isalpha() and verb.islower()):
        return None
    return f"{subject} {aux} {' '.join(tokens[1:])}"


def _listed(terms: Sequence[str], last: str) -> str:
    """“A”, “B” <last> “C”."""
    quoted = [f"“{t}”" for t in terms]
    return quoted[0] if len(quoted) == 1 else f"{', '.join(quoted[:-1])} {last} {quoted[-1]}"


def find_gap(
    question: str,
    hits: Sequence[ScoredChunk],
    supported_by_any: Callable[[str, Sequence[ScoredChunk]], bool],
) -> Gap | None:
    """The gap between the question and the passages, or None when a passage covers it.

    ``supported_by_any(claim, hits)``: whether the verifier finds the claim supported by one of
    ``hits`` (asked only for passages mentioning every identity term).
    """
    terms = identity_terms(question)
    if not terms or not hits:
        return None
    texts = [passage_text(h) for h in hits]
    mentions = {t: [i for i, x in enumerate(texts) if term_in(t, x)] for t in terms}
    present = [t for t in terms if mentions[t]]
    with_all = [i for i in range(len(hits)) if all(i in mentions[t] for t in terms)]
    claim = claim_of(question)
    if with_all and (claim is None or supported_by_any(claim, [hits[i] for i in with_all])):
        return None
    # the subject of a yes/no claim ("mRNA-4157" in "mRNA-4157 targets PD-L1"), when a passage
    # mentions it: the answer goes on with what the passages say about it
    subject = next((t for t in present if claim is not None and claim.startswith(t)), None)
    if claim is not None:
        return Gap(f"No retrieved passage states that {claim}.", subject)
    missing = [t for t in terms if not mentions[t]]
    if missing:
        return Gap(f"No retrieved passage mentions {_listed(missing, 'or')}.", subject)
    return Gap(f"No retrieved passage mentions {_listed(terms, 'together with')}.", subject)


def on_subject(subject: str, hits: Sequence[ScoredChunk]) -> Callable[[int, str], bool]:
    """A focus for ``extract``: sentences whose passage (header included) mentions ``subject``."""
    texts = [passage_text(h) for h in hits]

    def focus(i: int, sentence: str) -> bool:
        return term_in(subject, texts[i])

    return focus
