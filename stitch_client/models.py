"""Typed results of the Stitch API (frozen dataclasses built from the JSON the API returns)."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any


def _known(cls: type, data: dict) -> dict:
    """Only the fields this client knows: a newer server may add fields without breaking older clients."""
    names = {f.name for f in fields(cls)}
    return {k: v for k, v in data.items() if k in names}


@dataclass(frozen=True)
class Citation:
    id: int
    doc_id: str
    title: str
    source: str
    uri: str | None
    span: dict
    pages: list[int]
    indexed_at: str | None = None


@dataclass(frozen=True)
class Passage:
    citation: int
    doc_id: str
    chunk_ids: list[str]
    text: str
    score: float
    source: str
    title: str
    uri: str | None
    span: dict
    pages: list[int]
    updated_at: str | None = None
    entity_ids: list[str] | None = None
    updated_source: str | None = None  # which date updated_at is (email_header … mtime)


@dataclass(frozen=True)
class ContextPack:
    """``POST /v1/context``: ``context`` has ``[n]`` markers matching ``citations``."""

    request_id: str
    context: str
    passages: list[Passage]
    citations: list[Citation]
    entities: list[dict]
    usage: dict
    timings_ms: dict
    index_as_of: str | None = None
    filtered_for: dict | None = None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ContextPack:
        data = _known(cls, data)
        return cls(**{**data, "passages": [Passage(**_known(Passage, p)) for p in data["passages"]],
                      "citations": [Citation(**_known(Citation, c)) for c in data["citations"]]})


@dataclass(frozen=True)
class SearchHit:
    rank: int
    chunk_id: str
    doc_id: str
    score: float
    text: str
    source: str
    title: str
    uri: str | None
    span: dict
    pages: list[int]


@dataclass(frozen=True)
class Document:
    doc_id: str
    title: str
    source: str
    uri: str | None
    updated_at: str | None
    text: str
    chunks: int
    updated_source: str | None = None


@dataclass(frozen=True)
class Entity:
    entity_id: str
    type: str
    name: str
    aliases: list[str]
    documents: int
    mentions: list[dict]
    evidence: list[dict]


def build(cls: type, data: dict) -> Any:
    """One typed result from a JSON object."""
    return cls(**_known(cls, data))
