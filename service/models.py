"""Request and response models of the HTTP API (separate from the core schemas they render)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool

from core.ids import all_urls, source_url
from core.schemas import Identifiers, JsonInt, ScoredChunk, SearchFilter, SourceType, TrialInfo
from core.store.links import DocLink

RetrievalMode = Literal["dense", "sparse", "hybrid"]

EXAMPLE_QUESTION = (
    "What are the latest developments in mRNA vaccine technology beyond COVID-19? Explore cancer "
    "treatment, rare diseases and personalized medicine, including clinical trials and challenges."
)


class _Req(BaseModel):
    model_config = ConfigDict(extra="forbid")


#: A question or query must contain something other than white space.
NOT_BLANK = r"\S"


class SearchRequest(_Req):
    """A retrieval query."""

    query: str = Field(
        min_length=1,
        pattern=NOT_BLANK,
        description="Free-text query (at most service.max_question_chars characters)",
        examples=["mRNA cancer vaccine"],
    )
    top_k: JsonInt = Field(10, ge=1, description="Passages to return (at most service.max_top_k)")
    mode: RetrievalMode = Field(
        "hybrid",
        description="dense, sparse (BM25) or hybrid (both fused as LITRAG_RETRIEVAL__FUSION says)",
    )
    filters: SearchFilter | None = Field(None, description="Payload filters")
    per_doc_cap: JsonInt | None = Field(
        3, ge=1, description="Most passages per document; null = none"
    )


class AnswerRequest(_Req):
    """A question to answer (or a broad question to report on) with tied citations."""

    question: str = Field(
        min_length=1,
        pattern=NOT_BLANK,
        description="The question (at most service.max_question_chars characters)",
        examples=[EXAMPLE_QUESTION],
    )
    mode: Literal["answer", "report"] = Field("answer", description="answer, or a sectioned report")
    top_k: JsonInt | None = Field(
        None, ge=1, description="Passages per answer or report section (at most service.max_top_k)"
    )
    retrieval_mode: RetrievalMode = "hybrid"
    filters: SearchFilter | None = None
    generator: Literal["auto", "extractive", "llm"] = Field(
        "auto", description="auto = the LLM when one is configured, else extractive"
    )
    unsupported: Literal["flag", "drop"] | None = Field(
        None,
        description="Contradicted and not-supported sentences: flag (kept, marked) or drop "
        "(default from settings)",
    )
    stream: StrictBool = Field(False, description="Server-sent events: passages, deltas, final")


class Passage(BaseModel):
    """A retrieved chunk with the metadata needed to show and cite it."""

    rank: int
    score: float
    chunk_id: str
    doc_id: str
    title: str
    source_type: SourceType
    section: str
    section_path: list[str]
    page: int | None
    char_start: int
    char_end: int
    text: str
    url: str | None = Field(description="Built from the document's stored identifiers")
    identifiers: Identifiers
    year: int | None
    journal: str | None
    trial: TrialInfo | None = None

    @classmethod
    def of(cls, rank: int, hit: ScoredChunk) -> Passage:
        """Render a retrieved chunk."""
        c, d = hit.chunk, hit.doc
        return cls(
            rank=rank,
            score=hit.score,
            chunk_id=c.chunk_id,
            doc_id=c.doc_id,
            title=d.title,
            source_type=d.source_type,
            section=" > ".join(c.section_path),
            section_path=list(c.section_path),
            page=c.page,
            char_start=c.char_start,
            char_end=c.char_end,
            text=c.text,
            url=source_url(d.identifiers),
            identifiers=d.identifiers,
            year=d.year,
            journal=d.journal,
            trial=d.trial,
        )


class SearchResponse(BaseModel):
    """Ranked passages."""

    query: str
    mode: RetrievalMode
    passages: list[Passage]
    timings: dict[str, float] = Field(description="Milliseconds per stage")


class Quote(BaseModel):
    """A span of a chunk's text (offsets into the chunk text)."""

    text: str
    start: int
    end: int


class EvidenceQuote(Quote):
    """The passage sentence(s) that decided a sentence's verdict."""

    chunk_id: str = Field(description="The chunk the quote is from (always a retrieved chunk)")
    citation: int | None = Field(
        description="Its number in citations[] ([n] in the answer); null when the sentence was "
        "dropped and the chunk is cited nowhere else"
    )


