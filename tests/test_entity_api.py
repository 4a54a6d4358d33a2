"""Entities over HTTP and the steward CLI: scopes, ACL-filtered aliases, merge/split round trips."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from api.keys import KeyStore
from api.routes import entities
from api.services import Services
from core.models import Document


def _doc(doc_id: str, roles: tuple[str, ...], *orgs: str) -> Document:
    return Document(doc_id, doc_id.split(":")[0], doc_id, "", acl=tuple(f"role:{r}" for r in roles),
                    entity_mentions=tuple(("organization", o) for o in orgs))


@pytest.fixture()
def api(settings):
    from api.app import create_app

    services = Services(settings)
    linker = services.entity_registry
    for doc in (_doc("crm:1", ("sales",), "Acme Corporation"), _doc("tickets:1", ("support",), "ACME Corp."),
                _doc("contracts:1", ("finance",), "Acme Holdings (Deutschland) GmbH", "Roadrunner Ventures"),
                _doc("crm:2", ("sales",), "Acme Analytics")):
        linker.link_document(doc)
    app = create_app(settings, services=services)
    if not any(getattr(r, "path", "") == "/v1/entities" for r in app.routes):
        app.include_router(entities.router)
    keys = KeyStore(settings.keys_path)
    reader = keys.create(scopes=("context",), roles=("*",), principals=("*",))
    writer = keys.create(scopes=("context", "entities:write"), roles=("*",), principals=("*",))
    yield TestClient(app), {"Authorization": f"Bearer {reader}"}, {"Authorization": f"Bearer {writer}"}, linker
    linker.store.close()


def _search(client, headers, q, *roles):
    return client.get("/v1/entities", params={"q": q, "principal_id": "p", "role": list(roles)}, headers=headers)


def test_entity_search_and_detail_show_only_visible_aliases(api):
    client, reader, _, _ = api
    support = _search(client, reader, "acme", "support").json()["entities"]
    assert [e["aliases"] for e in support] == [["ACME Corp."]]
    assert _search(client, reader, "roadrunner", "support").json()["entities"] == []
    finance = _search(client, reader, "roadrunner", "finance").json()["entities"]
    entity_id = finance[0]["entity_id"]
    detail = client.get(f"/v1/entities/{entity_id}", params={"principal_id": "p", "role": ["finance"]}, headers=reader)
    assert detail.status_code == 200 and detail.json()["mentions"][0]["doc_id"] == "contracts:1"
    hidden = client.get(f"/v1/entities/{entity_id}", params={"principal_id": "p", "role": ["support"]}, headers=reader)
    assert hidden.status_code == 404 and "Roadrunner" not in hidden.text


def test_merge_and_split_need_the_write_scope_and_persist(api):
    client, reader, writer, linker = api
    acme, analytics = (_search(client, reader, q, "sales").json()["entities"][0]["entity_id"] for q in ("corporation", "analytics"))
    body = {"other_id": analytics}
    assert client.post(f"/v1/entities/{acme}/merge", json=body, headers=reader).status_code == 403
    assert client.post(f"/v1/entities/{acme}/merge", json=body).status_code == 401
    merged = client.post(f"/v1/entities/{acme}/merge", json=body, headers=writer)
    assert merged.json() == {"entity_id": acme}
    assert linker.link_document(_doc("crm:2", ("sales",), "Acme Analytics")) == (acme,)
    split = client.post(f"/v1/entities/{acme}/split", json={"aliases": ["Acme Analytics"]}, headers=writer)
    assert split.status_code == 200 and split.json()["entity_id"] != acme
    bad = client.post(f"/v1/entities/{acme}/split", json={"aliases": ["Nope"]}, headers=writer)
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid_configuration"
    assert client.post("/v1/entities/ent_missing/merge", json=body, headers=writer).status_code == 404


def test_cli_list_show_merge_split(settings, monkeypatch):
    from api.cli import app
    from core.config import get_settings

    monkeypatch.setenv("STITCH_DATA_DIR", str(settings.data_dir))
    get_settings.cache_clear()
    linker = Services(settings).entity_registry
    linker.link_document(_doc("crm:1", ("sales",), "IBM", "International Business Machines", "Globex"))
    runner = CliRunner()
    listed = json.loads(runner.invoke(app, ["entities", "list", "--json"]).stdout)["entities"]
    ibm = next(e["entity_id"] for e in listed if "IBM" in e["aliases"])
    globex = next(e["entity_id"] for e in listed if "Globex" in e["aliases"])
    shown = runner.invoke(app, ["entities", "show", ibm])
    assert shown.exit_code == 0 and "International Business Machines" in shown.stdout
    new_id = runner.invoke(app, ["entities", "split", ibm, "--alias", "IBM"]).stdout.strip()
    assert new_id.startswith("ent_") and new_id != ibm
    assert runner.invoke(app, ["entities", "merge", ibm, globex]).stdout.strip() == ibm
    assert runner.invoke(app, ["entities", "show", "ent_nope"]).exit_code == 1
    for command in ("list", "show", "merge", "split", "never-link", "resolve"):
        assert runner.invoke(app, ["entities", command, "--help"]).exit_code == 0
    get_settings.cache_clear()
    linker.store.close()
