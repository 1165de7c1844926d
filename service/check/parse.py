"""A report written elsewhere (Markdown or plain text) read as claims and references.

The text is data: nothing in it is followed, only classified. The reader keeps the report's order
as a list of :class:`Segment` (headings, rules, boilerplate, sentences) so the checked report can be
written back in the same order, and finds:

* **claim sentences** — the sentences of paragraphs and list items (``core.chunking
  .split_sentences``) with the Markdown markup, the URLs and the citation markers taken out.
  Skipped, with the reason: headings, horizontal rules, tables, code, metadata lines
  (``**Generated:** …``), questions, lead-ins ending with ``:``, fragments of fewer than four
  words, and sentences that read as instructions to a model;
* **the reference list** — entries under a heading such as *Sources*, *References* or
  *Bibliography*, numbered ``[1]``, ``1.``, ``(1)`` or as footnotes ``[^1]:``; a numbered line
  elsewhere that carries a URL or an identifier is an entry too;
* **citation markers** — ``(1)``, ``[1]``, ``[1, 3]``, ``[1-3]``, ``[^1]`` that name an entry of
  the reference list (a bracketed number is taken for a marker even without a list; a number in
  parentheses only when the list has it and it ends a clause, so "(2) doses" stays text);
* **identifiers** written in the reference entries or in the sentences: NCT numbers, PMIDs,
  PMCIDs, DOIs and URLs. A URL that carries an identifier (a trial registry, PubMed, PMC or DOI
  address) stands for that identifier.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

from core.chunking import split_sentences
from core.ids import normalize_doi, normalize_nct, normalize_pmcid
from service.answer.safety import URL, is_instruction, remove_urls

IdKind = Literal["nct", "pmid", "pmcid", "doi", "url"]
SegmentKind = Literal["heading", "rule", "skipped", "claim", "reference", "break"]

#: A claim has at least this many words.
MIN_CLAIM_WORDS = 4

_HEADING = re.compile(r"^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
_RULE = re.compile(r"^\s{0,3}([-*_])(?:\s*\1){2,}\s*$")
_FENCE = re.compile(r"^\s{0,3}(```|~~~)")
_TABLE = re.compile(r"^\s*\|")
_SETEXT = re.compile(r"^\s{0,3}(=+|-+)\s*$")
_LIST = re.compile(r"^\s*(?:[-*+]|\d{1,3}[.)])\s+")
_QUOTE = re.compile(r"^\s*>\s?")
_META = re.compile(r"^\s*(?:\*\*|__)[^*_\n]{1,40}:\s*(?:\*\*|__)")
_REF_HEADING = re.compile(
    r"^(?:sources?|references?|bibliography|citations?|works cited|literature cited|notes|"
    r"footnotes|further reading)\b",
    re.IGNORECASE,
)
_REF_ENTRY = re.compile(r"^\s*(?:\[\^?(\w{1,12})\]:?|\(?(\d{1,3})[.):])\s+(.*)$")
_FOOTNOTE_DEF = re.compile(r"^\s*\[\^(\w{1,12})\]:\s*(.*)$")

# Inline markup: images go, links keep their text (their URL is kept as a reference), emphasis and
# code marks go.
_IMAGE = re.compile(r"!\[([^\]]*)\]\(([^)\s]*)[^)]*\)")
_LINK = re.compile(r"\[([^\]]+)\]\(\s*<?([^)\s>]*)>?(?:\s+\"[^\"]*\")?\s*\)")
_AUTOLINK = re.compile(r"<((?:https?|ftp)://[^>\s]+)>", re.IGNORECASE)
_EMPHASIS = re.compile(r"(\*\*|__|\*|_|`+|~~)(?=\S)(.+?)(?<=\S)\1")
_HTML_TAG = re.compile(r"</?[A-Za-z][^>]{0,200}>")

#: Citation markers: "[1]", "[1, 3]", "[1-3]", "(1)", "(1; 2)", "[^1]".
_MARKER = re.compile(
    r"\s*(?:\[\^(\w{1,12})\]|([\[(])\s*(\d{1,3}(?:\s*[-\u2013,;]\s*\d{1,3})*)\s*([\])]))"
)

_BRACKETED = r"\[(?:\^\w{1,12}|\d{1,3}(?:\s*[-\u2013,;]\s*\d{1,3})*)\]"
_LEADING_MARKERS = re.compile(rf"^{_BRACKETED}(?:\s*[,;]?\s*{_BRACKETED})*\s*")

_NCT = re.compile(r"\bNCT\d{8}\b", re.IGNORECASE)
_PMID = re.compile(r"\bPMID\s*:?\s*(\d{1,9})\b", re.IGNORECASE)
_PMCID = re.compile(r"\bPMC\d{3,10}\b", re.IGNORECASE)
_DOI = re.compile(r"\b10\.\d{4,9}/[^\s\"'<>]+")
_PUBMED_URL = re.compile(r"pubmed(?:\.ncbi\.nlm\.nih\.gov|/)/?(\d{1,9})\b", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class WrittenId:
    """An identifier as the report wrote it, its kind and its normalised value."""

    written: str
    kind: IdKind
    value: str
    url: str | None = None  # the URL it was written in, when it came from one


@dataclass
class ReferenceEntry:
    """One entry of the report's reference list."""

    label: str
    text: str
    ids: list[WrittenId] = field(default_factory=list)


