"""Hybrid search through the Retriever: caller filters, query entities, reranking, plans."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from core.models import EntityRef, Principal, SearchFilters
from retrieval.context import ContextRequest
from retrieval.rerank import Reranker, rerank_hits
from retrieval.search import SearchPlan
from tests.test_retrieval_stitch import SALES, load, make_document, retriever_for

OLD = datetime(2025, 1, 1, tzinfo=timezone.utc)
NEW = datetime(2026, 6, 1, tzinfo=timezone.utc)


@pytest.fixture()
def crm_store(any_store):
    load(
        any_store,
        make_document("crm:acme", ["Acme renewal terms: three years."], updated=NEW, entity_ids=("ent_acme",)),
        make_document("email:acme", ["Acme renewal call notes from Bob."], updated=OLD, entity_ids=("ent_acme",)),
        make_document("crm:globex", ["Globex renewal terms: one year."], updated=NEW, entity_ids=("ent_globex",)),
        make_document("email:initech", ["Initech renewal is pending legal review."], updated=OLD),
        make_document("finance:acme", ["Acme renewal discount approved by finance."], roles=("finance",)),
    )
    return any_store


def _doc_ids(retriever, query, **filters) -> list[str]:
    request = ContextRequest(query, SALES, filters=SearchFilters(**filters))
    hits, _ = retriever.search(request, limit=20)
    return [h.payload["doc_id"] for h in hits]


@pytest.mark.parametrize("mode", ["hybrid", "dense", "sparse"])
def test_every_plan_respects_the_acl(crm_store, mode):
    docs = _doc_ids(retriever_for(crm_store, plan=SearchPlan(mode=mode)), "Acme renewal discount")
    assert docs and "finance:acme" not in docs


def test_source_filter(crm_store):
    docs = _doc_ids(retriever_for(crm_store, plan=SearchPlan()), "renewal", sources=("email",))
    assert sorted(docs) == ["email:acme", "email:initech"]


def test_entity_filter(crm_store):
    docs = _doc_ids(retriever_for(crm_store, plan=SearchPlan()), "renewal", entity_ids=("ent_acme",))
    assert sorted(docs) == ["crm:acme", "email:acme"]


def test_updated_after_filter(crm_store):
    docs = _doc_ids(retriever_for(crm_store, plan=SearchPlan()), "renewal", updated_after=datetime(2026, 1, 1))
    assert sorted(docs) == ["crm:acme", "crm:globex"]


class FakeResolver:
    """Resolves "acme corporation" to one entity, as a principal may see it."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[str, ...]]] = []

    def entities_in_query(self, text, *, acl_tokens):
        self.calls.append((text, tuple(acl_tokens)))
        if "acme" in text.lower():
            return [EntityRef("ent_acme", "Acme Corporation", "organization", "acme")]
        return []


def test_query_entities_reach_the_pack_and_lift_their_documents(crm_store):
    resolver = FakeResolver()
    retriever = retriever_for(crm_store, plan=SearchPlan(entity_weight=3.0), entity_resolver=resolver)
    pack = retriever.context(ContextRequest("what did acme say about terms", SALES, top_k=2))
    assert [e.entity_id for e in pack.entities] == ["ent_acme"]
    assert {p.doc_id for p in pack.passages} == {"crm:acme", "email:acme"}
    assert "role:sales" in resolver.calls[0][1]


def test_entity_prefetch_is_still_acl_filtered(crm_store):
    retriever = retriever_for(crm_store, plan=SearchPlan(entity_weight=3.0), entity_resolver=FakeResolver())
    assert "finance:acme" not in _doc_ids(retriever, "acme discount approved by finance")


def test_no_entities_means_no_entity_prefetch(crm_store):
    retriever = retriever_for(crm_store, plan=SearchPlan(), entity_resolver=FakeResolver())
    pack = retriever.context(ContextRequest("Globex terms", SALES, top_k=1))
    assert pack.entities == ()
    assert pack.passages[0].doc_id == "crm:globex"


class ReverseAlphabetReranker:
    """Scores passages so the alphabetically last body (after the title line) wins: easy to predict."""

    name = "fake"

    def score(self, query, passages):
        bodies = [p.splitlines()[-1] for p in passages]
        order = sorted(bodies)
        return [float(order.index(b)) for b in bodies]


def test_reranker_protocol_and_reordering(crm_store):
    assert isinstance(ReverseAlphabetReranker(), Reranker)
    retriever = retriever_for(crm_store, plan=SearchPlan(rerank_depth=10), reranker=ReverseAlphabetReranker())
    hits, timings = retriever.search(ContextRequest("renewal", SALES), limit=10)
    texts = [h.payload["text"] for h in hits]
    assert texts == sorted(texts, reverse=True)
    assert "rerank" in timings


def test_rerank_only_touches_the_head(crm_store):
    hits, _ = retriever_for(crm_store).search(ContextRequest("renewal terms", SALES), limit=10)
    reranked = rerank_hits(ReverseAlphabetReranker(), "renewal terms", hits, depth=2)
    assert reranked[2:] == hits[2:]
    assert {h.point_id for h in reranked[:2]} == {h.point_id for h in hits[:2]}


def test_reranking_is_off_by_default(crm_store):
    assert retriever_for(crm_store).reranker is None


def test_missing_reranker_model_is_a_configuration_error(tmp_path):
    from core.config import Settings
    from core.errors import ConfigurationError
    from retrieval.rerank import load_reranker

    with pytest.raises(ConfigurationError, match="STITCH_RERANKER_MODEL"):
        load_reranker(Settings(data_dir=tmp_path, reranker_model=str(tmp_path / "nope")))


def test_principal_without_roles_sees_only_public(any_store):
    load(any_store, make_document("wiki:pub", ["Holiday calendar for everyone."], roles=("public",)),
         make_document("wiki:priv", ["Holiday calendar for sales only."]))
    docs = [h.payload["doc_id"] for h in retriever_for(any_store).search(
        ContextRequest("holiday calendar", Principal("guest", ())), limit=10)[0]]
    assert docs == ["wiki:pub"]
