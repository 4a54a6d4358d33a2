"""One suite, two engines: the embedded Qdrant edge shard and qdrant-client (server API, :memory:)."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from core import payload as P
from core.models import SearchFilters, SparseVector, StoredChunk
from core.payload import chunk_point_id
from core.sparse import sparse_document_vector, sparse_query_vector
from core.store.protocol import HybridQuery, PrefetchSpec
from retrieval.search import SearchPlan

DOCS = {
    # doc_id: (source, acl, texts, updated)
    "wiki:refunds": ("wiki", ["role:sales"], ["Enterprise refunds are pro-rated within 45 days.",
                                              "Renewals are quoted 90 days before term end.",
                                              "Escalations go to the executive sponsor."], 2026),
    "wiki:forecast": ("wiki", ["role:finance"], ["The Q3 revenue forecast is 14.2 million EUR."], 2025),
    "crm:acme": ("crm", ["role:sales", "role:support"], ["Acme Corporation renewal is due in March."], 2026),
    "wiki:draft": ("wiki", [], ["Draft refund policy nobody may see."], 2026),
}


def _chunks(encoder):
    out = []
    for doc_id, (source, acl, texts, year) in DOCS.items():
        dense = encoder.encode_passages(texts)
        for i, text in enumerate(texts):
            payload = {
                P.DOC_ID: doc_id, P.SOURCE: source, P.TITLE: doc_id, P.URI: None, P.CHUNK_INDEX: i,
                P.CHUNK_COUNT: len(texts), P.SPAN_START: i * 100, P.SPAN_END: i * 100 + len(text), P.PAGES: [],
                P.ACL: acl, P.ENTITY_IDS: ["ent_acme"] if "acme" in doc_id else [], P.CONTENT_HASH: f"h{i}",
                P.TEXT: text, P.UPDATED_TS: datetime(year, 6, 1, tzinfo=timezone.utc).timestamp(),
            }
            out.append(StoredChunk(chunk_point_id(doc_id, i, f"h{i}"), tuple(dense[i].tolist()),
                                   sparse_document_vector(text), payload))
    return out


@pytest.fixture()
def loaded(any_store, encoder):
    any_store.ensure_collection(encoder.dimension)
    any_store.upsert(_chunks(encoder))
    any_store.flush()
    return any_store


def _dense(encoder, text, limit=10, **kw):
    return HybridQuery((PrefetchSpec(P.DENSE, tuple(encoder.encode_query(text).tolist()), limit, **kw),), limit=limit)


def _docs(hits):
    return [h.payload[P.DOC_ID] for h in hits]


def test_count_respects_acl_and_admin_view(loaded):
    assert loaded.count() == 6
    assert loaded.count(acl_tokens=["role:sales"]) == 4
    assert loaded.count(acl_tokens=["role:finance"]) == 1
    assert loaded.count(acl_tokens=[]) == 0  # no tokens: deny by default


def test_filtered_dense_search_never_returns_invisible_chunks(loaded, encoder):
    hits = loaded.search(_dense(encoder, "revenue forecast for Q3"), acl_tokens=["role:sales"])
    assert hits and "wiki:forecast" not in _docs(hits) and "wiki:draft" not in _docs(hits)
    finance = loaded.search(_dense(encoder, "revenue forecast for Q3"), acl_tokens=["role:finance"])
    assert _docs(finance) == ["wiki:forecast"]


def test_sparse_search_ranks_the_keyword_match_first(loaded):
    query = HybridQuery((PrefetchSpec(P.SPARSE, sparse_query_vector("executive sponsor escalations"), 10),), limit=5)
    hits = loaded.search(query, acl_tokens=["role:sales"])
    assert hits[0].payload[P.TEXT].startswith("Escalations")


def test_hybrid_fusion_combines_both_prefetches(loaded, encoder):
    text = "when are renewals quoted"
    dense = tuple(encoder.encode_query(text).tolist())
    for fusion in ("rrf", "dbsf"):
        query = HybridQuery(
            (PrefetchSpec(P.DENSE, dense, 10), PrefetchSpec(P.SPARSE, sparse_query_vector(text), 10)),
            limit=3, fusion=fusion,
        )
        hits = loaded.search(query, acl_tokens=["role:sales"])
        assert hits[0].payload[P.TEXT].startswith("Renewals"), fusion
        assert all(h.payload[P.ACL] and "role:sales" in h.payload[P.ACL] for h in hits)


def test_dense_scores_are_exact_cosines_of_exactly_the_visible_points_asked(loaded, encoder):
    """``dense_scores``: each requested chunk's exact cosine to the vector; ACL-filtered, so a chunk the
    caller may not see (or that does not exist) gets no score at all."""
    text = "when are renewals quoted"
    vector = tuple(encoder.encode_query(text).tolist())
    everything = loaded.search(_dense(encoder, text, limit=20), acl_tokens=["role:sales", "role:finance"])
    cosine = {h.point_id: h.score for h in everything}
    asked = [h.point_id for h in everything] + ["00000000-0000-0000-0000-000000000000"]
    sales = loaded.dense_scores(vector, asked, acl_tokens=["role:sales"])
    visible = {h.point_id for h in everything if "role:sales" in h.payload[P.ACL]}
    assert set(sales) == visible and len(visible) == 4
    assert all(sales[i] == pytest.approx(cosine[i], abs=1e-4) for i in visible)
    assert loaded.dense_scores(vector, asked, acl_tokens=[]) == {}  # no tokens: deny by default
    assert loaded.dense_scores(vector, [], acl_tokens=["role:sales"]) == {}
    last = everything[-1].point_id  # the least similar point is scored as exactly as the best
    assert loaded.dense_scores(vector, [last], acl_tokens=["role:sales", "role:finance"])[last] == pytest.approx(
        cosine[last], abs=1e-4)


def test_fused_hits_can_come_with_their_exact_dense_cosine(loaded, encoder):
    """``with_dense_score``: each fused hit's ``dense_score`` is the cosine a plain dense query gives it, in
    the same store call; a query that does not ask gets None."""
    text = "when are renewals quoted"
    dense = tuple(encoder.encode_query(text).tolist())
    plain = {h.point_id: h.score for h in loaded.search(_dense(encoder, text), acl_tokens=["role:sales"])}
    for fusion in ("rrf", "dbsf"):
        query = HybridQuery((PrefetchSpec(P.DENSE, dense, 10), PrefetchSpec(P.SPARSE, sparse_query_vector(text), 10)),
                            limit=4, fusion=fusion, with_dense_score=True)
        hits = loaded.search(query, acl_tokens=["role:sales"])
        assert hits and all("role:sales" in h.payload[P.ACL] for h in hits)
        assert [h.dense_score for h in hits] == pytest.approx([plain[h.point_id] for h in hits], abs=1e-4), fusion
    assert all(h.dense_score is None for h in loaded.search(_dense(encoder, text), acl_tokens=["role:sales"]))
    single = loaded.search(HybridQuery((PrefetchSpec(P.DENSE, dense, 10),), limit=4, with_dense_score=True),
                           acl_tokens=["role:sales"])
    assert [h.dense_score for h in single] == pytest.approx([plain[h.point_id] for h in single], abs=1e-4)


def test_filters_on_source_entity_and_date(loaded, encoder):
    query = _dense(encoder, "renewal")
    assert set(_docs(loaded.search(query, acl_tokens=["role:sales"], filters=SearchFilters(sources=("crm",))))) == {"crm:acme"}
    by_entity = loaded.search(query, acl_tokens=["role:sales"], filters=SearchFilters(entity_ids=("ent_acme",)))
    assert set(_docs(by_entity)) == {"crm:acme"}
    recent = loaded.search(query, acl_tokens=["role:finance", "role:sales"],
                           filters=SearchFilters(updated_after=datetime(2026, 1, 1)))
    assert "wiki:forecast" not in _docs(recent) and recent


def test_entity_prefetch_narrows_only_that_prefetch(loaded, encoder):
    dense = tuple(encoder.encode_query("refunds").tolist())
    query = HybridQuery((PrefetchSpec(P.DENSE, dense, 10), PrefetchSpec(P.DENSE, dense, 10, entity_ids=("ent_acme",))), limit=10)
    docs = _docs(loaded.search(query, acl_tokens=["role:sales"]))
    assert "crm:acme" in docs and "wiki:refunds" in docs


def test_neighbour_fetch_is_acl_filtered(loaded):
    hits = loaded.fetch_chunks("wiki:refunds", [0, 2], acl_tokens=["role:sales"])
    assert [h.payload[P.CHUNK_INDEX] for h in hits] == [0, 2]
    assert loaded.fetch_chunks("wiki:refunds", [0, 1, 2], acl_tokens=["role:finance"]) == []


def test_neighbours_of_several_documents_come_in_one_acl_filtered_fetch(loaded):
    wanted = {"wiki:refunds": [1, 2], "crm:acme": [0], "wiki:forecast": [0], "wiki:draft": [0]}
    hits = loaded.fetch_neighbours(wanted, acl_tokens=["role:sales"])
    assert [(h.payload[P.DOC_ID], h.payload[P.CHUNK_INDEX]) for h in hits] == [
        ("crm:acme", 0), ("wiki:refunds", 1), ("wiki:refunds", 2)]  # the finance doc and the draft: never
    # a position asked of one document is not returned for another
    assert [h.payload[P.DOC_ID] for h in loaded.fetch_neighbours({"crm:acme": [2]}, acl_tokens=["role:sales"])] == []
    assert loaded.fetch_neighbours(wanted, acl_tokens=[]) == []  # no tokens: deny
    assert loaded.fetch_neighbours({}, acl_tokens=["role:sales"]) == []


def test_delete_document_keeps_only_requested_points(loaded):
    keep = chunk_point_id("wiki:refunds", 1, "h1")
    loaded.delete_document("wiki:refunds", keep=[keep])
    left = loaded.document_chunks("wiki:refunds", acl_tokens=None)
    assert [h.point_id for h in left] == [keep]
    loaded.delete_document("wiki:refunds")
    assert loaded.document_chunks("wiki:refunds", acl_tokens=None) == []
    assert loaded.count() == 3


def test_set_document_payload_narrows_every_chunk_of_one_document(loaded, encoder):
    loaded.set_document_payload("wiki:refunds", {P.ACL: ["role:exec"], P.ENTITY_IDS: ["ent_x"]})
    loaded.flush()
    assert loaded.document_chunks("wiki:refunds", acl_tokens=["role:sales"]) == []
    narrowed = loaded.document_chunks("wiki:refunds", acl_tokens=["role:exec"])
    assert len(narrowed) == 3 and all(h.payload[P.ENTITY_IDS] == ["ent_x"] for h in narrowed)
    assert narrowed[0].payload[P.TEXT].startswith("Enterprise refunds")  # other fields untouched
    hits = loaded.search(_dense(encoder, "refunds pro-rated"), acl_tokens=["role:sales"])
    assert "wiki:refunds" not in _docs(hits)
    assert loaded.count(filters=SearchFilters(entity_ids=("ent_x",))) == 3
    assert [h.payload[P.DOC_ID] for h in loaded.document_chunks("crm:acme", acl_tokens=["role:sales"])] == ["crm:acme"]


def test_upsert_same_id_replaces_point(loaded, encoder):
    first = _chunks(encoder)[0]
    changed = StoredChunk(first.point_id, first.dense, SparseVector((1,), (1.0,)), {**first.payload, P.TEXT: "changed"})
    loaded.upsert([changed])
    assert loaded.count() == 6
    assert loaded.document_chunks("wiki:refunds", acl_tokens=None)[0].payload[P.TEXT] == "changed"


def test_exact_and_hnsw_agree_on_small_collection(loaded, encoder):
    q = _dense(encoder, "refund window")
    exact = HybridQuery(q.prefetches, limit=q.limit, exact=True)
    assert _docs(loaded.search(q, acl_tokens=["role:sales"])) == _docs(loaded.search(exact, acl_tokens=["role:sales"]))
    for ef, max_selectivity in ((128, None), (SearchPlan().hnsw_ef, SearchPlan().acorn_max_selectivity)):
        tuned = HybridQuery(q.prefetches, limit=q.limit, hnsw_ef=ef, acorn=True,  # filtered-recall knobs
                            acorn_max_selectivity=max_selectivity)
        assert _docs(loaded.search(tuned, acl_tokens=["role:sales"])) == _docs(
            loaded.search(exact, acl_tokens=["role:sales"]))


def test_server_store_asks_whether_the_collection_exists_once(encoder):
    """Every read used to pay a `collection_exists` round trip; it is asked until the collection exists."""
    from qdrant_client import QdrantClient

    from core.store.server import ServerStore

    client = QdrantClient(":memory:")
    asked = []
    real = client.collection_exists
    client.collection_exists = lambda name: asked.append(name) or real(name)
    store = ServerStore(client, "counted")
    assert store.search(_dense(encoder, "refunds"), acl_tokens=["role:sales"]) == []  # no collection yet
    store.ensure_collection(encoder.dimension)
    store.upsert(_chunks(encoder))
    before = len(asked)
    for _ in range(5):
        assert store.search(_dense(encoder, "refunds"), acl_tokens=["role:sales"])
        store.fetch_neighbours({"wiki:refunds": [1]}, acl_tokens=["role:sales"])
        store.count(acl_tokens=["role:sales"])
    assert len(asked) == before
    store.close()
