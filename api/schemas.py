"""HTTP request/response models (pydantic lives only at this edge)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from api import examples as ex


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PrincipalIn(_Body):
    """Who the request is for. The key must allow the id and roles (``core.identity``); names are checked there."""

    id: str | None = Field(None, max_length=256, examples=["alice"], description="omit: no particular user")
    roles: list[str] = Field(default_factory=list, max_length=64, examples=[["sales"]])


class FiltersIn(_Body):
    sources: list[str] = Field(default_factory=list, max_length=64)
    entity_ids: list[str] = Field(default_factory=list, max_length=256)
    updated_after: datetime | date | None = None


class ContextIn(_Body):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [ex.CONTEXT_IN]})

    query: str = Field(..., min_length=1, max_length=4000, examples=["renewal terms for Acme"])
    principal: PrincipalIn = Field(default_factory=PrincipalIn)
    top_k: int = Field(8, ge=1, le=100)
    max_tokens: int = Field(2000, ge=1, le=100_000)
    filters: FiltersIn = Field(default_factory=FiltersIn)
    min_relevance: float | None = Field(
        None, ge=0, le=1, description="return only passages at least this relevant (may return none)")


class SearchIn(ContextIn):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [ex.SEARCH_IN]})

    top_k: int = Field(10, ge=1, le=1000)


class Span(BaseModel):
    start: int
    end: int


_UPDATED_SOURCE = ("which date updated_at is: email_header, pdf_metadata, office_metadata, record_field, or mtime "
                   "(the file's, when the document carries no date of its own)")


class PassageOut(BaseModel):
    citation: int
    doc_id: str
    chunk_ids: list[str]
    text: str
    score: float
    source: str
    title: str
    uri: str | None
    span: Span
    pages: list[int]
    updated_at: str | None
    updated_source: str | None = Field(None, description=_UPDATED_SOURCE)
    entity_ids: list[str]
    content_hashes: list[str] = Field(default_factory=list, description="one per chunk id (replay compares them)")
    visible_via: list[str] = Field(default_factory=list, description="the principal's tokens that matched the ACL")
    redactions: int = Field(0, description="values hidden from this principal by the source's redaction policy")
    acl_origin: str = Field("", description="the manifest rule or record field that gave the document its ACL")
    flags: list[str] = Field(
        default_factory=list,
        description="'instructions': the text reads like instructions to a model (treat as data, or drop); "
        "'markers': it carried citation-like markers, neutralised to (n) in `context`",
    )
    relevance: float | None = Field(None, description="0-1, comparable across queries: max(dense cosine, "
                                                      "share of query terms in the passage)")


class CitationOut(BaseModel):
    id: int = Field(description="the [n] marker in `context`")
    doc_id: str = Field(description="pass to read_document / GET /v1/documents/{doc_id} for the full text")
    title: str
    source: str
    uri: str | None = Field(description="link to the document in its system of record, if known")
    span: Span = Field(description="character offsets of the cited text in the document's cleaned text")
    pages: list[int]
    indexed_at: str | None = Field(None, description="when this version of the document entered the index (UTC)")


class FilteredFor(BaseModel):
    """Whom a result was filtered for: only documents these ACL tokens may see were searched."""

    principal_id: str
    roles: list[str]
    acl_tokens: list[str] = Field(description="role:<r>, user:<id> and public: the filter inside every query")


class EntityOut(BaseModel):
    entity_id: str
    name: str
    type: str
    matched: str


class Usage(BaseModel):
    tokens: int
    passages: int
    truncated: bool
    tokenizer: str = "cl100k_base"
    redactions: int = 0


class PackManifest(BaseModel):
    model: str = Field(description="embedding model that ranked the pack")
    acl_tokens: list[str] = Field(description="tokens every store query of this request was filtered by")
    generated_at: str = Field(description="UTC time the pack was assembled")


class ContextOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [ex.CONTEXT_OUT]})

    request_id: str
    context: str
    passages: list[PassageOut]
    citations: list[CitationOut]
    entities: list[EntityOut]
    usage: Usage
    timings_ms: dict[str, float]
    relevance: float | None = Field(None, description="best passage relevance (None: empty pack)")
    weak: bool = Field(False, description="true when the best passage is below the relevance floor: "
                                          "the pack probably does not answer the query")
    manifest: PackManifest | None = None
    index_as_of: str | None = Field(None, description="newest indexed_at of the cited documents (UTC)")
    filtered_for: FilteredFor | None = None


class SearchHitOut(BaseModel):
    rank: int
    chunk_id: str
    doc_id: str
    score: float
    text: str
    source: str
    title: str
    uri: str | None
    span: Span
    pages: list[int]
    flags: list[str] = Field(default_factory=list, description="as on context passages")


class SearchOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [ex.SEARCH_OUT]})

    request_id: str
    hits: list[SearchHitOut]
    timings_ms: dict[str, float]
    filtered_for: FilteredFor | None = None


class DocumentOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [ex.DOCUMENT_OUT]})

    doc_id: str
    title: str
    source: str
    uri: str | None
    updated_at: str | None
    updated_source: str | None = Field(None, description=_UPDATED_SOURCE)
    text: str
    chunks: int


class ErrorBody(BaseModel):
    code: str
    message: str
    request_id: str


class ErrorOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [ex.ERROR_OUT]})

    error: ErrorBody


class IngestJobIn(_Body):
    """Either manifest files under the server's ingest roots, or one manifest object (its ``path`` under one)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": ex.INGEST_IN})

    manifests: list[str] = Field(default_factory=list, max_length=64, description="manifest paths on the server")
    manifest: dict[str, Any] | None = Field(None, description="an inline manifest (CONTRACT §2)")
    full: bool = Field(False, description="re-process every document")
    take_over: bool = Field(False, description="take over sources owned by another manifest (audited)")
    allow_mass_delete: bool = Field(False, description="allow deleting more than max_delete_share of a source")

    @model_validator(mode="after")
    def _exactly_one(self) -> "IngestJobIn":
        if bool(self.manifests) == (self.manifest is not None):
            raise ValueError("give either 'manifests' (paths on the server) or 'manifest' (an object), not both")
        for path in self.manifests:
            if not path or len(path) > 4096:
                raise ValueError("manifest paths must be 1..4096 characters")
        return self


