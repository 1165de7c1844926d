"""What a document says about other documents: a paper's NCT numbers, a trial's publications.

Each parser turns these into :class:`~core.schemas.LinkMention` objects (``Document.links``);
the store resolves links from them in both directions (``core.store.links``).

A paper's NCT numbers get a *relation* that says how sure we are the paper reports that trial:

- ``registration``: MEDLINE's ``DataBankList`` (curated by the NLM), any abstract text, a section
  titled like "Trial registration", or a registration statement next to the number ("registered
  at ClinicalTrials.gov (NCT…)", "NCT…. Registered at …");
- ``mention``: elsewhere in the text (a trial the paper discusses, e.g. a follow-up study);
- ``cites``: in the reference list (a registry record it cites).

A trial's references keep their CT.gov type (``RESULT``, ``DERIVED``, ``BACKGROUND``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from lxml import etree

from core.ids import NCT_IN_TEXT, find_doi
from core.schemas import LinkMention, LinkRelation, Section

#: A section title or abstract label that holds the paper's own registration.
REGISTRATION_TITLE = re.compile(
    r"\bregistration\b|\bregistered\b|\btrial registry\b|\bregistry (?:number|no|id|identifier)\b"
    r"|trial (?:number|identifier|id\b)|clinicaltrials\.gov",
    re.IGNORECASE,
)
#: A registration statement near an NCT number (same sentence, before or just after it).
REGISTRATION_STATEMENT = re.compile(
    r"\bregist(?:ered|ration|ry number)\b|\btrial registration\b|\bregistration (?:number|no)\b",
    re.IGNORECASE,
)
_BEFORE, _AFTER = 150, 80

#: Strongest first: a document naming the same id twice keeps its strongest relation.
_STRENGTH: dict[str, int] = {
    "registration": 0,
    "RESULT": 0,
    "DERIVED": 1,
    "mention": 2,
    "BACKGROUND": 2,
    "cites": 3,
}


def merged(mentions: Iterable[LinkMention]) -> list[LinkMention]:
    """One mention per (kind, value), the strongest relation kept (first met on a tie)."""
    best: dict[tuple[str, str], LinkMention] = {}
    for m in mentions:
        key = (m.kind, m.value)
        have = best.get(key)
        if have is None or _STRENGTH[m.relation] < _STRENGTH[have.relation]:
            best[key] = m
    return list(best.values())


#: A registration statement made void by a negation just before it ("was not registered").
_NEGATED = re.compile(r"\b(?:not|never|n't|nor)\s+(?:\w+\s+)?$", re.IGNORECASE)


def _window(text: str, start: int, end: int, lo: int, hi: int) -> str:
    """The sentence around a mention: from the last sentence end before it, to the first one
    after it (or the end of the next sentence when that one starts "Registered…", as in
    "NCT01234567. Registered at ClinicalTrials.gov"), and never past the neighbouring NCT
    numbers (``lo``/``hi``), so a statement belongs to the nearest number only."""
    before = text[max(lo, start - _BEFORE) : start]
    cut = max(before.rfind(". "), before.rfind("; "))
    before = before[cut + 2 :] if cut >= 0 else before
    after = text[end : min(hi, end + _AFTER)]
    stop = _sentence_end(after)
    if stop >= 0:
        rest = after[stop + 2 :]
        follow = _sentence_end(rest)
        if rest.lstrip().lower().startswith("regist"):
            after = after[: stop + 2] + (rest[:follow] if follow >= 0 else rest)
        else:
            after = after[:stop]
    return before + text[start:end] + after


#: What joins NCT numbers listed together ("NCT1 and NCT2", "NCT1, NCT2", "NCT1/NCT2").
_LIST_GAP = re.compile(r"^[\s,;/()]*(?:and|or|&)?[\s,;/()]*$", re.IGNORECASE)


def _bounds(text: str, found: Sequence[re.Match[str]]) -> list[tuple[int, int]]:
    """For each mention, how far its sentence may reach: up to the neighbouring NCT numbers,
    except that numbers listed together share their bounds (one statement covers the list)."""
    n = len(found)
    listed = [
        bool(_LIST_GAP.match(text[found[i].end() : found[i + 1].start()])) for i in range(n - 1)
    ]
    lo = [0] * n
    for i in range(1, n):
        lo[i] = lo[i - 1] if listed[i - 1] else found[i - 1].end()
    hi = [len(text)] * n
    for i in range(n - 2, -1, -1):
        hi[i] = hi[i + 1] if listed[i] else found[i + 1].start()
    return list(zip(lo, hi, strict=True))


def _sentence_end(text: str) -> int:
    ends = [i for i in (text.find(". "), text.find("; ")) if i >= 0]
    return min(ends) if ends else -1


def _states_registration(window: str) -> bool:
    return any(
        not _NEGATED.search(window[: m.start()]) for m in REGISTRATION_STATEMENT.finditer(window)
    )


def nct_mentions(
    text: str, *, source: str, where: str, registration: bool = False, cites: bool = False
) -> list[LinkMention]:
    """NCT numbers in ``text``: ``cites`` in a reference; ``registration`` when the place says
    so (``registration``) or a registration statement stands next to the number; else
    ``mention``."""
    out: list[LinkMention] = []
    found = list(NCT_IN_TEXT.finditer(text))
    bounds = _bounds(text, found)
    for m, (lo, hi) in zip(found, bounds, strict=True):
        relation: LinkRelation
        if cites:
            relation = "cites"
        elif registration or _states_registration(_window(text, m.start(), m.end(), lo, hi)):
            relation = "registration"
        else:
            relation = "mention"
        value = f"NCT{m.group(1)}"
        out.append(
            LinkMention(kind="nct", value=value, relation=relation, source=source, where=where)
        )
    return out


def section_mentions(sections: Sequence[Section], source: str) -> list[LinkMention]:
    """NCT numbers in parsed sections (PDF text): abstracts and registration sections state
    the paper's own trial."""
    out: list[LinkMention] = []
    for s in sections:
        own = s.kind == "abstract" or any(REGISTRATION_TITLE.search(t) for t in s.path)
        page = f" (p. {s.page})" if s.page else ""
        out += nct_mentions(s.text, source=source, where=s.path_str + page, registration=own)
    return merged(out)


