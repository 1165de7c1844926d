"""Trial ↔ paper links, resolved in the store from what each document states.

A paper stores the NCT numbers it names (``link_nct``); a trial stores the PMIDs and DOIs of its
own publications (``link_pmid``, ``link_doi``: CT.gov references of type RESULT or DERIVED). A
link exists when either side names the other, and both directions come from one filtered query
over those indexed fields and the documents' own identifiers. Nothing is copied into the other
document, so a paper ingested after its trial (or the other way round) is linked at once, and a
deleted document leaves no dangling link.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from core.ids import source_url
from core.schemas import (
    LINKED_REFERENCE_TYPES,
    OWN_PUBLICATION,
    DocumentMeta,
    Identifiers,
    LinkMention,
    SourceType,
)
from core.store.base import Condition, VectorStore

log = logging.getLogger(__name__)

#: Most linked documents read for one resolution (a trial with more publications is rare).
MAX_LINKED = 1000


class DocLink(BaseModel):
    """A document linked to another, with who stated the link and how."""

    model_config = ConfigDict(extra="forbid")

    doc_id: str
    source_type: SourceType
    title: str
    url: str | None = Field(description="Built from the linked document's stored identifiers")
    identifiers: Identifiers
    stated_by: list[Literal["paper", "trial"]] = Field(
        description="Which side names the other: the paper (its NCT number), the trial (its "
        "reference PMID/DOI), or both"
    )
    paper_relation: str | None = Field(
        None, description="How the paper names the trial: registration, mention, cites"
    )
    trial_relation: str | None = Field(
        None, description="The trial's reference type: RESULT or DERIVED"
    )
    where: list[str] = Field(default_factory=list, description="Where each side states it")
    own_publication: bool = Field(
        description="The paper reports the trial (registration, RESULT or DERIVED)"
    )


def is_trial(meta: DocumentMeta) -> bool:
    """Trials link to papers; every other source type is a paper."""
    return meta.source_type is SourceType.TRIAL


def _linked(meta: DocumentMeta, kind: str) -> list[LinkMention]:
    """A trial's own-publication references of ``kind`` (pmid, doi)."""
    return [m for m in meta.links if m.kind == kind and m.relation in LINKED_REFERENCE_TYPES]


def link_conditions(metas: Sequence[DocumentMeta]) -> list[Condition]:
    """Conditions of which any one selects a document linked to one of ``metas``."""
    papers = [m for m in metas if not is_trial(m)]
    trials = [m for m in metas if is_trial(m)]

    def values(items: list[str | None]) -> tuple[str, ...]:
        return tuple(sorted({v for v in items if v}))

    return [
        # the trials the papers name, and the papers that name the trials
        Condition("nct_id", values([x.value for m in papers for x in m.links if x.kind == "nct"])),
        Condition("link_nct", values([m.identifiers.nct_id for m in trials])),
        # the papers the trials list, and the trials that list the papers
        Condition("pmid", values([x.value for m in trials for x in _linked(m, "pmid")])),
        Condition("doi", values([x.value for m in trials for x in _linked(m, "doi")])),
        Condition("link_pmid", values([m.identifiers.pmid for m in papers])),
        Condition("link_doi", values([m.identifiers.doi for m in papers])),
    ]


def link_between(paper: DocumentMeta, trial: DocumentMeta) -> DocLink | None:
    """The link of ``paper`` as seen from ``trial`` (and the facts of both sides); None when
    neither names the other."""
    nct = trial.identifiers.nct_id
    said = next((m for m in paper.links if m.kind == "nct" and m.value == nct), None)
    ids = paper.identifiers
    heard = next(
        (
            m
            for m in trial.links
            if m.relation in LINKED_REFERENCE_TYPES
            and (
                (m.kind == "pmid" and m.value == ids.pmid)
                or (m.kind == "doi" and m.value == ids.doi)
            )
        ),
        None,
    )
    if said is None and heard is None:
        return None
    stated_by: list[Literal["paper", "trial"]] = []
    where = []
    if said is not None:
        stated_by.append("paper")
        where.append(f"paper: {said.where}" if said.where else "paper")
    if heard is not None:
        stated_by.append("trial")
        where.append(f"trial: {heard.where} ({heard.kind} {heard.value})")
    relations = {r.relation for r in (said, heard) if r is not None}
    return DocLink(
        doc_id=paper.doc_id,
        source_type=paper.source_type,
        title=paper.title,
        url=source_url(paper.identifiers),
        identifiers=paper.identifiers,
        stated_by=stated_by,
        paper_relation=said.relation if said else None,
        trial_relation=heard.relation if heard else None,
        where=where,
        own_publication=bool(relations & OWN_PUBLICATION),
    )


def _as_seen_from_paper(link: DocLink, trial: DocumentMeta) -> DocLink:
    """The same link with the trial as the linked document."""
    return link.model_copy(
        update={
            "doc_id": trial.doc_id,
            "source_type": trial.source_type,
            "title": trial.title,
            "url": source_url(trial.identifiers),
            "identifiers": trial.identifiers,
        }
    )


def resolve_links(store: VectorStore, metas: Sequence[DocumentMeta]) -> dict[str, list[DocLink]]:
    """``{doc_id: its linked documents}`` for each of ``metas``, in one store query: a trial's
    papers, a paper's trials; own publications first, then by document id."""
    out: dict[str, list[DocLink]] = {m.doc_id: [] for m in metas}
    if not metas:
        return out
    found = store.find_any_docs(link_conditions(metas), MAX_LINKED)
    if len(found) >= MAX_LINKED:
        # unordered cut: some links of these documents may be missing; say so rather than guess
        log.warning(
            "links of %d documents: %d linked documents read, the limit; some may be missing",
            len(metas),
            len(found),
        )
    for meta in metas:
        links: list[DocLink] = []
        for other in found:
            if other.doc_id == meta.doc_id or is_trial(other) == is_trial(meta):
                continue
            if is_trial(meta):
                link = link_between(other, meta)
            else:
                link = link_between(meta, other)
                link = _as_seen_from_paper(link, other) if link else None
            if link is not None:
                links.append(link)
        out[meta.doc_id] = sorted(links, key=lambda x: (not x.own_publication, x.doc_id))
    return out


def links_of(store: VectorStore, meta: DocumentMeta) -> list[DocLink]:
    """The documents linked to one document (see :func:`resolve_links`)."""
    return resolve_links(store, [meta])[meta.doc_id]