@dataclass
class Segment:
    """A piece of the report in reading order.

    ``kind`` is ``claim`` (``claim`` holds its index into :attr:`ParsedReport.claims`),
    ``skipped`` (``reason`` says why), ``heading`` (``level``), ``rule``, ``reference`` or
    ``break`` (the end of a paragraph).
    """

    kind: SegmentKind
    text: str = ""
    level: int = 0
    reason: str = ""
    claim: int | None = None


@dataclass
class Claim:
    """A claim sentence: ``text`` as written (markup out), ``query`` what is checked (markers and
    URLs out), the reference labels it cites and the identifiers it writes itself."""

    text: str
    query: str
    labels: list[str] = field(default_factory=list)
    ids: list[WrittenId] = field(default_factory=list)


@dataclass
class ParsedReport:
    """What :func:`parse_report` found."""

    segments: list[Segment]
    claims: list[Claim]
    references: list[ReferenceEntry]

    @property
    def skipped(self) -> list[Segment]:
        """The headings and the sentences that are not claims (``reason`` says why)."""
        return [s for s in self.segments if s.kind in ("skipped", "heading")]


def _ids_in_url(url: str) -> list[WrittenId]:
    """The identifiers a URL carries (a trial registry, PubMed, PMC or DOI address)."""
    found: list[WrittenId] = []
    for m in _NCT.finditer(url):
        nct = normalize_nct(m.group(0))
        if nct:
            found.append(WrittenId(m.group(0), "nct", nct, url))
    for m in _PMCID.finditer(url):
        pmcid = normalize_pmcid(m.group(0))
        if pmcid:
            found.append(WrittenId(m.group(0), "pmcid", pmcid, url))
    pubmed = None if found else _PUBMED_URL.search(url)
    if pubmed:
        found.append(WrittenId(pubmed.group(1), "pmid", pubmed.group(1), url))
    doi_match = None if found else _DOI.search(url)
    doi = normalize_doi(doi_match.group(0)) if doi_match else None
    if doi_match and doi:
        found.append(WrittenId(doi_match.group(0).rstrip(".,;:)]}"), "doi", doi, url))
    return found


def find_ids(text: str) -> list[WrittenId]:
    """Identifiers and URLs written in ``text``, in order, without repeats of one value."""
    found: list[WrittenId] = []
    for m in URL.finditer(text):
        url = m.group(0).rstrip(".,;:!?")
        found += _ids_in_url(url) or [WrittenId(url, "url", url, url)]
    rest, _ = remove_urls(text)
    for m in _NCT.finditer(rest):
        nct = normalize_nct(m.group(0))
        if nct:
            found.append(WrittenId(m.group(0), "nct", nct))
    for m in _PMID.finditer(rest):
        found.append(WrittenId(m.group(0), "pmid", m.group(1)))
    for m in _PMCID.finditer(rest):
        pmcid = normalize_pmcid(m.group(0))
        if pmcid:
            found.append(WrittenId(m.group(0), "pmcid", pmcid))
    for m in _DOI.finditer(rest):
        doi = normalize_doi(m.group(0))
        if doi:
            found.append(WrittenId(m.group(0).rstrip(".,;:)]}"), "doi", doi))
    seen: set[tuple[str, str]] = set()
    unique: list[WrittenId] = []
    for w in found:
        if (w.kind, w.value) not in seen:
            seen.add((w.kind, w.value))
            unique.append(w)
    return unique


