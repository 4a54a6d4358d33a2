"""Protocols through which ingest and retrieval use entity resolution without depending on its internals."""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Protocol

from core.models import Document, EntityRef
from core.store.protocol import VectorStore


class EntityLinker(Protocol):
    """Ingest side: which entities a document is about (ids are stamped on its chunks)."""

    def link_document(self, document: Document) -> tuple[str, ...]:
        """Entity ids for the document's mentions (record fields and free text); registers new ones."""
        ...

    def set_document_acl(self, doc_id: str, acl: Collection[str]) -> None:
        """The document's ACL changed (content not re-read): its names follow the new ACL at once."""
        ...

    def forget_document(self, doc_id: str) -> None:
        """The document was deleted: its mentions, and names nothing else mentions, leave the registry."""
        ...

    def relink(self, chunks: VectorStore, *, mask: Callable[[str, list], str] | None = None) -> int:
        """After a job: link stored documents to names learned since they were read, and re-stamp the
        ``entity_ids`` of every document whose entities changed (payload update). Returns how many.
        ``mask(text, payload redaction rules)`` hides redacted values before stored text is read."""
        ...


class QueryEntityResolver(Protocol):
    """Retrieval side: entities a query mentions, as the principal may see them."""

    def entities_in_query(self, text: str, *, acl_tokens: Collection[str]) -> list[EntityRef]:
        """Entities mentioned in ``text`` that have at least one document visible to ``acl_tokens``;
        names/aliases shown come only from visible documents."""
        ...
