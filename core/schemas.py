"""Pydantic types that cross layer boundaries: documents, sections, chunks and scored chunks."""

from __future__ import annotations

import hashlib
import json
from datetime import date
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictBool


class SourceType(StrEnum):
    """Kind of source a document came from; also a retrieval filter."""

    ARTICLE = "article"  # full-text JATS article
    PDF = "pdf"  # full text extracted from a PDF
    ABSTRACT = "abstract"  # MEDLINE / PubMed citation
    TRIAL = "trial"  # ClinicalTrials.gov record


class Identifiers(BaseModel):
    """External identifiers of a document; URLs are built only from these."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    pmcid: str | None = Field(None, description="PubMed Central id, with the PMC prefix")
    pmid: str | None = Field(None, description="PubMed id (digits)")
    doi: str | None = Field(None, description="DOI, lower-cased, without a resolver prefix")
    nct_id: str | None = Field(None, description="ClinicalTrials.gov NCT number")


class Reference(BaseModel):
    """One entry of an article's reference list, so in-text ``[12]`` can be resolved later."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    ref_id: str = Field(description="The reference's id in the source (e.g. JATS ``ref/@id``)")
    label: str | None = Field(None, description="Printed label, e.g. '12'")
    text: str = Field(description="The citation as text")
    doi: str | None = None
    pmid: str | None = None


#: How a paper names a trial: ``registration`` (the paper reports it: MEDLINE DataBankList, an
#: abstract, a trial-registration section or statement), ``mention`` (elsewhere in its text: may
#: be a trial it only discusses), ``cites`` (its reference list). How a trial names a publication:
#: CT.gov's reference type, ``RESULT`` / ``DERIVED`` (its own publications) or ``BACKGROUND``.
LinkRelation = Literal["registration", "mention", "cites", "RESULT", "DERIVED", "BACKGROUND"]
#: Relations that make a link a trial's *own* publication (reports list these; answers use them).
OWN_PUBLICATION: frozenset[str] = frozenset({"registration", "RESULT", "DERIVED"})
#: Trial reference types that are resolved to links (a BACKGROUND reference is literature the
#: trial cites, not its publication: kept in ``links`` but never resolved).
LINKED_REFERENCE_TYPES: frozenset[str] = frozenset({"RESULT", "DERIVED"})


class LinkMention(BaseModel):
    """An identifier of another document that a document states: a paper's NCT number, a trial's
    reference PMID or DOI. Links are resolved from these in the store, never copied."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["nct", "pmid", "doi"] = Field(description="What ``value`` identifies")
    value: str = Field(description="NCT… (upper case), PMID digits or a lower-cased DOI")
    relation: LinkRelation
    source: str = Field(
        description="Where it was read: jats-text, jats-ext-link, medline-databank, "
        "medline-abstract, pdf-text, ctgov-references, ctgov-legacy-references"
    )
    where: str = Field("", description="Section path or element it was found in")


def stored_links(mentions: list[LinkMention]) -> list[LinkMention]:
    """The mentions stored with a document: every one but a trial's BACKGROUND references, which
    are never resolved (a long background list would otherwise ride along with every chunk)."""
    return [m for m in mentions if m.relation != "BACKGROUND"]


class TrialInfo(BaseModel):
    """Filterable fields of a ClinicalTrials.gov record."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    nct_id: str
    overall_status: str | None = Field(None, description="e.g. RECRUITING, COMPLETED")
    phases: list[str] = Field(default_factory=list, description="e.g. ['PHASE1', 'PHASE2']")
    study_type: str | None = Field(None, description="INTERVENTIONAL or OBSERVATIONAL ...")
    conditions: list[str] = Field(default_factory=list)
    interventions: list[str] = Field(default_factory=list)
    sponsor: str | None = None
    start_date: str | None = Field(None, description="ISO date or year-month as given")
    completion_date: str | None = None
    has_results: bool = False


