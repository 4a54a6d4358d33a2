"""A real ``stitch serve`` process: starts, becomes ready, answers every endpoint, and ``stitch query``
forwards to it while it holds the embedded store."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import FIXTURES, ROOT

STITCH = str(Path(sys.executable).parent / "stitch")
WIKI = str(FIXTURES / "manifests" / "wiki.yaml")
FORECAST = "wiki:finance/q3-revenue-forecast.md"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _run(env, *args) -> subprocess.CompletedProcess:
    return subprocess.run([STITCH, *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)


def _wait_ready(url: str, process: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stderr.read()
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise AssertionError("server never became ready")


def _ingest_over_http(url: str, key: str) -> None:
    """The served store starts empty: fill it with an ingest job and wait for the report."""
    auth = {"Authorization": f"Bearer {key}"}
    job_id = httpx.post(f"{url}/v1/ingest/jobs", json={"manifests": [WIKI]}, headers=auth, timeout=60).json()["job_id"]
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        # A poll may wait seconds for the GIL while the job partitions files on a loaded box.
        job = httpx.get(f"{url}/v1/ingest/jobs/{job_id}", headers=auth, timeout=60).json()
        if job["status"] not in ("queued", "running"):
            assert job["status"] == "succeeded" and job["report"]["added"] >= 6, job
            return
        time.sleep(0.2)
    raise AssertionError("ingest job never finished")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    data = tmp_path_factory.mktemp("served")
    env = {**os.environ, "STITCH_DATA_DIR": str(data), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "STITCH_INGEST_ROOTS": json.dumps([str(FIXTURES)])}
    from api.keys import KeyStore

    key = KeyStore(data / "api_keys.json").create(
        scopes=("context", "ingest", "metrics"), roles=("*",), principals=("*",)
    )
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    process = subprocess.Popen([STITCH, "serve", "--port", str(port)], env=env, cwd=ROOT,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _wait_ready(url, process)
        _ingest_over_http(url, key)
        yield url, key, env, data
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
    assert not (data / "server.json").exists()


def test_every_endpoint_answers_on_a_real_server(server):
    url, key, _, _ = server
    auth = {"Authorization": f"Bearer {key}"}
    principal = {"id": "fiona", "roles": ["finance"]}
    with httpx.Client(base_url=url, headers=auth, timeout=30) as http:
        assert http.get("/healthz").json() == {"status": "ok"}
        context = http.post("/v1/context", json={"query": "Q3 revenue forecast", "principal": principal})
        assert context.status_code == 200 and context.json()["passages"][0]["doc_id"] == FORECAST
        assert context.json()["request_id"] == context.headers["x-request-id"]
        search = http.post("/v1/search", json={"query": "incident runbook", "principal": principal})
        assert search.status_code == 200 and search.json()["hits"]
        doc = http.get(f"/v1/documents/{FORECAST}", params={"principal_id": "fiona", "role": "finance"})
        assert doc.status_code == 200 and "FIN-CANARY-7731" in doc.json()["text"]
        job = http.post("/v1/ingest/jobs", json={"manifests": [WIKI]})
        assert job.status_code == 202
        status = http.get(f"/v1/ingest/jobs/{job.json()['job_id']}")
        assert status.status_code == 200 and status.json()["status"] in ("queued", "running", "succeeded")
        entities = http.get("/v1/entities", params={"q": "acme", "principal_id": "fiona", "role": "finance"})
        assert entities.status_code < 500
        assert http.get("/nope").json()["error"]["code"] == "not_found"
        assert 'route="/v1/context",status="200"' in http.get("/metrics").text


def test_cli_query_forwards_to_the_running_server(server):
    url, _, env, data = server
    assert json.loads((data / "server.json").read_text())["url"] == url
    assert (data / "local_api_key").stat().st_mode & 0o777 == 0o600
    result = _run(env, "query", "Q3 revenue forecast", "--role", "finance", "--json")
    assert result.returncode == 0, result.stderr
    pack = json.loads(result.stdout)
    assert pack["passages"][0]["doc_id"] == FORECAST and pack["citations"][0]["id"] == 1
    denied = json.loads(_run(env, "query", "Q3 revenue forecast", "--role", "sales", "--json").stdout)
    assert "FIN-CANARY" not in json.dumps(denied)


def test_cli_tune_runs_inside_the_running_server(server):
    """`stitch tune fit` while `stitch serve` holds the store: the server fits (POST /v1/tune, local key)."""
    url, key, env, data = server
    auth = {"Authorization": f"Bearer {key}"}
    assert httpx.post(f"{url}/v1/tune", json={}, headers=auth, timeout=30).status_code == 403  # needs admin
    result = _run(env, "tune", "fit", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["entity_corrections"] == []
    deadline, served = time.monotonic() + 20, []
    while not served and time.monotonic() < deadline:
        lines = (data / "audit.jsonl").read_text(encoding="utf-8").splitlines() if (data / "audit.jsonl").exists() else []
        served = [r for r in map(json.loads, lines) if r.get("action") == "tune" and r.get("status") == 200]
        time.sleep(0.2)
    assert served, "the fit ran in the server (its audit record), not beside it"
    missing = _run(env, "tune", "revert", "4242")
    assert missing.returncode == 2 and "no entity correction 4242" in missing.stderr
