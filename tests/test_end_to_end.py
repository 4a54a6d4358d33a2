"""The slice, end to end over the fixture wiki: ingest → Qdrant → cited, ACL-filtered context, by CLI and HTTP."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from api.app import create_app
from api.cli import app as cli
from api.keys import KeyStore
from core.config import get_settings
from tests.conftest import FIXTURES

WIKI = str(FIXTURES / "manifests" / "wiki.yaml")
FORECAST = "wiki:finance/q3-revenue-forecast.md"


@pytest.fixture()
def cli_env(tmp_path, monkeypatch, encoder):
    monkeypatch.setenv("STITCH_DATA_DIR", str(tmp_path / "data"))
    get_settings.cache_clear()
    yield CliRunner()
    from core.store.factory import close_store

    close_store(get_settings())
    get_settings.cache_clear()


def _query(runner, text, *roles):
    args = ["query", text, "--json"] + [a for r in roles for a in ("--role", r)]
    result = runner.invoke(cli, args)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_cli_ingest_then_query_respects_roles(cli_env):
    result = cli_env.invoke(cli, ["ingest", WIKI, "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["added"] >= 6 and report["failed"] == 0 and report["invisible"] >= 1

    finance = _query(cli_env, "Q3 revenue forecast", "finance")
    assert finance["passages"][0]["doc_id"] == FORECAST
    cite = finance["citations"][0]
    assert cite["uri"] == "https://wiki.northwind.example/finance/q3-revenue-forecast.md"
    assert cite["span"]["end"] > cite["span"]["start"] >= 0 and cite["title"] == "Q3 Revenue Forecast"
    assert finance["context"].startswith("[1] ")
    assert finance["usage"]["tokens"] > 0 and set(finance["timings_ms"]) >= {"embed", "search", "total"}

    sales = _query(cli_env, "Q3 revenue forecast", "sales")
    assert FORECAST not in {p["doc_id"] for p in sales["passages"]}
    assert "FIN-CANARY" not in json.dumps(sales)

    again = json.loads(cli_env.invoke(cli, ["ingest", WIKI, "--json"]).stdout)
    assert again["unchanged"] == report["added"] and again["added"] == again["updated"] == 0


def test_unresolvable_acl_is_never_returned(cli_env):
    cli_env.invoke(cli, ["ingest", WIKI, "--json"])
    everyone = _query(cli_env, "unreleased pricing draft refund window", "sales", "finance", "hr", "exec", "legal")
    assert "DRAFT-CANARY" not in json.dumps(everyone)


def test_bad_manifest_exits_2_and_ingests_nothing(cli_env, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("source: wiki\nkind: files\npath: .\ncolour: red\n")
    result = cli_env.invoke(cli, ["ingest", WIKI, str(bad), "--json"])
    assert result.exit_code == 2
    assert "colour" in result.output and "bad.yaml" in result.output
    assert not (get_settings().data_dir / "ledger.sqlite3").exists()


@pytest.fixture()
def http(wiki_index):
    services, _ = wiki_index
    app = create_app(services.settings, services=services)
    keys = KeyStore(services.settings.keys_path)
    sales_key = keys.create(scopes=("context",), roles=("sales", "support"), principals=("*",))
    finance_key = keys.create(scopes=("context",), roles=("finance",), principals=("*",))
    with TestClient(app) as client:
        yield client, sales_key, finance_key


def _post(client, key, roles, query="Q3 revenue forecast"):
    return client.post(
        "/v1/context",
        headers={"Authorization": f"Bearer {key}"},
        json={"query": query, "principal": {"id": "alice", "roles": roles}, "max_tokens": 600},
    )


def test_http_context_is_cited_and_acl_filtered(http):
    client, sales_key, finance_key = http
    ok = _post(client, finance_key, ["finance"])
    assert ok.status_code == 200
    body = ok.json()
    assert body["passages"][0]["doc_id"] == FORECAST and body["citations"][0]["id"] == 1
    denied = _post(client, sales_key, ["sales"]).json()
    assert FORECAST not in json.dumps(denied) and "FIN-CANARY" not in json.dumps(denied)


def test_http_auth_errors(http):
    client, sales_key, _ = http
    assert _post(client, "stk_nope_nope", ["sales"]).status_code == 401
    no_key = client.post("/v1/context", json={"query": "x", "principal": {"id": "a", "roles": []}})
    assert no_key.status_code == 401 and no_key.json()["error"]["code"] == "unauthenticated"
    forbidden = _post(client, sales_key, ["finance"])
    assert forbidden.status_code == 403 and "finance" in forbidden.json()["error"]["message"]


def test_http_document_dereference_hides_invisible_as_not_found(http):
    client, sales_key, finance_key = http
    headers = {"Authorization": f"Bearer {finance_key}"}
    ok = client.get(f"/v1/documents/{FORECAST}", params={"principal_id": "f", "role": ["finance"]}, headers=headers)
    assert ok.status_code == 200 and "14.2 million" in ok.json()["text"]
    sales_headers = {"Authorization": f"Bearer {sales_key}"}
    hidden = client.get(f"/v1/documents/{FORECAST}", params={"principal_id": "s", "role": ["sales"]}, headers=sales_headers)
    missing = client.get("/v1/documents/wiki:nope.md", params={"principal_id": "s", "role": ["sales"]}, headers=sales_headers)
    assert hidden.status_code == missing.status_code == 404
    assert hidden.json()["error"]["message"] == missing.json()["error"]["message"]
