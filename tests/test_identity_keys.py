"""Identity at the key edge: a key asserts only the principal ids and roles it was given.

A document whose ACL is ``user:dana`` holds a canary; every read route is probed with keys that may and
may not assert ``dana``. Role names are checked with one grammar at HTTP and at ``keys create``."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from api.app import create_app
from api.keys import KeyStore
from api.services import Services
from core.config import Settings
from core.errors import ConfigurationError

CANARY = "DANA-CANARY-4242"
DANA_DOC = "notes:dana/review.md"
READ_ROUTES = ("context", "search", "documents", "entities", "entity")


def build_index(root, encoder, **settings_fields):
    """A TestClient over two documents: one for user:dana only (the canary), one for sales."""
    from ingest.manifest import load_manifest
    from ingest.pipeline import ingest_manifests

    (root / "notes" / "dana").mkdir(parents=True)
    (root / "notes" / "dana" / "review.md").write_text(f"# Review\n\nSalary review for Dana: {CANARY}.\n")
    (root / "notes" / "handbook.md").write_text("# Handbook\n\nSalary reviews happen every spring.\n")
    manifest = root / "notes.yaml"
    manifest.write_text(
        "source: notes\nkind: files\npath: notes\ninclude: ['**/*.md']\n"
        "acl:\n  default: [sales]\n  rules:\n    - match: 'dana/**'\n      roles: ['user:dana']\n"
    )
    settings = Settings(data_dir=root / "data", **settings_fields)
    services = Services(settings)
    services.__dict__["encoder"] = encoder  # reuse the session model
    report = ingest_manifests([load_manifest(manifest)], services.ingest_context())
    assert report.added == 2
    return TestClient(create_app(settings, services=services)), services


@pytest.fixture(scope="module")
def index(tmp_path_factory, encoder):
    client, services = build_index(tmp_path_factory.mktemp("identity"), encoder)
    with client:
        yield client, KeyStore(services.settings.keys_path), services.settings
    services.store.close()


def _auth(key: str) -> dict:
    return {"Authorization": f"Bearer {key}"}


def read(client, key, route, principal_id, roles=("sales",), headers=None):
    """One read on ``route`` as ``principal_id`` (None: no id sent)."""
    body = {"query": f"salary review {CANARY}", "principal": {"roles": list(roles)}}
    params = {"role": list(roles)}
    if principal_id is not None:
        body["principal"]["id"] = principal_id
        params["principal_id"] = principal_id
    headers = {**_auth(key), **(headers or {})}
    if route in ("context", "search"):
        return client.post(f"/v1/{route}", json=body, headers=headers)
    if route == "documents":
        return client.get(f"/v1/documents/{DANA_DOC}", params=params, headers=headers)
    if route == "entities":
        return client.get("/v1/entities", params={**params, "q": "dana"}, headers=headers)
    return client.get("/v1/entities/ent_0000", params=params, headers=headers)


@pytest.mark.parametrize("route", READ_ROUTES)
def test_a_key_without_principal_ids_may_not_assert_one(index, route):
    client, keys, _ = index
    sales_key = keys.create(scopes=("context",), roles=("sales",))
    response = read(client, sales_key, route, "dana")
    assert response.status_code == 403, response.text
    assert "'dana'" in response.json()["error"]["message"] and CANARY not in response.text


@pytest.mark.parametrize("route", ("context", "search", "documents"))
def test_a_key_reads_user_documents_only_for_ids_it_may_assert(index, route):
    client, keys, _ = index
    exact = keys.create(scopes=("context",), roles=("sales",), principals=("dana", "erin"))
    pattern = keys.create(scopes=("context",), roles=("sales",), principals=("svc-*",))
    anyone = keys.create(scopes=("context",), roles=("sales",), principals=("*",))
    assert CANARY in read(client, exact, route, "dana").text
    assert CANARY in read(client, anyone, route, "dana").text
    assert read(client, exact, route, "dan").status_code == 403
    assert read(client, pattern, route, "dana").status_code == 403
    svc = read(client, pattern, route, "svc-reports")
    assert svc.status_code in (200, 404) and CANARY not in svc.text


@pytest.mark.parametrize("route", READ_ROUTES)
def test_a_request_without_a_principal_id_has_no_user_token(index, route):
    client, keys, _ = index
    sales_key = keys.create(scopes=("context",), roles=("sales",))
    response = read(client, sales_key, route, None)
    assert response.status_code in (200, 404), response.text
    assert CANARY not in response.text


def test_a_key_file_written_before_principal_ids_grants_none(index, tmp_path):
    client, _, settings = index
    keys = KeyStore(settings.keys_path)
    plaintext = keys.create(scopes=("context",), roles=("sales",))
    raw = json.loads(settings.keys_path.read_text())
    for record in raw["keys"]:
        record.pop("principals", None)
        record.pop("verified_users_only", None)
    settings.keys_path.write_text(json.dumps(raw))
    assert read(client, plaintext, "context", "dana").status_code == 403
    assert keys.authenticate(plaintext).principals == ()


@pytest.mark.parametrize("bad", ["da na", "dana,erin", "user:dana", ""])
def test_an_invalid_principal_id_is_a_422_naming_it(index, bad):
    client, keys, _ = index
    anyone = keys.create(scopes=("context",), roles=("*",), principals=("*",))
    for route in ("context", "documents"):
        response = read(client, anyone, route, bad)
        assert response.status_code == 422, response.text
        assert CANARY not in response.text
        if bad:
            assert repr(bad) in response.json()["error"]["message"] or bad in response.json()["error"]["message"]


@pytest.mark.parametrize("route", ("context", "documents", "entities"))
@pytest.mark.parametrize("bad", ["sales, exec", "exec public", "user:dana"])
def test_a_role_string_that_is_not_one_role_is_a_422_naming_it(index, route, bad):
    client, keys, _ = index
    anyone = keys.create(scopes=("context",), roles=("*",), principals=("*",))
    response = read(client, anyone, route, "alice", roles=(bad,))
    assert response.status_code == 422, response.text
    assert bad in response.json()["error"]["message"] and CANARY not in response.text


def test_key_store_rejects_bad_roles_and_principal_patterns(tmp_path):
    keys = KeyStore(tmp_path / "keys.json")
    with pytest.raises(ConfigurationError, match="sales,exec"):
        keys.create(scopes=("context",), roles=("sales,exec",))
    with pytest.raises(ConfigurationError, match="a b"):
        keys.create(scopes=("context",), roles=("sales",), principals=("a b",))
    assert not (tmp_path / "keys.json").exists()


def test_keys_create_cli_takes_principals_and_refuses_a_joined_role(tmp_path, monkeypatch):
    from api.cli import app
    from core.config import get_settings

    monkeypatch.setenv("STITCH_DATA_DIR", str(tmp_path / "data"))
    get_settings.cache_clear()
    runner = CliRunner()
    try:
        joined = runner.invoke(app, ["keys", "create", "--scope", "context", "--role", "sales,exec"])
        assert joined.exit_code == 2 and "sales,exec" in joined.output, joined.output
        made = runner.invoke(app, ["keys", "create", "--scope", "context", "--role", "sales",
                                   "--principal", "svc-*", "--principal", "dana"])
        assert made.exit_code == 0, made.output
        anyone = runner.invoke(app, ["keys", "create", "--scope", "context", "--any-principal"])
        assert anyone.exit_code == 0, anyone.output
        listed = runner.invoke(app, ["keys", "list"]).output
        assert "principals=svc-*,dana" in listed and "principals=*" in listed
    finally:
        get_settings.cache_clear()


def test_stitch_query_refuses_a_joined_role_before_opening_anything(tmp_path, monkeypatch):
    from api.cli import app
    from core.config import get_settings

    monkeypatch.setenv("STITCH_DATA_DIR", str(tmp_path / "data"))
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, ["query", "anything", "--role", "sales,exec"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 2 and "sales,exec" in result.output
    assert not (tmp_path / "data").exists()
