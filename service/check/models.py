"""The request and the result of checking a report (``POST /v1/check``, ``litrag check``).

The result models are the checker's own output too: the route and the CLI render the same object.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from core.schemas import JsonInt

ClaimVerdict = Literal["supported", "contradicted", "no_evidence"]
CitedVerdict = Literal["supported", "contradicted", "not_supported", "not_in_store"]
IdKind = Literal["nct", "pmid", "pmcid", "doi", "url"]

#: Longest report text accepted (characters): about 8,000 words of English.
MAX_CHECK_CHARS = 50_000
#: Passages retrieved per claim by default, and at most.
DEFAULT_CHECK_TOP_K = 5
MAX_CHECK_TOP_K = 20

EXAMPLE_REPORT = (
    "## mRNA cancer vaccines\n\nPersonalised mRNA cancer vaccines encode neoantigens of the "
    "patient's tumour (1). Are they safe?\n\n## Sources\n\n[1] NCT03313778\n"
)


class CheckRequest(BaseModel):
    """A report to check against the indexed literature."""

    model_config = ConfigDict(extra="forbid")

    text: str = Field(
        min_length=1,
        max_length=MAX_CHECK_CHARS,
        pattern=r"\S",
        description=f"The report, Markdown or plain text (at most {MAX_CHECK_CHARS} characters)",
        examples=[EXAMPLE_REPORT],
    )
    top_k: JsonInt = Field(
        DEFAULT_CHECK_TOP_K,
        ge=1,
        le=MAX_CHECK_TOP_K,
        description="Passages retrieved per claim; each is checked on its own",
    )


class Quote(BaseModel):
    """The passage sentence that decided, with its offsets in the passage."""

    text: str
    start: int
    end: int


class Evidence(BaseModel):
    """One stored passage that supports or contradicts a claim."""

    verdict: Literal["supported", "contradicted"]
    chunk_id: str
    doc_id: str
    title: str = Field(description="The document's stored title")
    section: str = Field(description="Section path, e.g. 'Results > Efficacy'")
    url: str | None = Field(None, description="Built from the stored identifiers")
    quote: Quote
    score: float = Field(description="The verifier's P(support) for this passage")
    reason: str


class CitedReference(BaseModel):
    """What the stored record of one reference the claim cites says about the claim."""

    label: str = Field(description="The reference's label in the report, e.g. '1'")
    ids: list[str] = Field(description="The identifiers of the entry, as written")
    found: bool = Field(description="Whether any of them is a stored document")
    doc_ids: list[str] = Field(default_factory=list, description="The stored documents")
    verdict: CitedVerdict = Field(
        description="supported / contradicted / not_supported by the stored record's best "
        "passages; not_in_store when none of the ids is stored"
    )
    reason: str


class ClaimCheck(BaseModel):
    """One claim sentence of the report and its verdict."""

    n: int = Field(description="1-based position among the claims")
    text: str = Field(description="The sentence as written (Markdown markup removed)")
    verdict: ClaimVerdict = Field(
        description="supported: a retrieved passage states it; contradicted: a passage states "
        "the opposite and none supports it; no_evidence: no indexed passage states it"
    )
    reason: str
    evidence: list[Evidence] = Field(
        description="The passages that decided (supporting, or contradicting); empty for "
        "no_evidence"
    )
    citations: list[CitedReference] = Field(
        default_factory=list, description="The report's references this sentence cites"
    )
    cited_not_supporting: list[str] = Field(
        default_factory=list,
        description="Ids the sentence cites whose stored record does not support it",
    )
    passages_retrieved: int = Field(description="Passages retrieved for the claim")
    passages_judged: int = Field(
        description="Of those, the ones the verifier judged: those holding at least half of the "
        "claim's content words (the others cannot support or contradict it)"
    )


class SkippedSentence(BaseModel):
    """A piece of the report that is not a claim."""

    text: str
    reason: str = Field(description="heading, question, metadata line, lead-in, ...")


class ReferenceCheck(BaseModel):
    """One identifier or URL the report writes, resolved against the store."""

    id: str = Field(description="As written in the report")
    kind: IdKind
    found: bool = Field(description="Whether a stored document has this identifier")
    doc_ids: list[str] = Field(default_factory=list)
    title: str | None = Field(None, description="The stored document's title")
    url: str | None = Field(None, description="The stored document's URL, built from its ids")
    labels: list[str] = Field(
        default_factory=list, description="Reference-list entries that hold it"
    )
    claims: list[int] = Field(default_factory=list, description="Claims that cite it (n)")
    note: str = ""


class CheckSummary(BaseModel):
    """Counts of the verdicts and of the resolved references."""

    claims: int
    supported: int
    contradicted: int
    no_evidence: int
    skipped: int
    references: int
    references_found: int
    references_not_found: int
    cited_not_supporting: int


class CheckResponse(BaseModel):
    """Per-claim verdicts with their evidence, and the report's references resolved."""

    claims: list[ClaimCheck]
    references: list[ReferenceCheck]
    skipped: list[SkippedSentence]
    summary: CheckSummary
    method: str = Field(description="The verifier that judged each claim-passage pair")
    timings: dict[str, float]
