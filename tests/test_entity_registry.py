"""The registry as users see it: documents linked to entities, steward overrides that persist, ACL on aliases."""

from __future__ import annotations

import pytest

from core.access import principal_tokens
from core.errors import NotFoundError
from core.models import Document, Principal
from entity_resolution.gazetteer import Gazetteer
from entity_resolution.linker import RegistryLinker
from entity_resolution.registry import RegistryStore
from entity_resolution.steward import merge_entities, never_link, rebuild, split_entity
from entity_resolution.views import entity_view, list_entities

SUPPORT = principal_tokens(Principal("sam", ("support",)))
FINANCE = principal_tokens(Principal("fay", ("finance",)))


def _doc(doc_id: str, roles: tuple[str, ...], text: str, *orgs: str, people: tuple[str, ...] = ()) -> Document:
    mentions = tuple(("organization", o) for o in orgs) + tuple(("person", p) for p in people)
    return Document(doc_id, doc_id.split(":")[0], doc_id, text, acl=tuple(f"role:{r}" for r in roles), entity_mentions=mentions)


CORPUS = [
    _doc("crm:A-1", ("sales",), "Account Acme Corporation renewal.", "Acme Corporation"),
    _doc("tickets:T-9", ("support",), "ACME Corp. cannot log in.", "ACME Corp."),
    _doc("email:E-3", ("sales", "support"), "Regards, Bob -- acme", "acme", people=("Bob Smith",)),
    _doc("contracts:C-7", ("finance",), "Master agreement with Acme Holdings (Deutschland) GmbH, codename Roadrunner.",
         "Acme Holdings (Deutschland) GmbH", "Roadrunner Ventures"),
    _doc("crm:A-2", ("sales",), "Acme Analytics is a separate prospect.", "Acme Analytics"),
]


@pytest.fixture()
def linker(tmp_path):
    store = RegistryStore(tmp_path / "entities.sqlite3")
    linker = RegistryLinker(store)
    for document in CORPUS:
        linker.link_document(document)
    yield linker
    store.close()


def _acme(linker: RegistryLinker) -> str:
    return linker.link_document(CORPUS[0])[0]


def test_linker_links_every_acme_spelling_to_one_entity_and_not_acme_analytics(linker):
    acme = _acme(linker)
    assert all(acme in linker.link_document(d) for d in CORPUS[:3])
    assert acme not in linker.link_document(CORPUS[4])
    assert acme not in linker.link_document(CORPUS[3])  # the German subsidiary is its own legal entity
    view = entity_view(linker.store, acme, acl_tokens=None)
    assert view.name == "Acme Corporation"
    assert {"ACME Corp.", "acme"} <= set(view.aliases) and "Acme Holdings (Deutschland) GmbH" not in view.aliases
    assert {m.doc_id for m in view.mentions} >= {"crm:A-1", "tickets:T-9", "email:E-3"}


def test_known_names_are_found_in_free_text_of_later_documents(linker):
    ids = linker.link_document(_doc("wiki:W-1", ("support",), "Escalation notes: ACME Corp and Acme Analytics met."))
    assert _acme(linker) in ids and len(ids) == 2


def test_gazetteer_precision_guard_ignores_common_words_and_lowercase_fuzz():
    gazetteer = Gazetteer()
    gazetteer.add([("organization", "target"), ("organization", "acme analytics"), ("organization", "globex")])
    text = "Our target this quarter: acme analytcs? No - Acme Analytcs and globex."
    found = [(m.key, m.surface, m.fuzzy) for m in gazetteer.find(text)]
    assert ("target", "target", False) not in found
    assert ("acme analytics", "Acme Analytcs", True) in found
    assert ("globex", "globex", False) in found
    assert [m.key for m in gazetteer.find("see globexx later")] == []  # lowercase single word: exact only
    assert [m.key for m in gazetteer.find("see Globexx later")] == ["globex"]
    # a capitalised common word may just start a sentence; only the all-caps form is taken as the name
    assert [m.surface for m in gazetteer.find("Target reached. Meeting with TARGET")] == ["TARGET"]


def test_ids_are_stable_across_rebuilds_and_reingest(linker):
    before = {v.entity_id: v.name for v in list_entities(linker.store, acl_tokens=None)}
    rebuild(linker.store)
    for document in CORPUS:
        linker.link_document(document)
    after = {v.entity_id: v.name for v in list_entities(linker.store, acl_tokens=None)}
    assert before == after


