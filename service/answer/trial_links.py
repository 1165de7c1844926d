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
from core.schemas import ScoredChunk
from core.store.links import DocLink
from service.answer.draft import DraftSentence
from service.answer.extractive import extract

#: A section path part that holds results (JATS "Results > Efficacy", MEDLINE "RESULTS").
RESULTS_SECTION = re.compile(r"\b(results?|findings|conclusions?|efficacy|outcomes?)\b", re.I)
#: Publications shown per trial row (the rest are counted).
MAX_ROW_PUBLICATIONS = 5


def is_results_passage(hit: ScoredChunk) -> bool:
    """A passage from a results part of a paper (a section path part names results)."""
    return any(RESULTS_SECTION.search(part) for part in hit.chunk.section_path)


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