class Citation(BaseModel):
    """``[n]`` in the answer: one retrieved chunk."""

    n: int
    chunk_id: str
    doc_id: str
    source: int = Field(description="Number of the document in sources[]")
    title: str
    section: str
    page: int | None
    quote: Quote = Field(
        description="The span of the chunk that decided the verdict of the first sentence citing "
        "it (the supporting span once a supported sentence cites it)"
    )
    url: str | None


class Source(BaseModel):
    """A cited document, rendered from stored metadata only."""

    n: int
    doc_id: str
    title: str
    source_type: SourceType
    url: str | None
    urls: dict[str, str]
    identifiers: Identifiers
    journal: str | None
    year: int | None
    authors: list[str]
    trial: TrialInfo | None = None

    @classmethod
    def of(cls, n: int, hit: ScoredChunk) -> Source:
        """Render the document of a cited chunk."""
        d = hit.doc
        return cls(
            n=n,
            doc_id=d.doc_id,
            title=d.title,
            source_type=d.source_type,
            url=source_url(d.identifiers),
            urls=all_urls(d.identifiers),
            identifiers=d.identifiers,
            journal=d.journal,
            year=d.year,
            authors=d.authors[:6],
            trial=d.trial,
        )


VerdictName = Literal["supported", "contradicted", "not_supported"]


class SentenceCheck(BaseModel):
    """What the chunks one answer sentence cites say about it."""

    index: int
    section: str | None = None
    text: str
    citations: list[int] = Field(description="Numbers of the citations[] the sentence carries")
    verdict: VerdictName = Field(
        description="supported: a cited passage states it; contradicted: a cited passage states "
        "the opposite; not_supported: the cited passages do not state it (or it cites nothing)"
    )
    supported: bool = Field(description="verdict == 'supported' (kept for older clients)")
    score: float = Field(description="Support score in [0, 1] (see verification.method)")
    reason: str
    quote: EvidenceQuote | None = Field(
        None,
        description="The supporting or contradicting passage span (for not_supported: the "
        "closest one); null when the sentence cites nothing",
    )
    kept: bool = Field(description="False when dropped from the answer (unsupported=drop)")
    repaired_from: list[int] | None = Field(
        None,
        description="Set when the sentence was re-attributed: passages[].rank of the chunks the "
        "generator cited (empty when it cited none that were retrieved); null = not repaired",
    )
    repair: str | None = Field(
        None, description="Why and to which passage the citation was re-attributed"
    )


class RemovedCitation(BaseModel):
    """A citation marker taken out of the answer, and why."""

    marker: str
    sentence: int | None
    reason: str


class FailingSentence(BaseModel):
    """A sentence of one generation attempt that its citations do not support."""

    text: str = Field(description="The sentence as the answer shows it, without its markers")
    passages: list[int] = Field(
        description="passages[].rank of the chunks the model cited (empty: it cited none)"
    )
    verdict: Literal["contradicted", "not_supported"]
    reason: str = Field(description="The verifier's reason, as sent back to the model")


class GenerationAttempt(BaseModel):
    """One LLM generation of an answer (or of a report's sections) and how it verified.

    Attempt 1 is the first draft after citation repair; attempt 2, made only when attempt 1 has
    failing sentences and ``answer.regenerate`` is on, re-asks the model about exactly those
    sentences (with the verifier's reasons) and keeps the supported ones of attempt 1."""

    attempt: int = Field(ge=1, description="1 = first draft; 2 = the one regeneration")
    llm_requests: int = Field(
        ge=0, description="LLM requests this attempt made (reports: one per section asked)"
    )
    sentences: int = Field(ge=0, description="Sentences verified in this attempt's answer")
    supported: int = Field(ge=0, description="Of those, supported (after citation repair)")
    failing: list[FailingSentence] = Field(
        description="Its contradicted and not-supported sentences"
    )
    answer: str = Field(description="The Markdown answer this attempt composed")
    used: bool = Field(description="True for the attempt whose answer is the response's")
    error: str | None = Field(
        None,
        description="Why this attempt produced no answer (the LLM failed during the "
        "regeneration: the response keeps attempt 1)",
    )


