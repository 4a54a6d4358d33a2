"""Frozen domain dataclasses shared by ingest, retrieval and the API."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True)
class Principal:
    """Who a request is for (built by ``core.identity.decide_principal`` at the API edge).

    ``id`` "" means no particular user: the request gets no ``user:`` token.
    """

    id: str
    roles: tuple[str, ...] = ()


@dataclass(frozen=True)
class Section:
    """A contiguous span of a document's cleaned text with its structure (one partitioned element)."""

    start: int
    end: int
    kind: str = "text"  # title | text | list | table | ...
    page: int | None = None
    section_path: tuple[str, ...] = ()


@dataclass(frozen=True)
class Document:
    """One file or record of a source, already partitioned and cleaned."""

    doc_id: str
    source: str
    title: str
    text: str
    uri: str | None = None
    acl: tuple[str, ...] = ()
    updated_at: datetime | None = None
    sections: tuple[Section, ...] = ()
    # where updated_at came from: email_header | pdf_metadata | office_metadata | record_field | mtime
    updated_source: str | None = None
    entity_mentions: tuple[tuple[str, str], ...] = ()  # (entity type, surface form)
    content_hash: str = ""
    redaction: tuple[dict, ...] = ()  # the source's redaction rules (governance.redaction), applied when served
    acl_origin: str = ""  # which manifest rule or record field gave the ACL


@dataclass(frozen=True)
class Chunk:
    """A contiguous span of one document's cleaned text, bounded by the embedder's token window."""

    chunk_id: str
    doc_id: str
    index: int
    text: str
    start: int
    end: int
    pages: tuple[int, ...] = ()
    section_path: tuple[str, ...] = ()
    embed_text: str = ""
    content_hash: str = ""
    # The embedder's ids of ``embed_text`` when the chunker already had them (``ingest.chunk``): the encoder
    # then skips tokenising the chunk again. Tied to the text they were read from: ``known_embed_ids``.
    embed_tokens: TokenIds | None = field(default=None, compare=False, repr=False)

    def known_embed_ids(self) -> tuple[int, ...] | None:
        """The ids of ``embed_text`` if the chunker gave them for this very text (a masked copy has none)."""
        tokens = self.embed_tokens
        return tokens.ids if tokens is not None and tokens.text == self.embed_text else None


@dataclass(frozen=True)
class TokenIds:
    """Token ids (no special tokens) of exactly ``text`` in the embedder's tokenizer."""

    text: str
    ids: tuple[int, ...]


@dataclass(frozen=True)
class SparseVector:
    """Indices/values of a sparse (BM25) vector."""

    indices: tuple[int, ...]
    values: tuple[float, ...]


@dataclass(frozen=True)
class StoredChunk:
    """A chunk as the store keeps it: id, vectors and the payload contract (core.payload)."""

    point_id: str
    dense: tuple[float, ...]
    sparse: SparseVector
    payload: dict


@dataclass(frozen=True)
class SearchFilters:
    """Caller-chosen narrowing; the ACL is never optional and is passed separately."""

    sources: tuple[str, ...] = ()
    entity_ids: tuple[str, ...] = ()
    updated_after: datetime | None = None
    doc_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class Hit:
    """One scored chunk returned by the store."""

    point_id: str
    score: float
    payload: dict
    # The chunk's exact dense cosine to the query, when the query asked for it (HybridQuery.with_dense_score)
    dense_score: float | None = None


@dataclass(frozen=True)
class Citation:
    """Where a passage came from."""

    id: int
    doc_id: str
    title: str
    source: str
    uri: str | None
    start: int
    end: int
    pages: tuple[int, ...] = ()


@dataclass(frozen=True)
class Passage:
    """Stitched, contiguous text of one document, with one citation."""

    citation: int
    doc_id: str
    chunk_ids: tuple[str, ...]
    text: str
    score: float
    source: str
    title: str
    uri: str | None
    start: int
    end: int
    pages: tuple[int, ...] = ()
    updated_at: str | None = None
    updated_source: str | None = None  # which date updated_at is (core.payload.UPDATED_SOURCE)
    entity_ids: tuple[str, ...] = ()
    content_hashes: tuple[str, ...] = ()  # one per chunk id: lets a replay tell whether the text changed
    visible_via: tuple[str, ...] = ()  # the principal's tokens that matched this document's ACL
    redactions: int = 0  # values hidden from this principal by the source's redaction policy
    acl_origin: str = ""  # the manifest rule or record field that gave the document its ACL
    flags: tuple[str, ...] = ()  # "markers", "instructions" (retrieval.untrusted)
    relevance: float | None = None  # [0, 1], comparable across queries (retrieval/relevance.py)


@dataclass(frozen=True)
class EntityRef:
    """An entity the query mentioned, as the principal may see it."""

    entity_id: str
    name: str
    type: str
    matched: str


@dataclass(frozen=True)
class ContextPack:
    """The answer to one context request."""

    request_id: str
    context: str
    passages: tuple[Passage, ...]
    citations: tuple[Citation, ...]
    entities: tuple[EntityRef, ...] = ()
    tokens: int = 0
    truncated: bool = False
    timings_ms: dict = field(default_factory=dict)
    acl_tokens: tuple[str, ...] = ()  # what every store query of this request was filtered by
    model: str = ""  # the embedding model (and backend) that ranked it
    generated_at: str = ""  # UTC ISO time the pack was assembled
    redactions: int = 0  # values hidden from this principal across all passages
    relevance: float | None = None  # best passage relevance; None for an empty pack
    weak: bool = False  # relevance below Settings.weak_relevance (or nothing found): do not trust the pack