def reference_mentions(
    references: Iterable[tuple[str | None, str, str | None]], *, source: str, where: str
) -> list[LinkMention]:
    """A trial's references ``(pmid, citation, type)`` as PMID and DOI mentions with their type
    (a missing or unknown type counts as ``BACKGROUND``)."""
    out: list[LinkMention] = []
    for pmid, citation, kind in references:
        rel = (kind or "").strip().upper()
        relation: LinkRelation = (
            "RESULT" if rel == "RESULT" else "DERIVED" if rel == "DERIVED" else "BACKGROUND"
        )
        if pmid and pmid.strip().isdigit():
            out.append(
                LinkMention(
                    kind="pmid", value=pmid.strip(), relation=relation, source=source, where=where
                )
            )
        doi = find_doi(citation) if citation else None
        if doi:
            out.append(
                LinkMention(kind="doi", value=doi, relation=relation, source=source, where=where)
            )
    return merged(out)


# -- JATS -----------------------------------------------------------------------------------

_El = etree._Element
_XLINK_HREF = "{http://www.w3.org/1999/xlink}href"
_BLOCKS = frozenset({"p", "title", "td", "th", "mixed-citation", "element-citation", "ref"})


def _text(el: _El) -> str:
    return "".join(str(t) for t in el.itertext())


def _own_text(el: _El) -> str:
    """``el``'s direct text (its text and its children's tails), not its children's."""
    return (el.text or "") + " ".join(c.tail or "" for c in el)


def _context(el: _El) -> tuple[str, bool, bool]:
    """(where, registration place, reference) for text owned by ``el``."""
    titles: list[str] = []
    registration = cites = False
    label = ""
    node: _El | None = el
    while node is not None:
        tag = node.tag
        if tag in ("ref", "ref-list"):
            cites = True
            label = label or "References"
        elif tag in ("abstract", "trans-abstract"):
            registration = True
            label = label or "Abstract"
        elif tag in ("td", "th", "table-wrap"):
            label = label or "Table"
        elif tag in ("sec", "app", "boxed-text", "notes", "fn-group"):
            title_el = node.find("title")
            title = "" if title_el is None else " ".join(_text(title_el).split())
            if title:
                titles.append(title)
                if REGISTRATION_TITLE.search(title):
                    registration = True
        elif tag == "front":
            label = label or "Front matter"
        node = node.getparent()
    path = " > ".join(reversed(titles))
    where = " > ".join(p for p in (label, path) if p) or "Main text"
    return where, registration, cites


def _block_text(el: _El) -> str:
    node: _El | None = el
    while node is not None and node.tag not in _BLOCKS:
        node = node.getparent()
    return " ".join(_text(node if node is not None else el).split())


def jats_mentions(root: _El) -> list[LinkMention]:
    """NCT numbers anywhere in a JATS article (text, tables, references, link targets)."""
    out: list[LinkMention] = []
    for el in root.iter():
        if not isinstance(el.tag, str):
            continue
        own = _own_text(el)
        href = el.get(_XLINK_HREF) or ""
        if "nct" not in own.lower() and "nct" not in href.lower():
            continue
        is_link = el.tag in ("ext-link", "uri")
        source = "jats-ext-link" if is_link else "jats-text"
        where, registration, cites = _context(el)
        found = NCT_IN_TEXT.findall(own) + (NCT_IN_TEXT.findall(href) if is_link else [])
        if not found:
            continue
        # judged in the whole paragraph: "registered at ClinicalTrials.gov (<ext-link>NCT…"
        block = _block_text(el)
        known = {f"NCT{d}" for d in found}
        mentions = [
            m
            for m in nct_mentions(
                block, source=source, where=where, registration=registration, cites=cites
            )
            if m.value in known
        ]
        seen = {m.value for m in mentions}
        # a number only in a link target (the text says "here"): judged by its place
        mentions += [
            LinkMention(
                kind="nct",
                value=v,
                relation="cites" if cites else "registration" if registration else "mention",
                source=source,
                where=where,
            )
            for v in sorted(known - seen)
        ]
        out += mentions
    return merged(out)