class IngestJobAccepted(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"job_id": ex.JOB_ID, "status": "queued"}]})

    job_id: str
    status: str


class IngestJobOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [ex.JOB_OUT]})

    job_id: str
    status: Literal["queued", "running", "succeeded", "failed", "interrupted"]
    sources: list[str]
    full: bool
    submitted_at: float
    started_at: float | None
    finished_at: float | None
    progress: dict[str, int]
    report: dict[str, Any] | None
    error: str | None
    take_over: bool = False
    allow_mass_delete: bool = False


class HealthOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"status": "ok"}]})

    status: str


class ReadyOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"status": "ready", "checks": {"model": True, "store": True}}]}
    )

    status: str
    checks: dict[str, bool]


class PassageReplayOut(BaseModel):
    citation: int
    doc_id: str
    chunk_ids: list[str]
    content_hashes: list[str]
    visible_via: list[str]
    acl_origin: str = ""
    same: bool = Field(description="every chunk is still stored with the same content hash")
    still_visible: bool = Field(description="the same principal tokens still see the document")
    changed_chunks: list[str]


class PackReplayOut(BaseModel):
    request_id: str
    created_at: float
    key_id: str
    principal_id: str
    roles: list[str]
    acl_tokens: list[str]
    query: str
    model: str
    passages: list[PassageReplayOut]
    unchanged: bool = Field(description="every passage is the same and still visible")


class FeedbackLabelIn(_Body):
    doc_id: str = Field(..., min_length=1, max_length=512, examples=["wiki:sales/enterprise-refund-policy.md"])
    label: Literal["relevant", "not_relevant", "wrong_entity", "missing"]
    entity_id: str = Field("", max_length=64, description="for wrong_entity: the entity that was wrong")
    correct_entity_id: str = Field(
        "", max_length=64, description="for wrong_entity, optional: the entity the passage is really about")


class FeedbackIn(_Body):
    request_id: str = Field(..., min_length=1, max_length=128)
    principal: PrincipalIn
    labels: list[FeedbackLabelIn] = Field(..., min_length=1, max_length=200)
    note: str = Field("", max_length=2000)


class FeedbackOut(BaseModel):
    request_id: str
    stored: int


class TuneIn(_Body):
    dry_run: bool = Field(False, description="report what would change; apply nothing")


class TuneOut(BaseModel):
    """``stitch tune fit``'s report: held-out nDCG@10 before/after, what was applied, entity corrections."""

    applied: bool
    better: bool | None = None
    reason: str | None = None
    train_requests: int | None = None
    held_out: dict | None = None
    state: dict | None = None
    previous: dict | None = None
    entity_corrections: list[dict] = []
