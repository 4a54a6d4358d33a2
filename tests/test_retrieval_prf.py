"""Pseudo-relevance feedback (RM3 on BM25) and document-level fusion of chunk scores."""

from __future__ import annotations

import pytest

from core import payload as P
from core.access import principal_tokens
from core.models import Hit, Principal, SparseVector
from core.sparse import sparse_query_vector
from retrieval.context import ContextRequest
from retrieval.fusion import fuse_documents
from retrieval.prf import DenseFeedback, Feedback, expand_query, relevance_model, rocchio
from retrieval.search import SearchPlan
from tests.test_retrieval_stitch import SALES, load, make_document, retriever_for


def _hit(point: str, doc: str, score: float, text: str = "") -> Hit:
    return Hit(point, score, {P.DOC_ID: doc, P.TEXT: text, P.TITLE: ""})


def test_relevance_model_weights_terms_by_document_score():
    hits = [_hit("a", "d1", 3.0, "rickets rickets calcium"), _hit("b", "d2", 1.0, "zebra")]
    model = relevance_model(hits, terms=10)
    rickets, zebra = (sparse_query_vector(w).indices[0] for w in ("rickets", "zebra"))
    assert model[rickets] > model[zebra] > 0
    assert sum(model.values()) == pytest.approx(1.0)
    assert len(relevance_model(hits, terms=1)) == 1


def test_expand_query_keeps_the_original_terms_and_mixes_by_weight():
    query = sparse_query_vector("vitamin deficiency")
    hits = [_hit("a", "d1", 1.0, "rickets calcium bones")]
    expanded = expand_query(query, hits, Feedback(docs=1, terms=3, weight=0.25))
    weights = dict(zip(expanded.indices, expanded.values))
    assert set(query.indices) <= set(weights) and len(weights) == 5
    assert sum(weights[t] for t in query.indices) == pytest.approx(0.75)
    assert sum(weights.values()) == pytest.approx(1.0)
    assert expand_query(SparseVector((), ()), hits, Feedback()) == SparseVector((), ())


def test_feedback_rejects_nonsense_settings():
    with pytest.raises(ValueError):
        Feedback(weight=1.5)
    with pytest.raises(ValueError):
        Feedback(docs=0)


@pytest.fixture()
def rickets_store(any_store):
    load(
        any_store,
        make_document("wiki:a", ["Vitamin deficiency causes rickets in children."]),
        make_document("wiki:b", ["Vitamin deficiency and rickets: soft bones."]),
        make_document("wiki:c", ["Cholecalciferol treats rickets and soft bones."]),  # no query word
        make_document("wiki:d", ["Quarterly sales figures for the north region."]),
    )
    return any_store


def _docs(retriever, query: str) -> list[str]:
    hits, _ = retriever.search(ContextRequest(query, SALES), limit=10)
    return [h.payload[P.DOC_ID] for h in hits]


def test_feedback_finds_a_document_that_shares_no_query_word(rickets_store):
    plain = _docs(retriever_for(rickets_store), "vitamin deficiency")
    expanded = _docs(retriever_for(rickets_store, plan=SearchPlan(mode="sparse", feedback=Feedback(docs=2, terms=5))),
                     "vitamin deficiency")
    assert "wiki:c" not in plain
    assert expanded[:2] == plain[:2] and "wiki:c" in expanded and "wiki:d" not in expanded


def test_expansion_terms_never_come_from_documents_the_principal_cannot_see(any_store):
    load(
        any_store,
        make_document("vault:x", ["Merger codename bluebird with Initech."], roles=("exec",)),
        make_document("wiki:y", ["Bluebird feeder cleaning guide."]),
        make_document("wiki:z", ["Merger rumours are not discussed."]),
    )
    plan = SearchPlan(mode="sparse", feedback=Feedback(docs=3, terms=10, weight=0.9))
    assert _docs(retriever_for(any_store, plan=plan), "merger initech") == ["wiki:z"]


def test_document_fusion_lifts_a_document_matching_in_several_chunks():
    hits = [_hit("a1", "A", 1.0), _hit("b1", "B", 0.8), _hit("b2", "B", 0.5), _hit("c1", "C", 0.7)]
    assert fuse_documents(hits, 0.0) == hits
    fused = fuse_documents(hits, 0.5)
    assert [h.point_id for h in fused] == ["b1", "a1", "c1", "b2"]
    assert fused[0].score == pytest.approx(1.05)
    assert fused[-1].score == 0.5  # the document's other chunks keep their own scores


def test_rocchio_moves_the_query_towards_the_feedback_and_keeps_unit_length():
    moved = rocchio((1.0, 0.0), [(0.0, 1.0), (0.0, 1.0)], 1.0)
    assert moved == pytest.approx((2 ** -0.5, 2 ** -0.5))
    assert rocchio((0.6, 0.8), [], 0.5) == (0.6, 0.8)
    with pytest.raises(ValueError):
        DenseFeedback(docs=0)


@pytest.fixture()
def dense_store(any_store):
    load(
        any_store,
        make_document("wiki:a", ["vitamin deficiency rickets bones softening"]),
        make_document("wiki:c", ["rickets bones calcium"]),  # no query word, but the top hit's words
        make_document("wiki:d", ["vitamin sales figures north region quarterly"]),
        make_document("vault:e", ["rickets bones calcium"], roles=("exec",)),
    )
    return any_store


def test_dense_feedback_lifts_a_document_like_the_top_hit(dense_store):
    plain = SearchPlan(mode="dense", dense_feedback=None)
    moved = SearchPlan(mode="dense", dense_feedback=DenseFeedback(docs=1, weight=1.0))
    assert _docs(retriever_for(dense_store, plan=plain), "vitamin deficiency")[:3] == ["wiki:a", "wiki:d", "wiki:c"]
    assert _docs(retriever_for(dense_store, plan=moved), "vitamin deficiency")[:3] == ["wiki:a", "wiki:c", "wiki:d"]


def test_stored_vectors_are_only_returned_for_chunks_the_principal_may_see(dense_store):
    ids = [P.chunk_point_id(doc, 0, "0") for doc in ("wiki:a", "vault:e")]
    sales = dense_store.dense_vectors(ids, acl_tokens=principal_tokens(SALES))
    assert set(sales) == {ids[0]} and len(sales[ids[0]]) == 64
    assert set(dense_store.dense_vectors(ids, acl_tokens=principal_tokens(Principal("ceo", ("exec",))))) == {ids[1]}
    assert dense_store.dense_vectors([], acl_tokens=principal_tokens(SALES)) == {}
