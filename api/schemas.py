"""HTTP request/response models (pydantic lives only at this edge)."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, ConfigDict, Field, field_validator


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PrincipalIn(_Body):
    id: str = Field(..., min_length=1, max_length=256, examples=["alice"])
    roles: list[str] = Field(default_factory=list, max_length=64, examples=[["sales"]])

    @field_validator("roles")
    @classmethod
    def _roles_are_names(cls, roles: list[str]) -> list[str]:
        for role in roles:
            if not role.strip() or len(role) > 128:
                raise ValueError(f"invalid role {role[:40]!r}")
        return roles


class FiltersIn(_Body):
    sources: list[str] = Field(default_factory=list, max_length=64)
    entity_ids: list[str] = Field(default_factory=list, max_length=256)
    updated_after: datetime | date | None = None


class ContextIn(_Body):
    query: str = Field(..., min_length=1, max_length=4000, examples=["renewal terms for Acme"])
    principal: PrincipalIn
    top_k: int = Field(8, ge=1, le=100)
    max_tokens: int = Field(2000, ge=1, le=100_000)
    filters: FiltersIn = Field(default_factory=FiltersIn)


class SearchIn(ContextIn):
    top_k: int = Field(10, ge=1, le=1000)


class Span(BaseModel):
    start: int
    end: int


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
    entity_ids: list[str]


class CitationOut(BaseModel):
    id: int
    doc_id: str
    title: str
    source: str
    uri: str | None
    span: Span
    pages: list[int]


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


class ContextOut(BaseModel):
    request_id: str
    context: str
    passages: list[PassageOut]
    citations: list[CitationOut]
    entities: list[EntityOut]
    usage: Usage
    timings_ms: dict[str, float]


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


class SearchOut(BaseModel):
    request_id: str
    hits: list[SearchHitOut]
    timings_ms: dict[str, float]


class DocumentOut(BaseModel):
    doc_id: str
    title: str
    source: str
    uri: str | None
    updated_at: str | None
    text: str
    chunks: int


class ErrorBody(BaseModel):
    code: str
    message: str
    request_id: str


class ErrorOut(BaseModel):
    error: ErrorBody
