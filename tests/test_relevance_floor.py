"""Relevance floor: a caller can tell a weak pack (``🙂🙂``, ``the of and``) and ask for nothing below a floor."""

from __future__ import annotations

import pytest

from core.models import Principal
from retrieval.context import ContextRequest

STAFF = Principal("eval", ("sales", "support", "engineering", "finance", "legal", "hr", "exec"))


@pytest.fixture(scope="module")
def retriever(wiki_index):
    services, _ = wiki_index
    return services.retriever


@pytest.mark.parametrize("query", ["🙂🙂", "the of and", "zxqv wplk"])
def test_nonsense_queries_give_a_weak_pack_and_nothing_above_a_floor(retriever, query):
    pack = retriever.context(ContextRequest(query, STAFF))
    assert pack.weak, [(p.doc_id, p.relevance) for p in pack.passages]
    floored = retriever.context(ContextRequest(query, STAFF, min_relevance=0.3))
    assert floored.passages == () and floored.weak and floored.relevance is None
    hits, _ = retriever.search(ContextRequest(query, STAFF, min_relevance=0.3))
    assert hits == []


def test_a_real_question_is_not_weak_and_passages_carry_relevance(retriever):
    pack = retriever.context(ContextRequest("How fast must the on-call engineer acknowledge a SEV1 page?", STAFF))
    assert not pack.weak and pack.relevance >= 0.3
    assert pack.passages[0].doc_id == "wiki:engineering/incident-runbook.md"
    assert all(0.0 <= p.relevance <= 1.0 for p in pack.passages)
    assert pack.relevance == max(p.relevance for p in pack.passages)
    floored = retriever.context(ContextRequest("How fast must the on-call engineer acknowledge a SEV1 page?", STAFF,
                                               min_relevance=0.3))
    assert floored.passages and all(p.relevance >= 0.3 for p in floored.passages)


def test_http_body_accepts_min_relevance_and_returns_weak():
    from api.schemas import ContextIn, ContextOut

    body = ContextIn.model_validate({"query": "x", "principal": {"id": "a", "roles": ["sales"]}, "min_relevance": 0.4})
    assert body.min_relevance == 0.4
    with pytest.raises(ValueError):
        ContextIn.model_validate({"query": "x", "principal": {"id": "a", "roles": ["sales"]}, "min_relevance": 2})
    assert {"weak", "relevance"} <= set(ContextOut.model_fields)


class _CountingStore:
    """The index's store, counting the searches a request makes."""

    def __init__(self, store):
        self._store, self.searches, self.scored = store, [], []

    def search(self, query, **kw):
        self.searches.append(query)
        return self._store.search(query, **kw)

    def dense_scores(self, vector, point_ids, **kw):
        self.scored.append(tuple(point_ids))
        return self._store.dense_scores(vector, point_ids, **kw)

    def __getattr__(self, name):
        return getattr(self._store, name)


def test_a_context_request_without_entities_makes_one_store_call_for_hits_and_relevance(retriever):
    """The fused query is the only search over the collection and the only store call before stitching: it
    returns each hit's exact dense cosine, instead of a second, deeper dense query (or a second call)."""
    from dataclasses import replace

    question = "How fast must the on-call engineer acknowledge a SEV1 page?"
    counting = _CountingStore(retriever.store)
    pack = replace(retriever, store=counting).context(ContextRequest(question, STAFF))
    assert len(counting.searches) == 1, [len(q.prefetches) for q in counting.searches]
    # ... and the hits' cosines come with it: a worker process reaches its store in one round trip, not two
    assert counting.scored == [] and counting.searches[0].with_dense_score
    assert pack.passages and not pack.weak


def test_relevance_of_a_hit_far_down_the_dense_ranking_is_its_own_cosine(tmp_path, encoder):
    """A hit that BM25 found but the dense side ranks below its top 50 keeps its own (low) cosine; a 50-deep
    relevance query gave it that query's lowest cosine, an overstatement that could lift it over a floor."""
    from core import payload as P
    from core.access import principal_tokens
    from core.models import StoredChunk
    from core.payload import chunk_point_id
    from core.sparse import sparse_document_vector
    from core.store.edge import EdgeStore
    from core.store.protocol import HybridQuery, PrefetchSpec
    from retrieval.relevance import hit_relevance
    from retrieval.search import encode_query

    topics = ["refund policy for enterprise customers", "on-call paging and incident escalation",
              "parental leave and holidays", "quarterly revenue forecast", "contract liability caps",
              "laptop encryption standard", "travel expense approvals", "customer renewal pricing"]
    texts = [f"Note {i}: {topics[i % len(topics)]}, revision {i // len(topics)}." for i in range(96)]
    store = EdgeStore(tmp_path / "edge")
    store.ensure_collection(encoder.dimension)
    dense = encoder.encode_passages(texts)
    store.upsert([StoredChunk(chunk_point_id(f"wiki:n{i}", 0, f"h{i}"), tuple(dense[i].tolist()),
                              sparse_document_vector(t), {P.DOC_ID: f"wiki:n{i}", P.TEXT: t, P.ACL: ["role:staff"]})
                  for i, t in enumerate(texts)])
    store.flush()
    tokens = principal_tokens(Principal("u", ("staff",)))
    vectors = encode_query(encoder, "who signs off a refund for an enterprise customer")
    ranked = store.search(HybridQuery((PrefetchSpec(P.DENSE, vectors.dense, 96),), limit=96), acl_tokens=tokens)
    deep = ranked[80:]
    assert deep[0].score < ranked[49].score - 0.03  # the deep hits are clearly below the 50th cosine
    relevance = hit_relevance(store, vectors, deep, acl_tokens=tokens)
    for hit in deep:
        assert relevance[hit.point_id] == pytest.approx(max(0.0, hit.score), abs=2e-3), hit.payload[P.TEXT]
    store.close()
