"""Template-heavy documents: fills of one template that differ in a name and a few values are different
documents, so dedupe keeps the one the query named and the pack cites it."""

from __future__ import annotations

from core import payload as P
from core.models import Hit
from retrieval.pack import drop_duplicates
from retrieval.stitch import StitchedSpan

TEMPLATE = ("This Master Services Agreement is made between Northwind Systems B.V. and {name}. "
            "The agreement renews automatically for successive periods of {years} months unless either "
            "party gives notice. Liability of either party is capped at {cap} EUR per contract year.")


def _span(doc: str, rank: int, text: str, entity: str | None, *, updated: float = 0.0) -> StitchedSpan:
    payload = {P.DOC_ID: doc, P.CHUNK_INDEX: 0, P.SPAN_START: 0, P.SPAN_END: len(text), P.TEXT: text,
               P.URI: f"https://contracts/{doc}", P.SOURCE: doc.split(":")[0], P.TITLE: doc,
               P.UPDATED_TS: updated, P.ENTITY_IDS: [entity] if entity else []}
    return StitchedSpan(doc, 1.0 / (rank + 1), rank, (Hit(doc, 0.0, payload),))


def test_template_twins_about_other_customers_are_not_duplicates():
    # the fresher twin used to win the dedupe group, so the named customer's contract left the pack
    named = _span("contracts:swift-orchard", 0, TEMPLATE.format(name="Swift Orchard Trading Ltd", years=12, cap=50000),
                  "ent_sot")
    twin = _span("contracts:swift-harbor", 1, TEMPLATE.format(name="Swift Harbor Technologies", years=24, cap=75000),
                 "ent_sht", updated=1e9)
    kept = drop_duplicates([named, twin])
    assert [s.doc_id for s in kept] == ["contracts:swift-orchard", "contracts:swift-harbor"]


def test_template_twins_differing_only_in_values_are_kept_even_without_entity_links():
    a = _span("contracts:a", 0, TEMPLATE.format(name="Swift Orchard Trading Ltd", years=12, cap=50000), None)
    b = _span("contracts:b", 1, TEMPLATE.format(name="Swift Orchard Trading Ltd", years=36, cap=90000), None,
              updated=1e9)
    assert [s.doc_id for s in drop_duplicates([a, b])] == ["contracts:a", "contracts:b"]


def test_one_text_stored_twice_still_collapses_to_the_better_cited_copy():
    text = TEMPLATE.format(name="Swift Orchard Trading Ltd", years=12, cap=50000)
    wrapped = text.replace(" renews ", "\nrenews ")  # another system's line wrapping: same words
    kept = drop_duplicates([_span("email:m1", 0, text, "ent_sot"),
                            _span("tickets:t9", 1, wrapped, "ent_sot", updated=1e9)])
    assert [(s.doc_id, s.rank) for s in kept] == [("tickets:t9", 0)]


def test_a_clause_shared_word_for_word_by_two_customers_contracts_keeps_both():
    clause = "Each party's total liability under this Agreement is capped at the fees paid in the 12 months."
    kept = drop_duplicates([_span("contracts:coral", 0, clause, "ent_coral"),
                            _span("contracts:amber", 1, clause, "ent_amber", updated=1e9)])
    assert [s.doc_id for s in kept] == ["contracts:coral", "contracts:amber"]


NAMES = [f"{a} {b} {c}" for a in ("Coral", "Amber", "Swift", "Grey") for b in ("Canyon", "Harbor") for c in
         ("Technologies", "Foods", "Trading", "Pharma")]  # 32 customers


class NamedCustomer:
    """The query resolver's answer: the query names one customer."""

    def __init__(self, name: str) -> None:
        self.name = name

    def entities_in_query(self, text, *, acl_tokens):
        from core.models import EntityRef
        return [EntityRef(_entity(self.name), self.name, "organization", self.name)]


def _entity(name: str) -> str:
    return "ent_" + name.lower().replace(" ", "_")


def test_32_same_template_contracts_rank_and_cite_the_named_customers_clause(any_store):
    # before: the named contract's renewal clause, word for word the same as in other customers'
    # contracts, collapsed into a fresher twin, so the pack cited another customer's page
    from core.models import Principal
    from retrieval.context import ContextRequest
    from retrieval.search import SearchPlan
    from tests.test_retrieval_stitch import load, make_document, retriever_for

    docs = []
    for i, name in enumerate(NAMES):
        chunks = make_document(
            f"contracts:{_entity(name)}.pdf",
            [f"Master Services Agreement between Northwind Systems B.V. and {name} (the Customer).",
             "Fees and payment. Fees are invoiced yearly in advance and payable within thirty days.",
             f"Term and renewal. This agreement renews automatically for periods of {12 * (1 + i % 3)} months "
             "unless either party gives notice ninety days before the end of the term."],
            roles=("legal",), entity_ids=(_entity(name),), updated=None,
        )
        for chunk, page in zip(chunks, (1, 2, 3)):
            chunk.payload[P.PAGES] = [page]
            chunk.payload[P.UPDATED_TS] = float(i)  # later customers' copies are fresher
        docs.append(chunks)
    load(any_store, *docs)
    named = NAMES[4]
    retriever = retriever_for(any_store, plan=SearchPlan(mode="hybrid"), entity_resolver=NamedCustomer(named))
    request = ContextRequest(f"When does the {named} master services agreement renew?", Principal("lee", ("legal",)))
    hits, _ = retriever.search(request, limit=20)
    assert hits[0].payload[P.DOC_ID] == f"contracts:{_entity(named)}.pdf"
    pack = retriever.context(request)
    cited = [(p.doc_id, p.pages) for p in pack.passages]
    assert cited[0][0] == f"contracts:{_entity(named)}.pdf" and 3 in cited[0][1]
