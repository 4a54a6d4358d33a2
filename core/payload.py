"""The Qdrant payload schema: the contract between ingest (writer) and retrieval (reader)."""

from __future__ import annotations

import uuid
from datetime import datetime, timezone

from core.models import Chunk, Document
from core.sparse import sparse_document_vector
from core.tokens import count_tokens

# Vector names inside the collection.
DENSE = "dense"
SPARSE = "bm25"

# Payload keys.
DOC_ID = "doc_id"
SOURCE = "source"
TITLE = "title"
URI = "uri"
CHUNK_INDEX = "chunk_index"
CHUNK_COUNT = "chunk_count"
SPAN_START = "span_start"
SPAN_END = "span_end"
PAGES = "pages"
SECTION = "section"
ACL = "acl"
ENTITY_IDS = "entity_ids"
CONTENT_HASH = "content_hash"
DOC_HASH = "doc_hash"
UPDATED_AT = "updated_at"
UPDATED_TS = "updated_ts"
UPDATED_SOURCE = "updated_source"  # which date updated_at is (the document's own, or the file's mtime)
TEXT = "text"
ACL_ORIGIN = "acl_origin"  # which manifest rule or record field gave the ACL (explanations)
REDACT = "redact"  # redaction rules (only on chunks of sources that have them)
# Computed from TEXT once at ingest so requests do not (absent in stores written by 0.3.0: computed then).
TOKENS = "cl100k_tokens"  # tokens of TEXT in the pack's tokenizer (core.tokens)
TERMS = "bm25_terms"  # sorted BM25 term ids of TEXT (the relevance floor's lexical share)
DERIVED_FROM_TEXT = (TOKENS, TERMS)  # stale once TEXT is changed (redaction): drop them with it

# Fields with a payload index, and their kind.
INDEXED_FIELDS: dict[str, str] = {
    DOC_ID: "keyword",
    SOURCE: "keyword",
    ACL: "keyword",
    ENTITY_IDS: "keyword",
    CONTENT_HASH: "keyword",
    CHUNK_INDEX: "integer",
    UPDATED_TS: "float",
}

_CHUNK_NAMESPACE = uuid.UUID("6f1d1c9a-3a51-4b8e-9d0c-8a7c5f0e2b11")


def chunk_point_id(doc_id: str, index: int, content_hash: str) -> str:
    """Deterministic chunk id: document id + position + content hash, as a UUID Qdrant accepts."""
    return str(uuid.uuid5(_CHUNK_NAMESPACE, f"{doc_id}\x1f{index}\x1f{content_hash}"))


def to_timestamp(value: datetime | None) -> float | None:
    """Epoch seconds (UTC) for range filters; naive datetimes are taken as UTC."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.timestamp()


def chunk_payload(
    document: Document, chunk: Chunk, *, chunk_count: int, entity_ids: tuple[str, ...] = ()
) -> dict:
    """Build the payload stored with one chunk."""
    updated = document.updated_at
    extra = {REDACT: list(document.redaction)} if document.redaction else {}
    return extra | {
        DOC_ID: document.doc_id,
        SOURCE: document.source,
        TITLE: document.title,
        URI: document.uri,
        CHUNK_INDEX: chunk.index,
        CHUNK_COUNT: chunk_count,
        SPAN_START: chunk.start,
        SPAN_END: chunk.end,
        PAGES: list(chunk.pages),
        SECTION: " › ".join(chunk.section_path),
        ACL: list(document.acl),
        ACL_ORIGIN: document.acl_origin,
        ENTITY_IDS: list(entity_ids),
        CONTENT_HASH: chunk.content_hash,
        DOC_HASH: document.content_hash,
        UPDATED_AT: updated.isoformat() if updated else None,
        UPDATED_TS: to_timestamp(updated),
        UPDATED_SOURCE: document.updated_source if updated else None,
        TEXT: chunk.text,
        TOKENS: count_tokens(chunk.text),
        TERMS: sorted(set(sparse_document_vector(chunk.text).indices)),
    }
