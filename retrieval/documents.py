"""Dereference a citation: a document's text rebuilt from its chunks, visible or not found."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from core import payload as P
from core.errors import NotFoundError
from core.models import Hit
from core.store.protocol import VectorStore
from governance.redaction import redact, rules_of
from retrieval.stitch import StitchedSpan


@dataclass(frozen=True)
class DocumentView:
    """A document as a principal may read it."""

    doc_id: str
    title: str
    source: str
    uri: str | None
    updated_at: str | None
    text: str
    chunks: int
    updated_source: str | None = None  # which date updated_at is (core.payload.UPDATED_SOURCE)


def read_document(store: VectorStore, doc_id: str, *, acl_tokens: Collection[str]) -> DocumentView:
    """The document if the principal may see it; the same NotFoundError whether hidden or absent."""
    chunks: list[Hit] = store.document_chunks(doc_id, acl_tokens=acl_tokens)
    if not chunks:
        raise NotFoundError("document not found")
    first = chunks[0].payload
    text = StitchedSpan(doc_id, 0.0, 0, tuple(chunks)).text
    rules = rules_of(first.get(P.REDACT))
    text, title = redact(text, rules, acl_tokens).text, redact(first[P.TITLE], rules, acl_tokens).text
    return DocumentView(doc_id, title, first[P.SOURCE], first.get(P.URI), first.get(P.UPDATED_AT), text, len(chunks),
                        first.get(P.UPDATED_SOURCE) if first.get(P.UPDATED_AT) else None)
