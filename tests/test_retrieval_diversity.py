"""Per-system diversity: a query naming a customer gets that customer's passages from every system the
principal may see, the record the leading passages refer to by id first; never an invisible one."""

from __future__ import annotations

from core import payload as P
from core.models import EntityRef, Hit, Principal
from retrieval.context import ContextRequest
from retrieval.diversity import reserve_systems
from retrieval.search import SearchPlan
from tests.test_retrieval_stitch import load, make_document, retriever_for

SALES_SUPPORT = Principal("sam", ("sales", "support"))
OTHERS = ["Globex", "Initech", "Umbrella", "Hooli", "Soylent", "Vandelay", "Wonka"]


class OneEntity:
    """The query resolver's answer: the query names Acme."""

    def entities_in_query(self, text, *, acl_tokens):
        return [EntityRef("ent_acme", "Acme Corp", "organization", "Acme")]


def _corpus(store) -> None:
    renewal = "{name} renewal is at risk: they may not renew and ask for a discount before the renewal."
    docs = [make_document("email:acme-renewal", [renewal.format(name="Acme") + " See ticket T-2."],
                          roles=("sales",), entity_ids=("ent_acme",))]
    docs += [make_document(f"email:{n.lower()}-renewal", [renewal.format(name=n)], roles=("sales",),
                           entity_ids=(f"ent_{n.lower()}",)) for n in OTHERS]
    docs += [
        make_document("tickets:T-1", ["Invoices for May are unpaid."], roles=("support",), entity_ids=("ent_acme",)),
        make_document("tickets:T-2", ["Driver app crashes when scanning."], roles=("support",),
                      entity_ids=("ent_acme",)),
        make_document("tickets:T-9", ["Acme may not renew: payroll dispute."], roles=("hr",), entity_ids=("ent_acme",)),
        make_document("crm:A-1", ["Acme Corp account, 28 depots."], roles=("sales",), entity_ids=("ent_acme",)),
    ]
    load(store, *docs)


def test_pack_about_a_named_customer_holds_its_ticket_not_other_customers_templates(any_store):
    # before: the seven other customers' renewal emails filled the pack; no ticket, no CRM record
    _corpus(any_store)
    retriever = retriever_for(any_store, plan=SearchPlan(mode="hybrid"), entity_resolver=OneEntity())
    request = ContextRequest("Why might Acme not renew and which support issue is behind it?", SALES_SUPPORT, top_k=4)
    pack = retriever.context(request)
    docs = [p.doc_id for p in pack.passages]
    assert docs[0] == "email:acme-renewal"
    assert "tickets:T-2" in docs  # the ticket the email names, before the customer's other ticket
    assert "tickets:T-1" not in docs or docs.index("tickets:T-2") < docs.index("tickets:T-1")
    assert "crm:A-1" in docs
    hits, _ = retriever.search(request, limit=20)
    ranked = [h.payload[P.DOC_ID] for h in hits]
    assert {"tickets:T-2", "crm:A-1"} <= set(ranked[:4])
    assert all(h.score >= n.score for h, n in zip(hits, hits[1:]))  # reserved hits keep rank order


def test_reserved_passages_respect_the_acl(any_store):
    _corpus(any_store)
    retriever = retriever_for(any_store, plan=SearchPlan(mode="hybrid"), entity_resolver=OneEntity())
    sales_only = ContextRequest("Why might Acme not renew?", Principal("sue", ("sales",)), top_k=4)
    docs = [p.doc_id for p in retriever.context(sales_only).passages]
    assert not any(d.startswith("tickets:") for d in docs)
    hits, _ = retriever.search(sales_only, limit=20)
    assert not any(h.payload[P.DOC_ID].startswith("tickets:") for h in hits)


def _hit(doc: str, score: float, entity: str = "ent_acme", text: str = "") -> Hit:
    return Hit(doc + "#0", score, {P.DOC_ID: doc, P.SOURCE: doc.split(":")[0], P.ENTITY_IDS: [entity], P.TEXT: text})


def test_reserve_keeps_leaders_and_skips_documents_already_shown():
    hits = [_hit("email:a", 0.9), _hit("email:b", 0.8, "ent_other"), _hit("email:c", 0.7, "ent_other"),
            _hit("email:d", 0.6, "ent_other")]
    coverage = [_hit("email:a", 3.0), _hit("crm:A-1", 2.0), _hit("tickets:T-1", 1.0)]
    out = reserve_systems(hits, coverage, entity_ids=("ent_acme",), window=3, slots=2)
    assert [h.payload[P.DOC_ID] for h in out] == ["email:a", "crm:A-1", "tickets:T-1", "email:b", "email:c", "email:d"]
    assert [h.score for h in out] == [0.9, 0.9, 0.9, 0.8, 0.7, 0.6]  # clamped to rank order
    assert reserve_systems(hits, [], entity_ids=("ent_acme",), window=3, slots=2) == hits


def test_a_passage_about_no_entity_keeps_its_place_before_other_customers_fills():
    # a general SLA policy is not pushed out of the window to make room; another customer's email is
    hits = [_hit("tickets:T-1", 0.9), _hit("email:other", 0.8, "ent_other"), _hit("wiki:sla", 0.7, None)]
    hits[2] = Hit("wiki:sla#0", 0.7, {P.DOC_ID: "wiki:sla", P.SOURCE: "wiki", P.ENTITY_IDS: [], P.TEXT: ""})
    coverage = [_hit("tickets:T-1", 3.0), _hit("crm:A-1", 2.0)]
    out = reserve_systems(hits, coverage, entity_ids=("ent_acme",), window=3, slots=2)
    assert [h.payload[P.DOC_ID] for h in out] == ["tickets:T-1", "wiki:sla", "crm:A-1", "email:other"]


def test_slots_left_over_go_to_the_next_passages_about_the_entity():
    # the CRM contact already shown does not stand in for the account record the question is about
    hits = [_hit("crm:C-1", 0.9), _hit("email:b", 0.8, "ent_other"), _hit("email:c", 0.7, "ent_other")]
    coverage = [_hit("crm:C-1", 3.0), _hit("crm:A-1", 2.0), _hit("crm:C-2", 1.0)]
    out = reserve_systems(hits, coverage, entity_ids=("ent_acme",), window=3, slots=1)
    assert [h.payload[P.DOC_ID] for h in out] == ["crm:C-1", "email:b", "crm:A-1", "email:c"]


def test_the_record_the_leading_passage_names_by_id_wins_its_system():
    hits = [_hit("email:renewal", 0.9, text="After the crashes we reported in T-5001 we cannot renew."),
            _hit("email:b", 0.8, "ent_other")]
    coverage = [_hit("email:renewal", 3.0), _hit("tickets:T-5002", 2.0), _hit("tickets:T-5001", 1.0)]
    out = reserve_systems(hits, coverage, entity_ids=("ent_acme",), window=2, slots=1)
    assert [h.payload[P.DOC_ID] for h in out] == ["email:renewal", "tickets:T-5001", "email:b"]
