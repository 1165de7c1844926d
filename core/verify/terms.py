"""Words, identity-bearing terms and sentence windows, shared by the verification methods."""

from __future__ import annotations

import re

from core.chunking import split_sentences

_WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9\-/.%]*[A-Za-z0-9%]|[A-Za-z0-9]")
_STOP = frozenset(
    (
        "the a an and or of in on for to with by from at as is are was were be been being this "
        "that these those it its their there which who whom whose what when where how than then "
        "also such may might can could would should will shall has have had not no but into "
        "about over under between among within during after before more most less least very "
        "other both each all any some including include includes included using used use based "
        "via per study studies trial trials patients results showed shown show"
    ).split()
)


def norm_word(word: str) -> str:
    """Lower-case, trim punctuation, drop a plural 's'."""
    w = word.lower().strip(".-/")
    return w[:-1] if len(w) > 4 and w.endswith("s") and not w.endswith("ss") else w


def content_words(text: str) -> set[str]:
    """Normalised words of more than two letters that are not stop words."""
    return {norm_word(w) for w in _WORD.findall(text) if norm_word(w) not in _STOP and len(w) > 2}


def key_terms(text: str) -> list[str]:
    """Identity-bearing tokens: numbers, ids, codes with digits, acronyms of 2+ capitals."""
    terms: list[str] = []
    for raw in _WORD.findall(text):
        w = raw.strip(".")
        has_digit = any(ch.isdigit() for ch in w)
        caps = sum(ch.isupper() for ch in w)
        if has_digit or (caps >= 2 and len(w) >= 2):
            # reference markers like "2" in "[2]" are removed before verification
            terms.append(w)
    return terms


def term_in(term: str, text_lower: str) -> bool:
    """Whether ``term`` occurs in a lower-cased text as a whole token, tolerating hyphen/space
    variants ("PD-L1" ~ "PDL1" ~ "PD L1"): "5%" is not found in "45%", nor "4" in "4157"."""
    chars = [re.escape(ch) for ch in re.sub(r"[\s\-]", "", term.lower())]
    if not chars:
        return True
    pattern = r"(?<![a-z0-9])" + r"[\s\-]?".join(chars) + r"(?![a-z0-9])"
    return re.search(pattern, text_lower) is not None


#: A source's own reference markers ("[12]", "[1]-[3]" with a hyphen or an en dash, "[4], [5]"):
#: extracted sentences drop them (they would read as the answer's citations), so quotes are
#: compared without them.
SOURCE_REFS = re.compile(
    r"\s*\[\d+(?:\s*[-\u2013,]\s*\d+)*\](?:\s*[-\u2013,]\s*\[\d+(?:\s*[-\u2013,]\s*\d+)*\])*"
)

_ABSTAIN = re.compile(
    r"\b(insufficient evidence|no (retrieved )?passages?|not (enough|sufficient) evidence)\b", re.I
)


def is_abstention(sentence: str) -> bool:
    """True for 'Insufficient evidence ...'-style sentences that make no claim."""
    return bool(_ABSTAIN.search(sentence))


def sentence_windows(text: str) -> list[tuple[int, int]]:
    """Each sentence's span, plus the whole text when it has more than one sentence."""
    spans = split_sentences(text) or [(0, len(text))]
    return spans if len(spans) == 1 else [*spans, (spans[0][0], spans[-1][1])]


def missing_terms(sentence: str, passage: str) -> list[str]:
    """Key terms of ``sentence`` that ``passage`` does not contain (in order, without repeats)."""
    lower = passage.lower()
    return list(dict.fromkeys(t for t in key_terms(sentence) if not term_in(t, lower)))
