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