def plain_text(markdown: str) -> str:
    """``markdown`` without inline markup: images dropped, links as their text, emphasis and
    code marks and HTML tags removed (their text kept)."""
    text = _IMAGE.sub("", markdown)
    text = _LINK.sub(lambda m: m.group(1), text)
    text = _AUTOLINK.sub(lambda m: m.group(1), text)
    text = _HTML_TAG.sub("", text)
    for _ in range(3):  # nested emphasis (***x***)
        text, n = _EMPHASIS.subn(lambda m: m.group(2), text)
        if not n:
            break
    return " ".join(text.split())


def _link_urls(markdown: str) -> str:
    """``markdown`` with each link's URL kept beside its text, so identifiers in it are found."""
    return _LINK.sub(lambda m: f"{m.group(1)} {m.group(2)}", markdown)


def _expand(numbers: str) -> list[str]:
    """ "1-3, 5" → ["1", "2", "3", "5"] (a range spans at most 50 numbers)."""
    out: list[str] = []
    for part in re.split(r"\s*[,;]\s*", numbers.strip()):
        ends = [int(n) for n in re.split(r"\s*[-\u2013]\s*", part) if n.isdigit()]
        if len(ends) == 2 and 0 <= ends[1] - ends[0] <= 50:
            out += [str(i) for i in range(ends[0], ends[1] + 1)]
        elif len(ends) == 1:
            out.append(str(ends[0]))
    return out


def take_markers(sentence: str, labels: set[str]) -> tuple[str, list[str]]:
    """``sentence`` without its citation markers, and the labels they cite (in order).

    A footnote ``[^x]`` and a bracketed ``[n]`` are always markers; ``(n)`` only when every
    number it holds is a label of the reference list and it ends a clause (punctuation or
    another marker follows: "(2) doses" is text).
    """
    cited: list[str] = []

    def cut(m: re.Match[str]) -> str:
        if m.group(1) is not None:
            cited.append(m.group(1))
            return ""
        numbers = _expand(m.group(3))
        bracket = m.group(2) == "[" and m.group(4) == "]"
        paren = m.group(2) == "(" and m.group(4) == ")"
        after = sentence[m.end() :].lstrip(" ")
        at_end = not after or after[0] in ".,;:!?)]" or after.startswith(("(", "["))
        if numbers and (bracket or (paren and at_end and all(n in labels for n in numbers))):
            cited.extend(numbers)
            return ""
        return m.group(0)

    text = _MARKER.sub(cut, sentence)
    if cited:  # the separators the markers leave: "claim, ." → "claim."
        text = re.sub(r"\s+([.,;:!?])", r"\1", text)
        text = re.sub(r"[,;]+([.!?:])", r"\1", text)
    return " ".join(text.split()), list(dict.fromkeys(cited))


def skip_reason(sentence: str) -> str | None:
    """Why a sentence is not a claim, or None when it is one."""
    words = re.findall(r"[A-Za-z0-9][\w\-/.%]*", sentence)
    if sentence.rstrip(" *_\"'”’)").endswith("?"):  # noqa: RUF001 - typographic quotes
        return "question"
    if sentence.rstrip(" *_").endswith(":"):
        return "lead-in (ends with ':')"
    if len(words) < MIN_CLAIM_WORDS:
        return f"fewer than {MIN_CLAIM_WORDS} words"
    if is_instruction(sentence):
        return "reads as an instruction to a model, not a claim"
    return None


def _reference_entries(lines: list[str]) -> list[ReferenceEntry]:
    """Entries of a reference section: a numbered/footnote line starts one, other lines continue
    it; an unnumbered list item is an entry numbered by its position."""
    entries: list[ReferenceEntry] = []
    for line in lines:
        if not line.strip():
            continue
        m = _REF_ENTRY.match(line)
        if m:
            label = m.group(1) or m.group(2)
            entries.append(ReferenceEntry(label=label.lstrip("^"), text=m.group(3)))
        elif _LIST.match(line):
            entries.append(ReferenceEntry(str(len(entries) + 1), _LIST.sub("", line, count=1)))
        elif entries:
            entries[-1].text += " " + line.strip()
        else:
            entries.append(ReferenceEntry(str(len(entries) + 1), line.strip()))
    for e in entries:
        e.ids = find_ids(_link_urls(e.text))
        e.text = plain_text(remove_urls(_LINK.sub(lambda m: m.group(1), e.text))[0])
    return entries


