"""The MCP server through the SDK's own client: in process, over streamable HTTP against a real
``stitch serve``, and over stdio against a real ``stitch mcp``; and MCP never returns what REST would not."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import anyio
import pytest
from fastapi.testclient import TestClient
from mcp.client import Client
from mcp.client.stdio import StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

from api.app import create_app
from api.keys import KeyStore
from api.mcp import build_mcp_server
from tests.conftest import FIXTURES, ROOT

FORECAST = "wiki:finance/q3-revenue-forecast.md"
TOOLS = {"get_context", "search", "read_document", "find_entities", "show_entity"}
CANARIES = [json.loads(line) for line in (FIXTURES / "gold" / "canaries.jsonl").read_text().splitlines() if line]
# Who may see each wiki canary's document (fixtures/manifests/wiki.yaml folder rules; README "Canaries").
VISIBLE_TO = {"FIN-CANARY-7731": {"finance", "exec"}, "HR-CANARY-2208": {"hr", "exec"},
              "HR-CANARY-3817": {"hr", "exec"}, "DRAFT-CANARY-5150": set()}
WIKI_CANARIES = [{**c, "roles": VISIBLE_TO[c["token"]]} for c in CANARIES if c["doc_id"].startswith("wiki:")]


def _call(server, tool: str, arguments: dict):
    async def main():
        async with Client(server) as client:
            return await client.call_tool(tool, arguments)

    return anyio.run(main)


@pytest.fixture(scope="module")
def wiki(wiki_index):
    services, _ = wiki_index
    keys = KeyStore(services.settings.keys_path)
    finance = keys.create(scopes=("context",), roles=("finance", "exec", "sales", "support", "engineering"),
                          principals=("*",))
    server = build_mcp_server(services, key_of=lambda _ctx: keys.authenticate(finance))
    with TestClient(create_app(services.settings, services=services)) as http:
        yield server, http, finance, keys


def test_tools_have_typed_output_and_described_inputs(wiki):
    server = wiki[0]

    async def main():
        async with Client(server) as client:
            return (await client.list_tools()).tools

    tools = {t.name: t for t in anyio.run(main)}
    assert set(tools) == TOOLS
    for tool in tools.values():
        assert tool.output_schema and tool.output_schema.get("properties"), tool.name
        assert tool.annotations.read_only_hint is True
        assert len(tool.description) > 40
        for name in ("principal_id", "roles"):
            assert tool.input_schema["properties"][name].get("description"), (tool.name, name)
    assert {"citations", "index_as_of", "filtered_for"} <= set(tools["get_context"].output_schema["properties"])


def test_get_context_carries_citations_as_of_and_principal(wiki):
    server = wiki[0]
    result = _call(server, "get_context", {"query": "Q3 revenue forecast", "principal_id": "fiona",
                                           "roles": ["finance"], "max_tokens": 400})
    assert not result.is_error, result.content
    pack = result.structured_content
    assert pack["passages"][0]["doc_id"] == FORECAST and "[1]" in pack["context"]
    assert pack["citations"][0]["doc_id"] == FORECAST and pack["citations"][0]["indexed_at"]
    assert pack["index_as_of"] == max(c["indexed_at"] for c in pack["citations"])
    assert pack["filtered_for"] == {"principal_id": "fiona", "roles": ["finance"],
                                    "acl_tokens": ["public", "role:finance", "user:fiona"]}
    document = _call(server, "read_document", {"doc_id": FORECAST, "principal_id": "fiona", "roles": ["finance"]})
    assert "FIN-CANARY-7731" in document.structured_content["text"]


def test_unknown_or_hidden_filter_values_fail_clearly_on_both_doors(wiki):
    server, http, key, _ = wiki
    for sources in (["no-such-source"], ["wiki", "crm"]):  # crm is not in this index
        result = _call(server, "get_context", {"query": "forecast", "principal_id": "f", "roles": ["finance"],
                                               "sources": sources})
        assert result.is_error and "filters.sources" in result.content[0].text
        rest = http.post("/v1/context", headers={"Authorization": f"Bearer {key}"},
                         json={"query": "forecast", "principal": {"id": "f", "roles": ["finance"]},
                               "filters": {"sources": sources}})
        assert rest.status_code == 422 and "filters.sources" in rest.json()["error"]["message"]
    hidden_entity = _call(server, "search", {"query": "x", "principal_id": "f", "roles": [], "entity_ids": ["ent_0"]})
    assert hidden_entity.is_error and "filters.entity_ids" in hidden_entity.content[0].text
    ok = _call(server, "search", {"query": "forecast", "principal_id": "f", "roles": ["finance"], "sources": ["wiki"]})
    assert not ok.is_error and ok.structured_content["hits"]


def test_a_role_the_key_may_not_assert_is_refused(wiki):
    server = wiki[0]
    result = _call(server, "get_context", {"query": "salary bands", "principal_id": "h", "roles": ["hr"]})
    assert result.is_error and "forbidden" in result.content[0].text and "hr" in result.content[0].text


def _rest_doc_ids(http, key, tool, query, roles) -> set[str]:
    auth = {"Authorization": f"Bearer {key}"}
    body = {"query": query, "principal": {"id": "probe", "roles": roles}, "top_k": 10}
    if tool == "get_context":
        return {p["doc_id"] for p in http.post("/v1/context", headers=auth, json=body).json()["passages"]}
    return {h["doc_id"] for h in http.post("/v1/search", headers=auth, json=body).json()["hits"]}


@pytest.mark.parametrize("roles", [[], ["sales"], ["support"], ["engineering"], ["finance"], ["sales", "support"]])
def test_mcp_never_returns_what_rest_would_not(wiki, roles):
    """Same principal and query on both doors: the same documents, and never a canary the roles may not see."""
    server, http, key, _ = wiki
    for canary in WIKI_CANARIES:
        for tool in ("get_context", "search"):
            arguments = {"query": canary["probe"], "principal_id": "probe", "roles": roles, "top_k": 10}
            result = _call(server, tool, arguments)
            assert not result.is_error, result.content
            data = result.structured_content
            rows = data["passages"] if tool == "get_context" else data["hits"]
            assert {r["doc_id"] for r in rows} == _rest_doc_ids(http, key, tool, canary["probe"], roles)
            if not set(roles) & set(canary["roles"]):
                assert canary["token"] not in json.dumps(data), (tool, roles, canary["token"])
        hidden = not set(roles) & set(canary["roles"])
        document = _call(server, "read_document", {"doc_id": canary["doc_id"], "principal_id": "probe", "roles": roles})
        assert document.is_error == hidden
        rest = http.get(f"/v1/documents/{canary['doc_id']}", headers={"Authorization": f"Bearer {key}"},
                        params={"principal_id": "probe", "role": roles})
        assert (rest.status_code == 404) == hidden


def test_http_door_uses_the_rest_authentication(wiki):
    _, http, _, keys = wiki
    call = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    headers = {"Accept": "application/json, text/event-stream"}
    missing = http.post("/mcp", json=call, headers=headers)
    assert missing.status_code == 401 and missing.json()["error"]["code"] == "unauthenticated"
    ingest_only = keys.create(scopes=("ingest",), roles=("*",))
    refused = http.post("/mcp", json=call, headers={**headers, "Authorization": f"Bearer {ingest_only}"})
    assert refused.status_code == 403 and "context" in refused.json()["error"]["message"]


@pytest.mark.slow
def test_streamable_http_against_a_real_stitch_serve(stitch_server):
    url, key = stitch_server["url"], stitch_server["key"]

    async def main(token: str):
        transport = streamable_http_client(
            f"{url}/mcp", http_client=create_mcp_http_client(headers={"Authorization": f"Bearer {token}"}))
        async with Client(transport) as client:
            tools = {t.name for t in (await client.list_tools()).tools}
            result = await client.call_tool("get_context", {"query": "Q3 revenue forecast",
                                                            "principal_id": "fiona", "roles": ["finance"]})
            hidden = await client.call_tool("get_context", {"query": "Q3 revenue forecast",
                                                            "principal_id": "sam", "roles": ["sales"]})
            return tools, result, hidden

    tools, result, hidden = anyio.run(main, key)
    assert tools == TOOLS
    assert result.structured_content["passages"][0]["doc_id"] == FORECAST
    assert "FIN-CANARY-7731" not in json.dumps(hidden.structured_content)
    with pytest.raises(Exception):  # noqa: B017 - the SDK surfaces the 401 as a transport error
        anyio.run(main, "stk_nope_nope")
    deadline = time.monotonic() + 10  # the audit trail is written off the request path
    while True:
        audit = [json.loads(line) for line in (stitch_server["data"] / "audit.jsonl").read_text().splitlines()]
        if any(r.get("route") == "/mcp" and r.get("principal_id") == "fiona" and FORECAST in r.get("doc_ids", [])
               for r in audit) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert any(r.get("route") == "/mcp" and r.get("principal_id") == "fiona" and FORECAST in r.get("doc_ids", [])
               for r in audit)


@pytest.mark.slow
def test_stdio_against_a_real_stitch_mcp(tmp_path, encoder):
    from api.services import Services
    from core.config import Settings
    from ingest.manifest import load_manifest
    from ingest.pipeline import IngestContext, ingest_manifests

    settings = Settings(data_dir=tmp_path / "data")
    services = Services(settings)
    context = IngestContext(settings, encoder, services.store, services.ledger, linker=services.entity_registry)
    ingest_manifests([load_manifest(FIXTURES / "manifests" / "wiki.yaml")], context)
    services.store.close()
    key = KeyStore(settings.keys_path).create(scopes=("context",), roles=("finance", "sales"), principals=("*",))
    env = {**os.environ, "STITCH_DATA_DIR": str(settings.data_dir), "STITCH_API_KEY": key,
           "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    params = StdioServerParameters(command=str(Path(sys.executable).parent / "stitch"), args=["mcp"], env=env,
                                   cwd=str(ROOT))

    async def main():
        async with Client(params) as client:
            allowed = await client.call_tool("get_context", {"query": "Q3 revenue forecast",
                                                             "principal_id": "fiona", "roles": ["finance"]})
            refused = await client.call_tool("get_context", {"query": "salaries", "principal_id": "h", "roles": ["hr"]})
            return allowed, refused

    allowed, refused = anyio.run(main)
    assert allowed.structured_content["passages"][0]["doc_id"] == FORECAST
    assert refused.is_error and "forbidden" in refused.content[0].text


@pytest.mark.slow
def test_stitch_mcp_without_a_key_says_how_to_get_one(tmp_path):
    import subprocess

    env = {**os.environ, "STITCH_DATA_DIR": str(tmp_path)}
    env.pop("STITCH_API_KEY", None)
    result = subprocess.run([str(Path(sys.executable).parent / "stitch"), "mcp"], env=env, cwd=ROOT,
                            capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert result.returncode == 2 and "STITCH_API_KEY" in result.stderr and result.stdout == ""


@pytest.mark.slow
def test_stdio_forwards_to_the_stitch_serve_that_holds_the_data_dir(stitch_server):
    """`stitch mcp` beside a running `stitch serve` on the same data dir: the embedded store is locked, so
    the stdio messages go to the server's /mcp with the agent's own key (its grant, its audit records)."""
    key = KeyStore(stitch_server["data"] / "api_keys.json").create(scopes=("context",), roles=("finance", "sales"),
                                                                  principals=("*",), name="local-agent")
    env = {**stitch_server["env"], "STITCH_API_KEY": key}
    params = StdioServerParameters(command=str(Path(sys.executable).parent / "stitch"), args=["mcp"], env=env,
                                   cwd=str(ROOT))

    async def main():
        with anyio.fail_after(120):
            async with Client(params) as client:
                tools = {t.name for t in (await client.list_tools()).tools}
                allowed = await client.call_tool("get_context", {"query": "Q3 revenue forecast",
                                                                 "principal_id": "fiona", "roles": ["finance"]})
                refused = await client.call_tool("get_context", {"query": "salaries", "roles": ["hr"]})
                return tools, allowed, refused

    tools, allowed, refused = anyio.run(main)
    assert tools == TOOLS
    assert allowed.structured_content["passages"][0]["doc_id"] == FORECAST
    assert refused.is_error and "forbidden" in refused.content[0].text
    key_id = key.split("_")[1]
    deadline = time.monotonic() + 10  # the server writes its audit trail off the request path
    while time.monotonic() < deadline:
        audit = [json.loads(line) for line in (stitch_server["data"] / "audit.jsonl").read_text().splitlines()]
        if any(r.get("route") == "/mcp" and r.get("key_id") == key_id and FORECAST in r.get("doc_ids", [])
               for r in audit):
            break
        time.sleep(0.2)
    else:
        raise AssertionError("the server has no /mcp record of the agent's key")