class Section(BaseModel):
    """A titled block of text. ``path`` holds the nested titles, outermost first."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    path: tuple[str, ...] = Field(description="Section titles, e.g. ('Results', 'Efficacy')")
    text: str = Field(description="Paragraphs separated by blank lines")
    page: int | None = Field(None, description="1-based page number (PDF sources)")
    kind: str = Field("body", description="abstract | body | caption | trial-module | ...")

    @property
    def path_str(self) -> str:
        """The section path joined as 'Results > Efficacy'."""
        return " > ".join(self.path)


class Document(BaseModel):
    """A parsed source document, before chunking."""

    model_config = ConfigDict(extra="forbid")

    doc_id: str = Field(description="Stable id: pmc:PMC…, pmid:…, nct:NCT…, doi:… or sha256:…")
    source_type: SourceType
    title: str
    identifiers: Identifiers = Field(default_factory=Identifiers)
    sections: list[Section] = Field(default_factory=list)
    journal: str | None = None
    pub_date: date | None = Field(None, description="Publication date (first day when partial)")
    year: int | None = None
    authors: list[str] = Field(default_factory=list)
    license: str | None = None
    keywords: list[str] = Field(default_factory=list)
    references: list[Reference] = Field(default_factory=list)
    trial: TrialInfo | None = None
    links: list[LinkMention] = Field(
        default_factory=list, description="Identifiers of linked documents it states"
    )
    source_path: str = Field("", description="File (and archive member) it was read from")
    unsupported: dict[str, int] = Field(
        default_factory=dict, description="Elements the parser saw but does not index, by name"
    )

    def text(self) -> str:
        """The text chunk offsets refer to: the sections joined by blank lines."""
        return "\n\n".join(s.text for s in self.sections)

    def content_hash(self) -> str:
        """sha256 of everything that is embedded or filtered on; an unchanged hash means the
        vectors are current. ``links`` is left out: links are payload only, so a store written
        before they existed gets them without re-embedding (the pipeline compares them apart)."""
        blob = self.model_dump(mode="json", exclude={"source_path", "unsupported", "links"})
        data = json.dumps(blob, sort_keys=True, ensure_ascii=False).encode()
        return hashlib.sha256(data).hexdigest()


class Chunk(BaseModel):
    """A passage of a document as stored: text, position and the metadata used for filters."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    chunk_id: str = Field(description="uuid5(doc_id#ordinal)")
    doc_id: str
    ordinal: int = Field(ge=0)
    text: str
    header: str = Field(description="Context header (title + section) prepended when embedding")
    section_path: tuple[str, ...] = ()
    page: int | None = None
    char_start: int = Field(ge=0, description="Offset of text in Document.text()")
    char_end: int = Field(ge=0)
    n_tokens: int = Field(0, ge=0, description="Model tokens of header + text")

    @property
    def embed_text(self) -> str:
        """What the dense and sparse encoders see."""
        return f"{self.header}\n{self.text}" if self.header else self.text


class DocumentMeta(BaseModel):
    """Document-level metadata stored alongside every chunk (the payload's ``doc`` part)."""

    model_config = ConfigDict(extra="forbid")

    doc_id: str
    source_type: SourceType
    title: str
    identifiers: Identifiers = Field(default_factory=Identifiers)
    journal: str | None = None
    pub_date: date | None = None
    year: int | None = None
    authors: list[str] = Field(default_factory=list)
    license: str | None = None
    keywords: list[str] = Field(default_factory=list)
    trial: TrialInfo | None = None
    links: list[LinkMention] = Field(
        default_factory=list, description="What it states about linked documents (no BACKGROUND)"
    )
    content_hash: str
    n_chunks: int
    source_path: str = ""

    @classmethod
    def of(cls, doc: Document, n_chunks: int) -> DocumentMeta:
        """Metadata of ``doc`` once chunked into ``n_chunks`` chunks."""
        return cls(
            doc_id=doc.doc_id,
            source_type=doc.source_type,
            title=doc.title,
            identifiers=doc.identifiers,
            journal=doc.journal,
            pub_date=doc.pub_date,
            year=doc.year,
            authors=doc.authors,
            license=doc.license,
            keywords=doc.keywords,
            trial=doc.trial,
            links=stored_links(doc.links),
            content_hash=doc.content_hash(),
            n_chunks=n_chunks,
            source_path=doc.source_path,
        )


class StoredChunk(BaseModel):
    """A chunk with its document's metadata, as read back from the store."""

    model_config = ConfigDict(extra="forbid")

    chunk: Chunk
    doc: DocumentMeta


class ScoredChunk(StoredChunk):
    """A retrieved chunk with its retrieval score."""

    score: float


JSONDict = dict[str, Any]


def _json_integer(value: object) -> object:
    """JSON Schema's integer: a number with no fraction; never a boolean or a string."""
    if isinstance(value, bool | str | bytes):
        raise ValueError("Input should be a JSON integer, not a boolean or a string")
    return value


JsonInt = Annotated[int, BeforeValidator(_json_integer)]
"""An int field of a request: 2 and 2.0 are accepted (both JSON integers), true and "2" not."""


class SearchFilter(BaseModel):
    """Payload filters for retrieval; every set field must match (a list matches any value)."""

    model_config = ConfigDict(extra="forbid")

    source_types: list[SourceType] | None = Field(None, description="article, pdf, abstract, trial")
    year_from: JsonInt | None = Field(
        None, ge=1800, le=2200, description="Publication/start year >="
    )
    year_to: JsonInt | None = Field(None, ge=1800, le=2200, description="Publication/start year <=")
    phases: list[str] | None = Field(None, description="Trial phases, e.g. PHASE1, PHASE2")
    statuses: list[str] | None = Field(None, description="Trial overall status, e.g. RECRUITING")
    conditions: list[str] | None = Field(None, description="Trial condition (case-insensitive)")
    interventions: list[str] | None = Field(None, description="Trial intervention name")
    has_results: StrictBool | None = Field(None, description="Trials with posted results only")
    doc_ids: list[str] | None = Field(None, description="Restrict to these document ids")

    def is_empty(self) -> bool:
        """True when no condition is set."""
        return all(v is None for v in self.model_dump().values())
