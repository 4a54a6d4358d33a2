"""Protocols through which ingest and retrieval use entity resolution without depending on its internals."""

from __future__ import annotations

from collections.abc import Collection
from typing import Protocol

from core.models import Document, EntityRef


class EntityLinker(Protocol):
    """Ingest side: which entities a document is about (ids are stamped on its chunks)."""

    def link_document(self, document: Document) -> tuple[str, ...]:
        """Entity ids for the document's mentions (record fields and free text); registers new ones."""
        ...


class QueryEntityResolver(Protocol):
    """Retrieval side: entities a query mentions, as the principal may see them."""

    def entities_in_query(self, text: str, *, acl_tokens: Collection[str]) -> list[EntityRef]:
        """Entities mentioned in ``text`` that have at least one document visible to ``acl_tokens``;
        names/aliases shown come only from visible documents."""
        ...
