"""A trial's publications in answers and reports, from the links resolved in the store.

- Reports: each trial row lists the linked publications that are in the store (own publications
  first), labelled by their identifiers and linked by URLs built from them, never from text.
- Answers: when an answer states a trial's facts and a *retrieved* passage is a results passage
  of one of the trial's own publications (the paper registers the trial, or the trial lists it as
  a RESULT/DERIVED reference), that passage's most relevant sentence follows the facts sentence,
  quoted and cited to that passage. Nothing that was not retrieved is ever cited.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence

from core.embedding import Embedder
from core.ids import source_url
from core.schemas import ScoredChunk
from core.store.base import VectorStore
from core.store.links import DocLink, resolve_links
from service.answer.draft import DraftSentence
from service.answer.extractive import extract
from service.models import TrialRow

#: A section path part that holds results (JATS "Results > Efficacy", MEDLINE "RESULTS").
RESULTS_SECTION = re.compile(r"\b(results?|findings|conclusions?|efficacy|outcomes?)\b", re.I)
#: Publications shown per trial row (the rest are counted).
MAX_ROW_PUBLICATIONS = 5


#: A section path part that describes the study rather than its results ("Methods > Outcomes").
METHODS_SECTION = re.compile(r"\b(methods?|design|protocol|materials|procedures?)\b", re.I)


def is_results_path(path: Sequence[str]) -> bool:
    """A section path in a results part of a paper: a part names results, and no part names only
    the methods (where "Outcomes" defines what will be measured, not what was found; a
    "Methods and results" part still counts)."""
    results = [bool(RESULTS_SECTION.search(p)) for p in path]
    methods_only = [
        bool(METHODS_SECTION.search(p)) and not r for p, r in zip(path, results, strict=True)
    ]
    return any(results) and not any(methods_only)


def is_results_passage(hit: ScoredChunk) -> bool:
    """A passage from a results part of a paper (:func:`is_results_path`)."""
    return is_results_path(hit.chunk.section_path)


def linked_results(
    trial_doc_id: str, hits: Sequence[ScoredChunk], links: Mapping[str, Sequence[DocLink]]
) -> list[ScoredChunk]:
    """The retrieved results passages of ``trial_doc_id``'s own publications, in rank order."""
    own = {link.doc_id for link in links.get(trial_doc_id, ()) if link.own_publication}
    return [h for h in hits if h.chunk.doc_id in own and is_results_passage(h)]


def linked_sentences(
    question: str,
    trial_doc_id: str,
    hits: Sequence[ScoredChunk],
    links: Mapping[str, Sequence[DocLink]],
    embedder: Embedder,
    section: str | None,
    exclude: set[str],
) -> list[DraftSentence]:
    """At most one quoted sentence from the retrieved results passages of the trial's own
    publications (the one most relevant to ``question``), citing its passage."""
    passages = linked_results(trial_doc_id, hits, links)
    if not passages:
        return []
    return extract(
        question,
        passages,
        embedder,
        max_sentences=1,
        min_relevance=-1.0,
        section=section,
        exclude=exclude,
    )


def publication_label(link: DocLink) -> str:
    """How a publication is named in a table: by its identifier (PMID, PMCID, DOI, id)."""
    ids = link.identifiers
    if ids.pmid:
        return f"PMID {ids.pmid}"
    if ids.pmcid:
        return ids.pmcid
    if ids.doi:
        return f"doi:{ids.doi}"
    return link.doc_id


def render_publications(links: Sequence[DocLink], clean: Callable[[str], str]) -> str:
    """A trials-table cell: each linked publication as a link built from its identifiers;
    a paper that only mentions or cites the trial is marked so."""
    if not links:
        return "none in store"
    cells = []
    for link in links[:MAX_ROW_PUBLICATIONS]:
        label = clean(publication_label(link)).replace("|", "\\|")
        text = f"[{label}]({link.url})" if link.url else label
        if not link.own_publication and link.paper_relation:
            text += f" ({link.paper_relation})"
        cells.append(text)
    more = len(links) - MAX_ROW_PUBLICATIONS
    return "; ".join(cells) + (f"; +{more} more" if more > 0 else "")


def render_trials(
    trials: Sequence[TrialRow],
    clean: Callable[[str], str],
    publications: Mapping[str, Sequence[DocLink]] | None = None,
) -> str:
    """Markdown table of trials (all values from stored trial records, sanitised by ``clean``;
    links are built from the NCT number and the linked publications' identifiers). When one of
    the trials has linked documents in the store (``publications``: trial doc id → links), a
    ``publications`` column lists them (a table without any keeps its five columns)."""
    if not trials:
        return "No trial records were retrieved for this question."

    def cell(text: str) -> str:
        return clean(text).replace("|", "\\|") or "n/a"

    head = "| NCT id | phase | status | conditions | title |"
    rule = "|---|---|---|---|---|"
    if not any((publications or {}).get(t.doc_id) for t in trials):
        publications = None
    if publications is not None:
        head, rule = head + " publications |", rule + "---|"
    rows = [head, rule]
    for t in trials:
        phases = ", ".join(t.phases)
        conditions = "; ".join(t.conditions[:3]) + (" …" if len(t.conditions) > 3 else "")
        row = (
            f"| [{cell(t.nct_id)}]({t.url}) | {cell(phases)} | {cell(t.overall_status or '')} | "
            f"{cell(conditions)} | {cell(t.title)} |"
        )
        if publications is not None:
            row += f" {render_publications(publications.get(t.doc_id, []), clean)} |"
        rows.append(row)
    return "\n".join(rows)


def trial_rows(
    store: VectorStore, hits: Mapping[str, ScoredChunk], limit: int
) -> tuple[list[TrialRow], dict[str, list[DocLink]]]:
    """A report's trial rows (the ``limit`` best-scored trial records of ``hits``, by doc id)
    and each one's linked documents in the store (one store query)."""
    rows = []
    for h in sorted(hits.values(), key=lambda h: (-h.score, h.chunk.doc_id))[:limit]:
        t = h.doc.trial
        if t is None:
            continue
        rows.append(
            TrialRow(
                nct_id=t.nct_id,
                title=h.doc.title,
                phases=t.phases,
                overall_status=t.overall_status,
                conditions=t.conditions,
                interventions=t.interventions,
                url=source_url(h.doc.identifiers) or f"https://clinicaltrials.gov/study/{t.nct_id}",
                doc_id=h.doc.doc_id,
            )
        )
    links = resolve_links(store, [hits[r.doc_id].doc for r in rows])
    for row in rows:
        row.publications = list(links.get(row.doc_id, ()))
    return rows, links