def _is_loose_reference(line: str) -> bool:
    """A numbered line outside a reference section that carries a URL or an identifier."""
    m = _REF_ENTRY.match(line)
    return bool(m and (m.group(1) or "").lstrip("^").isdigit() and find_ids(_link_urls(line)))


def parse_report(text: str) -> ParsedReport:
    """The segments, claims and reference list of a Markdown or plain-text report."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    # Pass 1: the reference list (a reference section, footnote definitions, loose entries).
    ref_lines: list[str] = []
    in_refs, ref_level, fenced = False, 0, False
    body: list[tuple[str, bool]] = []  # (line, is it part of the reference list)
    for line in lines:
        if _FENCE.match(line):
            fenced = not fenced
        heading = None if fenced else _HEADING.match(line)
        if heading:
            level = len(heading.group(1))
            title = plain_text(heading.group(2))
            if _REF_HEADING.match(title):
                in_refs, ref_level = True, level
            elif in_refs and level <= ref_level:
                in_refs = False
        is_ref = (
            not fenced
            and not heading
            and (in_refs or bool(_FOOTNOTE_DEF.match(line)) or _is_loose_reference(line))
        )
        if is_ref:
            ref_lines.append(line)
        body.append((line, is_ref))
    references = _reference_entries(ref_lines)
    labels = {e.label for e in references}

    segments: list[Segment] = []
    claims: list[Claim] = []
    paragraph: list[str] = []

    def flush() -> None:
        if not paragraph:
            return
        raw = " ".join(p.strip() for p in paragraph)
        paragraph.clear()
        if _META.match(raw):
            segments.append(Segment("skipped", plain_text(raw), reason="metadata line"))
            segments.append(Segment("break"))
            return
        plain = plain_text(_link_urls(raw))
        first = len(segments)
        for a, b in split_sentences(plain):
            sentence = plain[a:b]
            last = segments[-1] if len(segments) > first else None
            lead = _LEADING_MARKERS.match(sentence)
            if lead and last is not None and last.claim is not None:
                # markers after the full stop ("… therapy. [1] Next …") cite the sentence before
                prior = claims[last.claim]
                _, cited = take_markers(lead.group(0), labels)
                last.text = prior.text = f"{prior.text} {lead.group(0).strip()}"
                prior.labels += [n for n in cited if n not in prior.labels]
                sentence = sentence[lead.end() :]
                if not sentence.strip():
                    continue
            without, cited = take_markers(sentence, labels)
            query = " ".join(remove_urls(without)[0].split())
            reason = skip_reason(query)
            if reason:
                segments.append(Segment("skipped", sentence, reason=reason))
                continue
            segments.append(Segment("claim", sentence, claim=len(claims)))
            claims.append(Claim(sentence, query, cited, find_ids(sentence)))
        segments.append(Segment("break"))

    fenced = False
    for line, is_ref in body:
        if _FENCE.match(line):
            flush()
            if not fenced:
                segments.append(Segment("skipped", "code block", reason="code block"))
            fenced = not fenced
            continue
        if fenced:
            continue
        heading = _HEADING.match(line)
        if heading:
            flush()
            segments.append(
                Segment("heading", plain_text(heading.group(2)), len(heading.group(1)), "heading")
            )
        elif is_ref:
            flush()
        elif _RULE.match(line) or (_SETEXT.match(line) and not paragraph):
            flush()
            segments.append(Segment("rule"))
        elif _SETEXT.match(line) and paragraph:
            title = plain_text(" ".join(paragraph))
            paragraph.clear()
            segments.append(
                Segment("heading", title, 1 if line.strip()[0] == "=" else 2, "heading")
            )
        elif _TABLE.match(line):
            flush()
            if not segments or segments[-1].reason != "table":
                segments.append(Segment("skipped", "table", reason="table"))
        elif not line.strip():
            flush()
        elif _LIST.match(line):
            flush()  # each list item is its own paragraph
            paragraph.append(_LIST.sub("", line, count=1))
        else:
            paragraph.append(_QUOTE.sub("", line))
    flush()
    if references:
        segments.append(Segment("reference", f"{len(references)} references"))
    return ParsedReport(segments, claims, references)
