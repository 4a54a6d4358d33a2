"""Filtered-HNSW recall knobs reach both engines by default (issue 13; figures: `python -m bench.query`).

The recall itself is measured by bench/query.py at 100k/1M chunks, never here; these tests check that
a user who changes nothing gets the measured parameters, on the embedded engine and on qdrant-client.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from qdrant_client import QdrantClient

from core import payload as P
from core.models import SparseVector
from core.store.protocol import DenseSearch, HybridQuery, PrefetchSpec
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


def _role_chunks(n: int, rare: int, mid: int = 0) -> list:
    """``n`` chunks visible to role:big, the first ``rare`` of them also to role:rare, the first ``mid``
    to role:mid."""
    from core.models import StoredChunk

    rng = np.random.default_rng(3)
    out = []
    for i in range(n):
        dense = rng.normal(size=8)
        acl = ["role:big"] + (["role:rare"] if i < rare else []) + (["role:mid"] if i < mid else [])
        payload = {P.DOC_ID: f"d:{i}", P.CHUNK_INDEX: 0, P.SOURCE: "t", P.ACL: acl, P.TEXT: ""}
        out.append(StoredChunk(P.chunk_point_id(f"d:{i}", 0, ""), tuple(dense / np.linalg.norm(dense)),
                               SparseVector((1,), (1.0,)), payload))
    return out


def _small_set_query() -> HybridQuery:
    q = _query()
    return HybridQuery(q.prefetches, limit=5, fusion="dbsf", hnsw_ef=300, exact_max_visible=10)


def test_the_plan_decides_exact_wide_or_engine_beam_from_the_estimate():
    """At 1M chunks a 10 % role reaches dense recall 1.000 with the engine's beam (at least the prefetch
    depth) while ef 768 doubles its dense search; half of 100k needs ef 768 (docs/serving.md §5)."""
    query = SearchPlan().query([PrefetchSpec(P.DENSE, (1.0,), 500)], limit=10)
    asked = []

    def total() -> int:
        asked.append(1)
        return 1_000_000

    assert query.dense_search(10_000, total) == DenseSearch(exact=True, hnsw_ef=query.hnsw_ef)
    assert not asked  # the collection's size is not needed when few points are visible
    assert query.dense_search(100_000, total) == DenseSearch(exact=False, hnsw_ef=None)
    assert query.dense_search(500_000, total) == DenseSearch(exact=False, hnsw_ef=query.hnsw_ef)
    assert query.dense_search(1_000_000, total) == DenseSearch(exact=False, hnsw_ef=query.hnsw_ef)
    always = replace(query, hnsw_ef_min_share=None)
    assert always.dense_search(100_000, total) == DenseSearch(exact=False, hnsw_ef=query.hnsw_ef)


def _share_query() -> HybridQuery:
    return replace(_small_set_query(), hnsw_ef_min_share=0.5)


# role:rare sees 4 of 40 points (<= exact_max_visible 10: exact), role:mid 16 (over 10 but under half: the
# engine's beam), role:big all 40 (the wide beam). A role that sees 10k of 1M chunks cost 230 ms by ACORN
# and ~7 ms exactly; the sparse prefetch is never changed.
_DENSE_BY_ROLE = (("role:rare", (True, 300)), ("role:mid", (False, None)), ("role:big", (False, 300)))


def test_edge_store_decides_exact_engine_or_wide_beam_by_the_visible_count(monkeypatch, tmp_path):
    import core.store.edge as edge

    built = []
    real = edge.qe.SearchParams
    monkeypatch.setattr(edge.qe, "SearchParams", lambda **kw: built.append(kw) or real(**kw))
    store = edge.EdgeStore(tmp_path / "edge")
    try:
        store.ensure_collection(8)
        store.upsert(_role_chunks(40, rare=4, mid=16))
        for role, dense in _DENSE_BY_ROLE:
            built.clear()
            hits = store.search(_share_query(), acl_tokens=[role])
            assert [(k["exact"], k["hnsw_ef"]) for k in built] == [dense, (False, 300)]
            assert hits and all(role in h.payload[P.ACL] for h in hits)
    finally:
        store.close()


def test_server_store_decides_exact_engine_or_wide_beam_by_the_visible_count(monkeypatch):
    from core.store.server import ServerStore

    store = ServerStore(QdrantClient(":memory:"), "chunks")
    store.ensure_collection(8)
    store.upsert(_role_chunks(40, rare=4, mid=16))
    seen = {}
    real = store._client.query_points
    monkeypatch.setattr(store._client, "query_points", lambda *a, **kw: seen.update(kw) or real(*a, **kw))
    for role, dense in _DENSE_BY_ROLE:
        hits = store.search(_share_query(), acl_tokens=[role])
        assert [(p.params.exact, p.params.hnsw_ef) for p in seen["prefetch"]] == [dense, (False, 300)]
        assert hits and all(role in h.payload[P.ACL] for h in hits)


def test_both_stores_create_the_sparse_index_with_the_full_scan_threshold(tmp_path):
    """A 1 % role at 1M chunks: BM25 under its filter walked the inverted index for ~20 ms of CPU; below
    the threshold the engine scores the visible points one by one (10-14 ms; docs/serving.md §5)."""
    import json

    from core.store.edge import EdgeStore
    from core.store.protocol import SPARSE_FULL_SCAN_THRESHOLD
    from core.store.server import ServerStore

    edge = EdgeStore(tmp_path / "edge")
    try:
        edge.ensure_collection(8)
    finally:
        edge.close()
    config = json.loads((tmp_path / "edge" / "edge_config.json").read_text())
    assert config["sparse_vectors"][P.SPARSE]["full_scan_threshold"] == SPARSE_FULL_SCAN_THRESHOLD > 5_000

    server = ServerStore(QdrantClient(":memory:"), "chunks")
    server.ensure_collection(8)
    sparse = server._client.get_collection("chunks").config.params.sparse_vectors[P.SPARSE]
    assert sparse.index.full_scan_threshold == SPARSE_FULL_SCAN_THRESHOLD


def _edge_graph(path) -> dict:  # noqa: ANN001
    import json

    return json.loads((path / "edge_config.json").read_text()).get("hnsw_config") or {}


def test_settings_graph_is_built_by_both_stores(tmp_path, monkeypatch):
    """m 16 / ef_construct 100 (the engines' defaults) left filtered recall@10 at 0.985 at 1M chunks:
    the Settings' graph reaches the collection each store creates (docs/serving.md §5)."""
    import qdrant_client

    from core.config import Settings
    from core.store.factory import close_store, open_store

    assert (Settings.model_fields["hnsw_m"].default, Settings.model_fields["hnsw_ef_construct"].default) > (16, 100)
    settings = Settings(data_dir=tmp_path / "data", hnsw_m=24, hnsw_ef_construct=150)
    open_store(settings).ensure_collection(8)
    close_store(settings)
    graph = _edge_graph(settings.qdrant_path)
    assert (graph.get("m"), graph.get("ef_construct")) == (24, 150)

    memory = qdrant_client.QdrantClient(":memory:")
    monkeypatch.setattr(qdrant_client, "QdrantClient", lambda **kwargs: memory)
    served = Settings(data_dir=tmp_path / "served", qdrant_url="http://qdrant.invalid:6333", hnsw_m=24,
                      hnsw_ef_construct=150)
    open_store(served).ensure_collection(8)
    dense = memory.get_collection(served.collection).config.params.vectors[P.DENSE]
    assert (dense.hnsw_config.m, dense.hnsw_config.ef_construct) == (24, 150)
    close_store(served)


def test_an_existing_collection_keeps_the_graph_it_was_built_with(tmp_path):
    from core.store.edge import EdgeStore
    from core.store.protocol import HnswGraph

    store = EdgeStore(tmp_path / "edge", graph=HnswGraph(m=24, ef_construct=150))
    store.ensure_collection(8)
    store.upsert(_role_chunks(4, rare=1, mid=2))
    store.close()
    store = EdgeStore(tmp_path / "edge", graph=HnswGraph(m=48, ef_construct=400))
    try:
        store.ensure_collection(8)
        assert store.count() == 4
    finally:
        store.close()
    assert (_edge_graph(tmp_path / "edge")["m"], _edge_graph(tmp_path / "edge")["ef_construct"]) == (24, 150)


def test_a_role_between_exact_scoring_and_one_percent_gets_no_acorn():
    """The ACORN band at 1M chunks: a role seeing 5 % (49,856 points) cost 177 ms of CPU per hybrid query with
    ACORN, 28 ms scored exactly; 10 % (99,944) reaches recall 1.000 by filtered HNSW (docs/serving.md §5)."""
    plan = SearchPlan()
    query = plan.query([PrefetchSpec(P.DENSE, (1.0,), 500)], limit=10)
    total = 1_000_000
    assert query.dense_search(49_856, lambda: total).exact is True
    for visible in (plan.exact_max_visible + 1, 99_944):
        assert query.dense_search(visible, lambda: total).exact is False
        acorn_engages = plan.acorn and visible / total < plan.acorn_max_selectivity
        assert not acorn_engages, visible
    assert plan.acorn and plan.acorn_max_selectivity > 0  # still there for rarer roles in larger collections
