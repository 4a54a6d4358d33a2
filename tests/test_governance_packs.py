"""Explainable, replayable context packs: each pack says why every passage was visible, and an auditor
can ask later whether what was returned is still the same and still visible."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.keys import KeyStore
from api.services import Services
from core.config import Settings
from ingest.manifest import load_manifest
from ingest.pipeline import ingest_manifests

MANIFEST = """source: notes
kind: files
path: docs
acl:
  default: [{default}]
  rules:
    - match: "finance/**"
      roles: [finance]
"""


def _write(root, *, default="sales", plan="The Falcon rollout plan starts in March with the Rotterdam team."):
    (root / "docs" / "finance").mkdir(parents=True, exist_ok=True)
    (root / "docs" / "plan.md").write_text(f"# Falcon plan\n\n{plan}\n", encoding="utf-8")
    (root / "docs" / "finance" / "budget.md").write_text("# Falcon budget\n\nThe Falcon budget is 2.4 million.\n")
    (root / "notes.yaml").write_text(MANIFEST.format(default=default), encoding="utf-8")


@pytest.fixture()
def served(tmp_path, encoder):
    _write(tmp_path)
    services = Services(Settings(data_dir=tmp_path / "data"))
    services.__dict__["encoder"] = encoder
    keys = KeyStore(services.settings.keys_path)
    made = {
        "context": keys.create(scopes=("context",), roles=("sales", "finance"), principals=("*",)),
        "audit": keys.create(scopes=("audit",), roles=()),
    }

    def ingest():
        return ingest_manifests([load_manifest(tmp_path / "notes.yaml")], services.ingest_context())

    ingest()
    with TestClient(create_app(services.settings, services=services)) as client:
        yield client, made, ingest, tmp_path
    services.store.close()


def _auth(key):
    return {"Authorization": f"Bearer {key}"}


def _ask(client, key, roles):
    body = {"query": "Falcon rollout plan", "principal": {"id": "alice", "roles": roles}}
    response = client.post("/v1/context", headers=_auth(key), json=body)
    assert response.status_code == 200, response.text
    return response.json()


def test_each_passage_says_which_of_the_principals_tokens_made_it_visible(served):
    client, keys, _, _ = served
    pack = _ask(client, keys["context"], ["sales"])
    assert pack["passages"] and {p["doc_id"] for p in pack["passages"]} == {"notes:plan.md"}
    assert all(p["visible_via"] == ["role:sales"] for p in pack["passages"])
    assert all(p["acl_origin"] == "acl.default" for p in pack["passages"])
    finance = _ask(client, keys["context"], ["finance"])
    budget = [p for p in finance["passages"] if p["doc_id"] == "notes:finance/budget.md"]
    assert budget and budget[0]["acl_origin"] == "acl.rules[0] 'finance/**'"
    assert budget[0]["visible_via"] == ["role:finance"]
    assert all(len(p["content_hashes"]) == len(p["chunk_ids"]) for p in pack["passages"])
    assert set(pack["manifest"]["acl_tokens"]) >= {"role:sales", "public"}
    assert "role:finance" not in pack["manifest"]["acl_tokens"]


def test_replay_shows_the_request_and_that_it_still_holds(served):
    client, keys, _, _ = served
    pack = _ask(client, keys["context"], ["sales"])
    replayed = client.get(f"/v1/context/{pack['request_id']}", headers=_auth(keys["audit"]))
    assert replayed.status_code == 200, replayed.text
    body = replayed.json()
    assert body["principal_id"] == "alice" and body["roles"] == ["sales"]
    assert body["unchanged"] is True
    assert [p["doc_id"] for p in body["passages"]] == [p["doc_id"] for p in pack["passages"]]
    assert "Rotterdam" not in replayed.text  # ids and hashes, never document text


def test_replay_shows_a_changed_passage_and_a_revoked_one(served):
    client, keys, ingest, root = served
    pack = _ask(client, keys["context"], ["sales"])
    _write(root, plan="The Falcon rollout plan moved to June; the Austin team leads it now.")
    ingest()
    changed = client.get(f"/v1/context/{pack['request_id']}", headers=_auth(keys["audit"])).json()
    assert changed["unchanged"] is False
    assert [p["same"] for p in changed["passages"]] == [False]
    assert [p["still_visible"] for p in changed["passages"]] == [True]
    _write(root, default="exec", plan="The Falcon rollout plan moved to June; the Austin team leads it now.")
    ingest()
    revoked = client.get(f"/v1/context/{pack['request_id']}", headers=_auth(keys["audit"])).json()
    assert [p["still_visible"] for p in revoked["passages"]] == [False]


def test_replay_needs_the_audit_scope_and_a_known_id(served):
    client, keys, _, _ = served
    pack = _ask(client, keys["context"], ["sales"])
    assert client.get(f"/v1/context/{pack['request_id']}", headers=_auth(keys["context"])).status_code == 403
    assert client.get(f"/v1/context/{pack['request_id']}").status_code == 401
    assert client.get("/v1/context/no-such-request", headers=_auth(keys["audit"])).status_code == 404


def test_a_reused_request_id_cannot_erase_what_was_returned(served):
    client, keys, _, _ = served
    headers = {**_auth(keys["context"]), "X-Request-ID": "trace-1"}
    first = client.post("/v1/context", headers=headers,
                        json={"query": "Falcon budget", "principal": {"id": "fay", "roles": ["finance"]}})
    assert first.status_code == 200
    client.post("/v1/context", headers=headers,
                json={"query": "Falcon rollout", "principal": {"id": "sam", "roles": ["sales"]}})
    body = client.get("/v1/context/trace-1", headers=_auth(keys["audit"])).json()
    assert body["principal_id"] == "sam"  # the latest; the first record is still stored
    services_store = client.app.state.services.pack_store
    rows = services_store._db.execute("SELECT COUNT(*) FROM packs WHERE request_id = 'trace-1'").fetchone()
    assert rows[0] == 2


def test_acl_origin_names_the_rule_or_record_field(tmp_path):
    from ingest.sources import iter_source_items

    (tmp_path / "rows.csv").write_text("id,body,visible_to\n1,alpha,finance;exec\n2,beta,\n", encoding="utf-8")
    (tmp_path / "rows.yaml").write_text(
        "source: crm\nkind: records\npath: rows.csv\nid_field: id\ntext_fields: [body]\n"
        "acl:\n  default: [sales]\n  field: visible_to\n  public: true\n", encoding="utf-8")
    items = {i.doc_id: i for i in iter_source_items(load_manifest(tmp_path / "rows.yaml"))}
    assert items["crm:1"].acl_origin == "field 'visible_to' + acl.public"
    assert items["crm:2"].acl_origin == "acl.default + acl.public"


def test_pack_records_are_committed_off_the_request_path_and_survive_a_reopen(tmp_path):
    from governance.packs import PackRecord, PackStore, PassageRecord

    store = PackStore(tmp_path / "packs.sqlite3")
    for i in range(300):
        store.record(PackRecord(f"r{i}", float(i), "k", "alice", ("sales",), ("role:sales",), "q", "m",
                                (PassageRecord(1, "wiki:a.md", ("c",), ("h",), ("role:sales",)),)))
    assert store.get("r299").principal_id == "alice"  # a read waits for queued records
    store.close()
    reopened = PackStore(tmp_path / "packs.sqlite3")
    assert reopened.get("r0").passages[0].doc_id == "wiki:a.md"
    assert reopened.forget_before(150.0) == 150
    reopened.close()
