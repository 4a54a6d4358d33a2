"""Store-neutral filter conditions; each store translates them to its own Filter type."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, replace

from core import payload as P
from core.models import SearchFilters


@dataclass(frozen=True)
class Condition:
    """``key`` matches any of ``any_of`` or, for ranges, is ``>= gte``."""

    key: str
    any_of: tuple = ()
    gte: float | None = None


@dataclass(frozen=True)
class FilterSpec:
    """Conjunction of conditions, minus excluded point ids, among ``only_ids`` when given; when ``any_group``
    is set, at least one of its groups (each a conjunction) must match as well."""

    must: tuple[Condition, ...] = ()
    except_ids: tuple[str, ...] = ()
    only_ids: tuple[str, ...] = ()
    any_group: tuple[tuple[Condition, ...], ...] = ()


NO_MATCH_TOKEN = "\x00deny"  # matches no chunk: used when a principal has no tokens at all


def access_filter(
    acl_tokens: Collection[str] | None,
    filters: SearchFilters | None = None,
    *,
    doc_id: str | None = None,
    chunk_indexes: Collection[int] = (),
    entity_ids: Collection[str] = (),
) -> FilterSpec:
    """The filter every read carries: ACL first (unless admin ``None``), then caller narrowing."""
    must: list[Condition] = []
    if acl_tokens is not None:
        must.append(Condition(P.ACL, tuple(sorted(acl_tokens)) or (NO_MATCH_TOKEN,)))
    if filters is not None:
        if filters.sources:
            must.append(Condition(P.SOURCE, tuple(filters.sources)))
        if filters.entity_ids:
            must.append(Condition(P.ENTITY_IDS, tuple(filters.entity_ids)))
        if filters.doc_ids:
            must.append(Condition(P.DOC_ID, tuple(filters.doc_ids)))
        if filters.updated_after is not None:
            must.append(Condition(P.UPDATED_TS, gte=P.to_timestamp(filters.updated_after)))
    if doc_id is not None:
        must.append(Condition(P.DOC_ID, (doc_id,)))
    if chunk_indexes:
        must.append(Condition(P.CHUNK_INDEX, tuple(sorted(int(i) for i in chunk_indexes))))
    if entity_ids:
        must.append(Condition(P.ENTITY_IDS, tuple(entity_ids)))
    return FilterSpec(tuple(must))


def among_points(acl_tokens: Collection[str], point_ids: Collection[str]) -> FilterSpec:
    """These points, those visible to ``acl_tokens`` only (reads of known hits: vectors, exact scores)."""
    return replace(access_filter(acl_tokens), only_ids=tuple(point_ids))


def narrow_to_entities(base: FilterSpec, entity_ids: Collection[str]) -> FilterSpec:
    """``base`` (which already carries the ACL) further limited to chunks about ``entity_ids``."""
    if not entity_ids:
        return base
    return FilterSpec(base.must + access_filter(None, entity_ids=entity_ids).must, base.except_ids)


def neighbour_filter(acl_tokens: Collection[str], wanted: Mapping[str, Collection[int]]) -> FilterSpec:
    """Chunks of several documents by position, in one fetch: the ACL condition is a top-level
    ``must``, so it binds every document's group."""
    groups = tuple(
        access_filter(None, doc_id=doc_id, chunk_indexes=indexes).must
        for doc_id, indexes in sorted(wanted.items()) if indexes
    )
    return FilterSpec(access_filter(acl_tokens).must, any_group=groups)