def test_split_persists_across_rebuilds_and_new_documents(linker):
    ibm = linker.link_document(_doc("crm:A-3", ("sales",), "", "IBM", "International Business Machines Corp."))
    assert len(ibm) == 1
    moved = split_entity(linker.store, ibm[0], ["IBM"])
    assert moved != ibm[0]
    rebuild(linker.store)
    linker.link_document(_doc("crm:A-4", ("sales",), "", "IBM"))
    after = linker.link_document(_doc("crm:A-3", ("sales",), "", "IBM", "International Business Machines Corp."))
    assert len(after) == 2 and moved in after
    assert "IBM" not in entity_view(linker.store, ibm[0], acl_tokens=None).aliases


def test_merge_persists_and_wins_on_rebuild(linker):
    acme = _acme(linker)
    analytics = linker.link_document(CORPUS[4])[0]
    assert merge_entities(linker.store, acme, analytics) == acme
    rebuild(linker.store)
    assert linker.link_document(CORPUS[4]) == (acme,)
    assert "Acme Analytics" in entity_view(linker.store, acme, acl_tokens=None).aliases


def test_never_link_keeps_lookalikes_apart(tmp_path):
    store = RegistryStore(tmp_path / "r.sqlite3")
    linker = RegistryLinker(store)
    a = linker.link_document(_doc("crm:1", ("sales",), "", "Initech Systems"))[0]
    b = linker.link_document(_doc("crm:2", ("sales",), "", "Initech Systemz"))[0]
    assert a == b  # one typo apart: linked automatically
    moved = split_entity(store, a, ["Initech Systemz"])
    never_link(store, a, moved)
    rebuild(store)
    linker.link_document(_doc("crm:3", ("sales",), "", "Initech Systemz"))
    assert linker.link_document(_doc("crm:1", ("sales",), "", "Initech Systems")) == (a,)
    assert linker.link_document(_doc("crm:2", ("sales",), "", "Initech Systemz")) == (moved,)
    store.close()


def test_aliases_and_mentions_are_visible_only_through_visible_documents(linker):
    acme = _acme(linker)
    support_view = entity_view(linker.store, acme, acl_tokens=SUPPORT)
    assert "Acme Holdings (Deutschland) GmbH" not in support_view.aliases
    assert "Acme Corporation" not in support_view.aliases and support_view.name != "Acme Corporation"
    assert {m.doc_id for m in support_view.mentions} == {"tickets:T-9", "email:E-3"}
    roadrunner = [v for v in list_entities(linker.store, query="roadrunner", acl_tokens=None)]
    assert roadrunner
    assert list_entities(linker.store, query="roadrunner", acl_tokens=SUPPORT) == []
    with pytest.raises(NotFoundError):
        entity_view(linker.store, roadrunner[0].entity_id, acl_tokens=SUPPORT)
    assert entity_view(linker.store, roadrunner[0].entity_id, acl_tokens=FINANCE).name == "Roadrunner Ventures"


def test_query_resolver_only_matches_visible_aliases(linker):
    support = linker.entities_in_query("is acme affected? what about Roadrunner Ventures", acl_tokens=SUPPORT)
    assert [(r.type, r.matched) for r in support] == [("organization", "acme")]
    assert support[0].name in {"ACME Corp.", "acme"}
    finance = linker.entities_in_query("Roadrunner Ventures renewal", acl_tokens=FINANCE)
    assert [r.name for r in finance] == ["Roadrunner Ventures"]
    assert linker.entities_in_query("general support plan", acl_tokens=FINANCE) == []


def test_a_long_lived_resolver_sees_names_registered_by_another_process(linker, tmp_path):
    other = RegistryLinker(RegistryStore(linker.store.db.execute("PRAGMA database_list").fetchone()[2]))
    assert linker.entities_in_query("Hooli Inc renewal", acl_tokens=SUPPORT) == []
    other.link_document(_doc("tickets:T-10", ("support",), "", "Hooli Inc"))
    assert [r.name for r in linker.entities_in_query("hooli renewal", acl_tokens=SUPPORT)] == ["Hooli Inc"]
    other.store.close()
