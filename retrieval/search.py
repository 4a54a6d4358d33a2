"""Hybrid search: dense + BM25 prefetches fused inside Qdrant, ACL filter in every prefetch."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from core import payload as P
from core.encoder import Encoder
from core.models import Hit, SearchFilters
from core.sparse import sparse_query_vector
from core.store.protocol import FusionKind, HybridQuery, PrefetchSpec, VectorStore


@dataclass(frozen=True)
class SearchPlan:
    """How to search: which prefetches, how deep, how fused (tuned on train data)."""

    mode: str = "hybrid"  # hybrid | dense | sparse
    prefetch_limit: int = 100
    fusion: FusionKind = "rrf"
    rrf_k: int = 2
    weights: tuple[float, ...] | None = None
    exact: bool = False


@dataclass(frozen=True)
class QueryVectors:
    """The query encoded once, reused by every prefetch."""

    dense: tuple[float, ...]
    sparse: object  # core.models.SparseVector


def encode_query(encoder: Encoder, text: str) -> QueryVectors:
    """Dense and sparse vectors of a query."""
    return QueryVectors(tuple(encoder.encode_query(text).tolist()), sparse_query_vector(text))


def search_chunks(
    store: VectorStore, vectors: QueryVectors, *, acl_tokens: Collection[str], limit: int,
    plan: SearchPlan = SearchPlan(), filters: SearchFilters | None = None,
    entity_ids: tuple[str, ...] = (),
) -> list[Hit]:
    """Ranked chunk hits visible to ``acl_tokens``."""
    prefetches: list[PrefetchSpec] = []
    depth = max(plan.prefetch_limit, limit)
    if plan.mode in ("hybrid", "dense"):
        prefetches.append(PrefetchSpec(P.DENSE, vectors.dense, depth))
    if plan.mode in ("hybrid", "sparse") and vectors.sparse.indices:
        prefetches.append(PrefetchSpec(P.SPARSE, vectors.sparse, depth))
    if entity_ids and plan.mode == "hybrid":
        prefetches.append(PrefetchSpec(P.DENSE, vectors.dense, depth, entity_ids=entity_ids))
    if not prefetches:
        return []
    weights = plan.weights
    if weights is not None and len(weights) != len(prefetches):
        weights = None
    query = HybridQuery(
        tuple(prefetches), limit=limit, fusion=plan.fusion, rrf_k=plan.rrf_k, weights=weights, exact=plan.exact
    )
    return store.search(query, acl_tokens=acl_tokens, filters=filters)
