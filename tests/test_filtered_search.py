"""Filtered-HNSW recall knobs reach both engines by default (issue 13; figures: `python -m bench.query`).

The recall itself is measured by bench/query.py at 100k/1M chunks, never here; these tests check that
a user who changes nothing gets the measured parameters, on the embedded engine and on qdrant-client.
"""

from __future__ import annotations

import numpy as np
from qdrant_client import QdrantClient

from core import payload as P
from core.models import SparseVector
from core.store.protocol import HybridQuery, PrefetchSpec
from retrieval.search import QueryVectors, SearchPlan, search_chunks


class RecordingStore:
    """Stands in for a VectorStore and keeps the queries it was asked."""

    def __init__(self) -> None:
        self.queries: list[HybridQuery] = []

    def search(self, query, *, acl_tokens, filters=None):  # noqa: ANN001, ANN201
        self.queries.append(query)
        return []


def _vectors(dim: int = 8) -> QueryVectors:
    return QueryVectors(tuple(np.ones(dim) / np.sqrt(dim)), SparseVector((1, 5), (1.0, 0.5)))


def test_default_plan_asks_for_the_measured_filtered_search_params():
    store = RecordingStore()
    search_chunks(store, _vectors(), acl_tokens=["role:sales"], limit=10)
    plan = SearchPlan()
    assert store.queries  # the dense-feedback first pass and the final query: every one carries the params
    for query in store.queries:
        assert (query.hnsw_ef, query.acorn, query.acorn_max_selectivity) == (
            plan.hnsw_ef, plan.acorn, plan.acorn_max_selectivity)
        assert query.hnsw_ef is not None and query.hnsw_ef >= 128 and query.acorn  # not the engine's defaults
        assert query.exact_max_visible == plan.exact_max_visible and plan.exact_max_visible >= 10_000
        assert not query.exact


def test_a_plan_can_turn_the_knobs_off():
    store = RecordingStore()
    plan = SearchPlan(hnsw_ef=None, acorn=False, acorn_max_selectivity=None)
    search_chunks(store, _vectors(), acl_tokens=["role:sales"], limit=10, plan=plan)
    assert (store.queries[0].hnsw_ef, store.queries[0].acorn) == (None, False)


def _query() -> HybridQuery:
    dense = tuple(np.ones(8) / np.sqrt(8))
    specs = (PrefetchSpec(P.DENSE, dense, 20), PrefetchSpec(P.SPARSE, SparseVector((1,), (1.0,)), 20))
    return HybridQuery(specs, limit=5, fusion="dbsf", hnsw_ef=300, acorn=True, acorn_max_selectivity=0.25)


