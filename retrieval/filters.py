"""Caller filters must name things the principal can see: an unknown source or entity id is an error,
not an empty (or, worse, silently unfiltered) result."""

from __future__ import annotations

from collections.abc import Collection

from core.errors import InputError
from core.models import SearchFilters
from core.store.protocol import VectorStore


def check_filters(store: VectorStore, filters: SearchFilters, *, acl_tokens: Collection[str]) -> None:
    """Raise InputError naming the first source / entity id with no chunk visible to ``acl_tokens``.

    The count runs inside the store with the ACL filter, so a hidden source and a missing one give the
    same message: the error reveals nothing the principal could not already find.
    """
    for field, values, narrowed in (
        ("sources", filters.sources, lambda v: SearchFilters(sources=(v,))),
        ("entity_ids", filters.entity_ids, lambda v: SearchFilters(entity_ids=(v,))),
    ):
        for value in dict.fromkeys(values):
            if not value.strip():
                raise InputError(f"filters.{field}: empty value")
            if store.count(acl_tokens=acl_tokens, filters=narrowed(value)) == 0:
                raise InputError(
                    f"filters.{field}: {value[:80]!r} matches nothing this principal may see "
                    "(unknown, misspelt or not visible); remove it to search everything visible"
                )
