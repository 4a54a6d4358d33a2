"""'wrong_entity' feedback becomes a steward override in the registry: ACL-checked, audited, reversible,
and shown in the feedback and tune reports."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from typer.testing import CliRunner

from api.app import create_app
from api.cli import app
from api.keys import KeyStore
from api.services import Services
from core.config import Settings, get_settings
from entity_resolution.steward import CANNOT, merge_entities
from evaluation.feedback import run_feedback_eval, run_tune
from ingest.manifest import load_manifest
from ingest.pipeline import ingest_manifests

ROWS = [
    ("A-1", "Acme Corporation", "Acme Corporation renewal: three-year term, SLA credit after the outage.", "sales"),
    ("A-2", "Acme Corporation", "Acme Corporation escalation: routing outage in the US warehouses.", "sales"),
    ("A-3", "Acme Analytics", "Acme Analytics dashboard partnership pitch from a start-up founder.", "sales"),
    ("A-4", "Coyote Dashboards", "Coyote Dashboards builds reporting add-ons for partners.", "sales"),
    ("A-5", "Acme Legal Trust", "Acme Legal Trust holds the escrow for the settlement.", "legal"),
]


def _corpus(root):
    (root / "crm").mkdir()
    lines = ["record_id,name,org,notes,visible_to"] + [f'{i},{o},{o},"{n}",{acl}' for i, o, n, acl in ROWS]
    (root / "crm" / "accounts.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (root / "crm.yaml").write_text(
        "source: crm\nkind: records\npath: crm\nid_field: record_id\ntitle_field: name\ntext_fields: [notes]\n"
        "entity_fields:\n  organization: [org]\nacl:\n  default: [sales]\n  field: visible_to\n", encoding="utf-8")
    return [load_manifest(root / "crm.yaml")]


@pytest.fixture()
def served(tmp_path, encoder):
    services = Services(Settings(data_dir=tmp_path / "data"))
    services.__dict__["encoder"] = encoder
    ingest_manifests(_corpus(tmp_path), services.ingest_context())
    registry = services.entity_registry.store
    ids = {name: registry.entity_of("organization", key) for name, key in
           ((o, k) for o in {r[1] for r in ROWS} for k in [_key(registry, o)])}
    # The mistake experts will correct: a steward (or the resolver) joined two different companies.
    wrong = merge_entities(registry, ids["Acme Corporation"], ids["Acme Analytics"], chunks=services.store)
    key = KeyStore(services.settings.keys_path).create(scopes=("context",), roles=("sales", "legal"), principals=("*",))
    with TestClient(create_app(services.settings, services=services)) as client:
        yield client, {"Authorization": f"Bearer {key}"}, services, {**ids, "wrong": wrong}
    services.store.close()


def _key(registry, surface):
    return registry.db.execute("SELECT key FROM mentions WHERE surface = ?", (surface,)).fetchone()[0]


def _ask(client, headers, request_id, query="Acme Corporation renewal"):
    body = {"query": query, "principal": {"id": "sam", "roles": ["sales"]}, "top_k": 5}
    response = client.post("/v1/context", headers={**headers, "X-Request-ID": request_id}, json=body)
    assert response.status_code == 200, response.text
    return response.json()


def _label(client, headers, request_id, **label):
    body = {"request_id": request_id, "principal": {"id": "sam", "roles": ["sales"]},
            "labels": [{"doc_id": "crm:A-3", "label": "wrong_entity", **label}]}
    return client.post("/v1/feedback", headers=headers, json=body)


def _events(services, name):
    lines = services.settings.audit_log_path.read_text(encoding="utf-8").splitlines()
    return [r for r in map(json.loads, lines) if r.get("event") == name]


def test_wrong_entity_feedback_splits_the_documents_alias_out_audited_and_reversible(served, monkeypatch):
    client, headers, services, ids = served
    registry = services.entity_registry.store
    analytics = _key(registry, "Acme Analytics")
    pack = _ask(client, headers, "req-1")
    assert ids["wrong"] in {e["entity_id"] for e in pack["entities"]}
    assert registry.entity_of("organization", analytics) == ids["wrong"]
    before = services.store.document_chunks("crm:A-3", acl_tokens=None, limit=1)[0].payload
    assert ids["wrong"] in before["entity_ids"]
    assert _label(client, headers, "req-1", entity_id=ids["wrong"]).status_code == 200
    assert run_feedback_eval(services)["entity_corrections"][0]["status"] == "pending"

    result = run_tune(services, actor="cli:test")
    outcome = result["entity_corrections"][0]
    assert outcome["status"] == "applied" and outcome["moved_keys"] == [analytics]
    moved_to = registry.entity_of("organization", analytics)
    assert moved_to not in (None, ids["wrong"]) and outcome["moved_to"] == moved_to
    assert registry.entity_of("organization", _key(registry, "Acme Corporation")) == ids["wrong"]
    assert (CANNOT, "organization") in {(k, t) for k, t, *_ in registry.overrides()}
    stamped = services.store.document_chunks("crm:A-3", acl_tokens=None, limit=1)[0].payload
    assert ids["wrong"] not in stamped.get("entity_ids", []), "chunk entity ids are re-stamped"
    audit = _events(services, "entity_correction")
    assert audit and audit[0]["actor"] == "cli:test" and audit[0]["doc_ids"] == ["crm:A-3"]
    assert audit[0]["entity_ids"] == [ids["wrong"], moved_to] and audit[0]["labelled_by"] == "sam"
    assert run_feedback_eval(services)["entity_corrections"][0]["status"] == "applied"
    assert run_tune(services)["entity_corrections"] == [], "applied once, not again"
    # the query's entity no longer pulls in the other company's record
    assert ids["wrong"] in {e["entity_id"] for e in _ask(client, headers, "req-2")["entities"]}

    services.store.close()  # the CLI opens the store itself
    monkeypatch.setenv("STITCH_DATA_DIR", str(services.settings.data_dir))
    get_settings.cache_clear()
    listed = CliRunner().invoke(app, ["eval", "feedback"])
    assert listed.exit_code == 0 and f"#{outcome['feedback_id']} applied: crm:A-3 not {ids['wrong']}" in listed.output
    reverted = CliRunner().invoke(app, ["tune", "revert", str(outcome["feedback_id"])])
    assert reverted.exit_code == 0, reverted.output
    assert registry.entity_of("organization", analytics) == ids["wrong"]
    assert _events(services, "entity_correction_revert")[0]["entity_ids"] == [ids["wrong"]]
    again = CliRunner().invoke(app, ["tune", "revert", str(outcome["feedback_id"])])
    assert again.exit_code == 2 and "is reverted, not applied" in again.output
    get_settings.cache_clear()


def test_naming_the_right_entity_moves_the_alias_there(served):
    from evaluation.corrections import revert_correction

    client, headers, services, ids = served
    registry = services.entity_registry.store
    _ask(client, headers, "req-1")
    assert _label(client, headers, "req-1", entity_id=ids["wrong"],
                  correct_entity_id=ids["Coyote Dashboards"]).status_code == 200
    outcome = run_tune(services)["entity_corrections"][0]
    assert outcome["status"] == "applied" and outcome["moved_to"] == ids["Coyote Dashboards"]
    assert registry.entity_of("organization", _key(registry, "Acme Analytics")) == ids["Coyote Dashboards"]
    revert_correction(services.feedback, registry, services.store, outcome["feedback_id"],
                      settings=services.settings, actor="t")
    assert registry.entity_of("organization", _key(registry, "Acme Analytics")) == ids["wrong"]
    assert registry.entity_of("organization", _key(registry, "Coyote Dashboards")) == ids["Coyote Dashboards"]


def test_nobody_touches_an_entity_through_a_document_or_entity_they_cannot_see(served):
    client, headers, services, ids = served
    _ask(client, headers, "req-1")
    not_named = _label(client, headers, "req-1", entity_id=ids["Coyote Dashboards"])
    hidden_right = _label(client, headers, "req-1", entity_id=ids["wrong"], correct_entity_id=ids["Acme Legal Trust"])
    unknown = _label(client, headers, "req-1", entity_id=ids["wrong"], correct_entity_id="ent_0000000000000000")
    assert not_named.status_code == hidden_right.status_code == unknown.status_code == 404
    assert hidden_right.json()["error"]["message"] == unknown.json()["error"]["message"]
    assert "Legal" not in hidden_right.text
    hidden_doc = {"request_id": "req-1", "principal": {"id": "sam", "roles": ["sales"]},
                  "labels": [{"doc_id": "crm:A-5", "label": "wrong_entity", "entity_id": ids["Acme Legal Trust"]}]}
    assert client.post("/v1/feedback", headers=headers, json=hidden_doc).status_code == 404
    assert services.feedback.entity_corrections() == []
    assert run_tune(services)["entity_corrections"] == []


def _console(client, key):
    import re

    assert client.post("/console/login", data={"key": key}, follow_redirects=False).status_code == 303
    page = client.get("/console/quality").text
    return re.search(r'name="csrf" value="([^"]+)"', page).group(1)


def test_console_playground_feedback_takes_the_feedback_path(served):
    import re

    client, headers, services, ids = served
    steward = KeyStore(services.settings.keys_path).create(scopes=("context",), roles=("sales",), principals=("*",))
    csrf = _console(client, steward)
    asked = {"csrf": csrf, "query": "Acme Corporation renewal", "principal_id": "sam", "roles": "sales"}
    page = client.post("/console/quality", data=asked).text
    request_id = re.search(r'name="request_id" value="([0-9a-f]+)"', page).group(1)
    rows = re.findall(r'<select name="label" class="label" data-doc="([^"]+)">(.*?)</select>', page, re.S)
    docs = [doc for doc, _ in rows]
    assert "crm:A-3" in docs and f"wrong_entity:{ids['wrong']}" in dict(rows)["crm:A-3"]
    choices = ["relevant" if d == "crm:A-1" else f"wrong_entity:{ids['wrong']}" if d == "crm:A-3" else "" for d in docs]
    form = {"csrf": csrf, "request_id": request_id, "principal_id": "sam", "roles": "sales",
            "doc_id": docs, "label": choices}
    sent = client.post("/console/quality/feedback", data=form)
    assert sent.status_code == 200 and 'id="feedback-stored"' in sent.text, sent.text
    assert [c.status for c in services.feedback.entity_corrections()] == ["pending"]
    judged = services.feedback.labelled_requests(services.pack_store)[0].judgements
    assert judged == {"crm:A-1": 1, "crm:A-3": 0}
    # the same checks as POST /v1/feedback: a document the principal cannot see is the same 404 as a missing one
    hidden = client.post("/console/quality/feedback", data={**form, "doc_id": ["crm:A-5"], "label": ["relevant"]})
    missing = client.post("/console/quality/feedback", data={**form, "doc_id": ["crm:nope"], "label": ["relevant"]})
    assert hidden.status_code == missing.status_code == 404 and "A-5" not in hidden.text
    forged = client.post("/console/quality/feedback", data={**form, "csrf": "forged"})
    assert forged.status_code in (400, 403) and len(services.feedback.entity_corrections()) == 1