def test_server_store_sends_the_same_params_in_every_prefetch(monkeypatch):
    from core.store.server import ServerStore

    store = ServerStore(QdrantClient(":memory:"), "chunks")
    store.ensure_collection(8)
    seen = {}
    real = store._client.query_points

    def spy(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        seen.update(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(store._client, "query_points", spy)
    store.search(_query(), acl_tokens=["role:sales"])
    params = [p.params for p in seen["prefetch"]]
    assert all(p.hnsw_ef == 300 and p.acorn.enable and p.acorn.max_selectivity == 0.25 for p in params)
    assert all(p.filter is not None for p in seen["prefetch"])  # the ACL still binds every prefetch


def _edge_calls(monkeypatch, tmp_path, name: str) -> list[dict]:  # noqa: ANN001
    """Keyword arguments of every ``qdrant_edge.<name>(...)`` built by one EdgeStore hybrid search."""
    import core.store.edge as edge

    built = []
    real = getattr(edge.qe, name)

    def spy(**kwargs):  # noqa: ANN003, ANN202
        built.append(kwargs)
        return real(**kwargs)

    monkeypatch.setattr(edge.qe, name, spy)
    store = edge.EdgeStore(tmp_path / "edge")
    try:
        store.ensure_collection(8)
        store.search(_query(), acl_tokens=["role:sales"])
    finally:
        store.close()
    return built


def test_edge_store_sends_the_same_params(monkeypatch, tmp_path):
    built = _edge_calls(monkeypatch, tmp_path, "SearchParams")
    assert len(built) == 2  # one per prefetch
    assert all(k["hnsw_ef"] == 300 and k["acorn"].enable and k["acorn"].max_selectivity == 0.25 for k in built)


def test_hybrid_acl_filter_is_in_every_prefetch_and_not_again_at_the_top(monkeypatch, tmp_path):
    """A top-level filter is ANDed into each prefetch by the engine, which then multiplies the two
    selectivities (10 % visible estimated as 1 %) and engages ACORN: 4x the CPU at 10 % (docs/serving.md §5)."""
    from core.store.server import ServerStore

    (kwargs,) = _edge_calls(monkeypatch, tmp_path, "QueryRequest")
    assert kwargs.get("filter") is None and all(p.filter is not None for p in kwargs["prefetches"])

    server = ServerStore(QdrantClient(":memory:"), "chunks")
    server.ensure_collection(8)
    seen = {}
    real_query = server._client.query_points
    monkeypatch.setattr(server._client, "query_points", lambda *a, **kw: seen.update(kw) or real_query(*a, **kw))
    server.search(_query(), acl_tokens=["role:sales"])
    assert seen.get("query_filter") is None and all(p.filter is not None for p in seen["prefetch"])


def _role_chunks(n: int, rare: int) -> list:
    """``n`` chunks visible to role:big, the first ``rare`` of them also to role:rare."""
    from core.models import StoredChunk

    rng = np.random.default_rng(3)
    out = []
    for i in range(n):
        dense = rng.normal(size=8)
        acl = ["role:big", "role:rare"] if i < rare else ["role:big"]
        payload = {P.DOC_ID: f"d:{i}", P.CHUNK_INDEX: 0, P.SOURCE: "t", P.ACL: acl, P.TEXT: ""}
        out.append(StoredChunk(P.chunk_point_id(f"d:{i}", 0, ""), tuple(dense / np.linalg.norm(dense)),
                               SparseVector((1,), (1.0,)), payload))
    return out


def _small_set_query() -> HybridQuery:
    q = _query()
    return HybridQuery(q.prefetches, limit=5, fusion="dbsf", hnsw_ef=300, exact_max_visible=10)


def test_edge_store_scores_a_small_visible_set_exactly(monkeypatch, tmp_path):
    """A role that sees 10k of 1M chunks cost 230 ms by ACORN and ~7 ms exactly (docs/serving.md §5):
    a dense prefetch whose filter leaves <= exact_max_visible points is asked with exact=True."""
    import core.store.edge as edge

    built = []
    real = edge.qe.SearchParams
    monkeypatch.setattr(edge.qe, "SearchParams", lambda **kw: built.append(kw) or real(**kw))
    store = edge.EdgeStore(tmp_path / "edge")
    try:
        store.ensure_collection(8)
        store.upsert(_role_chunks(40, rare=4))
        rare = store.search(_small_set_query(), acl_tokens=["role:rare"])
        assert [k["exact"] for k in built] == [True, False]  # dense exact, sparse unchanged
        built.clear()
        store.search(_small_set_query(), acl_tokens=["role:big"])  # 40 visible > 10: HNSW as before
        assert [k["exact"] for k in built] == [False, False]
    finally:
        store.close()
    assert rare and all("role:rare" in h.payload[P.ACL] for h in rare)


def test_server_store_scores_a_small_visible_set_exactly(monkeypatch):
    from core.store.server import ServerStore

    store = ServerStore(QdrantClient(":memory:"), "chunks")
    store.ensure_collection(8)
    store.upsert(_role_chunks(40, rare=4))
    seen = {}
    real = store._client.query_points
    monkeypatch.setattr(store._client, "query_points", lambda *a, **kw: seen.update(kw) or real(*a, **kw))
    for tokens, dense_exact in ((["role:rare"], True), (["role:big"], False)):
        hits = store.search(_small_set_query(), acl_tokens=tokens)
        assert [p.params.exact for p in seen["prefetch"]] == [dense_exact, False]
        assert hits and all(tokens[0] in h.payload[P.ACL] for h in hits)