class Verification(BaseModel):
    """How every sentence's citations were checked."""

    method: str
    unsupported_policy: Literal["flag", "drop"] = Field(
        description="flag: contradicted and not-supported sentences stay, marked "
        "'(⚠ contradicted by [n])' / '(⚠ not supported by [n])'; drop: they are removed"
    )
    all_supported: bool = Field(description="Every sentence kept in the answer is supported")
    supported: int = Field(description="Sentences judged supported (kept or not)")
    contradicted: int = Field(description="Sentences judged contradicted (kept or not)")
    not_supported: int = Field(description="Sentences judged not supported (kept or not)")
    repaired: int = Field(
        description="Sentences whose citation was re-attributed to a retrieved passage"
    )
    sentences: list[SentenceCheck]
    removed_citations: list[RemovedCitation]
    removed_urls: list[str] = Field(
        description="URLs removed (each once) from the model's text, quoted document sentences "
        "and the metadata in the Markdown (titles, conditions); the only links left are built "
        "from identifiers"
    )
    escaped: int = Field(
        0,
        description="Characters of document or model text escaped in the Markdown (answer, "
        "sections, trials table, Sources): '\\', '[' and ']' backslash-escaped, a '<' that "
        "could open HTML written '&lt;'",
    )
    skipped_instructions: list[str] = Field(
        default_factory=list,
        description="Instruction-like sentences (prompt injections: 'ignore previous "
        "instructions', 'you are now …', 'system prompt', …) in the retrieved passages or the "
        "model's text; never used as answer sentences",
    )
    attempts: list[GenerationAttempt] = Field(
        default_factory=list,
        description="LLM answers: each generation attempt and how it verified (a second one "
        "only when the first had failing sentences and answer.regenerate is on); empty for "
        "extractive answers",
    )


class ReportSection(BaseModel):
    """One section of a report."""

    title: str
    query: str = Field(description="The sub-question retrieved for")
    text: str
    evidence: bool = Field(
        True,
        description="False when no retrieved passage was on this part of the question (the "
        "text then says 'No retrieved evidence on …' and the report lists it as not covered)",
    )
    relevance: float | None = Field(
        None, description="The best passage sentence's relevance to the section (-1: none)"
    )
    facet_contrast: float | None = Field(
        None,
        description="How much closer the best sentences are to the section than to the report's "
        "core topic (null for the overview); see docs/eval.md 'Report section floor'",
    )


class TrialRow(BaseModel):
    """A clinical trial found among retrieved trial records."""

    nct_id: str
    title: str
    phases: list[str]
    overall_status: str | None
    conditions: list[str]
    interventions: list[str]
    url: str
    doc_id: str
    publications: list[DocLink] = Field(
        default_factory=list,
        description="Documents in the store linked to this trial (its own publications first): "
        "the paper names the NCT number, or the trial record lists the paper as a reference",
    )


class AnswerResponse(BaseModel):
    """An answer (or report) whose every citation is a verified, retrieved chunk."""

    question: str
    mode: Literal["answer", "report"]
    answer: str = Field(
        description="Markdown text with [n] citations; a kept sentence that is not supported "
        "ends with '(⚠ contradicted by [n])' or '(⚠ not supported by [n])'"
    )
    sections: list[ReportSection] | None = None
    trials: list[TrialRow] | None = None
    citations: list[Citation]
    sources: list[Source]
    passages: list[Passage]
    verification: Verification
    generator: Literal["extractive", "llm"]
    degraded: bool = Field(False, description="True when the LLM failed and extractive was used")
    timings: dict[str, float]


class ErrorDetail(BaseModel):
    """What went wrong."""

    type: str = Field(description="Stable error type, e.g. store_unavailable, invalid_request")
    message: str
    param: str | None = Field(None, description="The request field at fault, when there is one")


class ErrorBody(BaseModel):
    """Error response."""

    error: ErrorDetail = Field(examples=[{"type": "store_unavailable", "message": "..."}])
    detail: list[dict[str, Any]] | None = Field(
        None, description="For invalid requests: each field error (loc, msg, type)"
    )
