"""Keys that exist for one process: the `local-cli` key of `stitch serve` and the key `stitch demo` prints
live in that process's memory (and the 0600 announce file), never in the keys file, so they die with it —
also when it is SIGKILLed — and demos do not pile up any-role keys."""

from __future__ import annotations

import json
import os
import signal
import subprocess

import httpx
import pytest
from fastapi.testclient import TestClient

from api.keys import KeyStore
from core.config import Settings
from core.errors import AuthenticationError
from tests.test_api_server import STITCH, _free_port, _wait_ready
from tests.conftest import ROOT


def _serve(data, keys_file):
    env = {**os.environ, "STITCH_DATA_DIR": str(data), "STITCH_API_KEYS_FILE": str(keys_file),
           "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    port = _free_port()
    process = subprocess.Popen([STITCH, "serve", "--port", str(port)], env=env, cwd=ROOT,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    _wait_ready(url, process)
    return process, url


def _context(url, key):
    body = {"query": "anything", "principal": {"id": "cli", "roles": ["sales"]}}
    return httpx.post(f"{url}/v1/context", json=body, headers={"Authorization": f"Bearer {key}"}, timeout=60)


def test_the_local_cli_key_dies_with_a_killed_server(tmp_path):
    data, keys_file = tmp_path / "data", tmp_path / "keys" / "api_keys.json"
    KeyStore(keys_file).create(scopes=("context",), roles=("*",), name="local-cli")  # left by an old version
    first, url = _serve(data, keys_file)
    try:
        local_key = (data / "local_api_key").read_text().strip()
        assert _context(url, local_key).status_code == 200
        assert "local-cli" not in keys_file.read_text()  # neither written nor left over
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
    with pytest.raises(AuthenticationError):
        KeyStore(keys_file).authenticate(local_key)  # any process serving this keys file refuses it
    from api.serving import running_server

    assert running_server(Settings(data_dir=data, api_keys_file=keys_file)) is None
    second, url = _serve(data, keys_file)
    try:
        assert _context(url, local_key).status_code == 401
        fresh = (data / "local_api_key").read_text().strip()
        assert fresh != local_key and _context(url, fresh).status_code == 200
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(timeout=30)
    assert not (data / "local_api_key").exists() and not (data / "server.json").exists()


@pytest.fixture()
def tiny_fixtures(tmp_path):
    folder = tmp_path / "manifests"
    (folder / "docs").mkdir(parents=True)
    (folder / "docs" / "a.md").write_text("# Refunds\n\nEnterprise refunds take 30 days.\n")
    (folder / "docs.yaml").write_text(
        "source: docs\nkind: files\npath: docs\ninclude: ['**/*.md']\n"
        "acl:\n  default: [sales, exec]\n  rules:\n    - match: 'hr/**'\n      roles: [hr]\n"
    )
    return folder


def test_demo_keys_are_ephemeral_scoped_and_not_accumulated(tmp_path, tiny_fixtures):
    from api.app import create_app
    from api.commands import prepare_demo

    settings = Settings(data_dir=tmp_path / "data")
    KeyStore(settings.keys_path).create(scopes=("context",), roles=("*",), name="demo")  # an old demo's key
    keep = KeyStore(settings.keys_path).create(scopes=("context",), roles=("sales",), name="crm-bot")
    made = [prepare_demo(settings, tiny_fixtures, host="127.0.0.1", port=8000) for _ in range(2)]
    stored = json.loads(settings.keys_path.read_text())["keys"]
    assert [k["name"] for k in stored] == ["crm-bot"]  # nothing added, the stale any-role demo key gone
    (banner, plaintext, key), (_, second_plaintext, _) = made
    assert plaintext in banner and plaintext != second_plaintext
    assert key.scopes == ("context",) and set(key.roles) == {"sales", "exec", "hr"} and key.principals == ()
    with TestClient(create_app(settings)) as client:
        client.app.state.key_store.hold(key)
        body = {"query": "refunds", "principal": {"roles": ["sales"]}}
        ok = client.post("/v1/context", json=body, headers={"Authorization": f"Bearer {plaintext}"})
        assert ok.status_code == 200 and ok.json()["passages"]
        wider = {"query": "refunds", "principal": {"roles": ["finance"]}}
        assert client.post("/v1/context", json=wider, headers={"Authorization": f"Bearer {plaintext}"}).status_code == 403
        stale = client.post("/v1/context", json=body, headers={"Authorization": f"Bearer {second_plaintext}"})
        assert stale.status_code == 401  # held only by the process it was made for
    assert KeyStore(settings.keys_path).authenticate(keep).name == "crm-bot"
