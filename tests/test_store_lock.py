"""Store integrity: while one process holds the embedded store, no other process opens it.

Reproduces issue 10 "Store integrity" with real processes: ingest job → ``stitch query --role sales``
(another process) → ingest job. Before the lock, the query process loaded the live shard and the
second job failed with "Tracker journal … is shorter than expected".
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import FIXTURES, ROOT
from tests.test_api_server import _free_port, _wait_ready

STITCH = str(Path(sys.executable).parent / "stitch")
WIKI = str(FIXTURES / "manifests" / "wiki.yaml")


def _run(env, *args) -> subprocess.CompletedProcess:
    return subprocess.run([STITCH, *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)


def _job(url: str, auth: dict) -> dict:
    job_id = httpx.post(f"{url}/v1/ingest/jobs", json={"manifests": [WIKI], "full": True}, headers=auth).json()["job_id"]
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        job = httpx.get(f"{url}/v1/ingest/jobs/{job_id}", headers=auth).json()
        if job["status"] not in ("queued", "running"):
            return job
        time.sleep(0.2)
    raise AssertionError("ingest job never finished")


def _digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and p.suffix != ".lock"}


def _state(data: Path) -> dict[str, str]:
    """The store's files and the ledger/registry SQLite files, by content."""
    sqlite = {name: hashlib.sha256((data / name).read_bytes()).hexdigest()
              for name in ("ledger.sqlite3", "entities.sqlite3") if (data / name).exists()}
    assert "ledger.sqlite3" in sqlite
    return {**_digest(data / "qdrant"), **sqlite}


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    data = tmp_path_factory.mktemp("locked")
    env = {**os.environ, "STITCH_DATA_DIR": str(data), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "STITCH_STORE_LOCK_TIMEOUT": "1", "STITCH_INGEST_ROOTS": json.dumps([str(FIXTURES)])}
    from api.keys import KeyStore

    key = KeyStore(data / "api_keys.json").create(scopes=("context", "ingest"), roles=("*",))
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    process = subprocess.Popen([STITCH, "serve", "--port", str(port)], env=env, cwd=ROOT,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        _wait_ready(url, process)
        auth = {"Authorization": f"Bearer {key}"}
        assert _job(url, auth)["status"] == "succeeded"
        yield url, auth, env, data, process
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)


def test_a_cli_query_beside_serve_leaves_the_store_usable(served):
    url, auth, env, data, _ = served
    result = _run(env, "query", "Q3 revenue forecast", "--role", "sales", "--json")
    assert result.returncode == 0, result.stderr
    assert "FIN-CANARY" not in result.stdout
    job = _job(url, auth)
    assert job["status"] == "succeeded", job["error"]


def test_a_refused_cli_ingest_changes_nothing_and_says_why(served):
    url, auth, env, data, _ = served
    before = _state(data)
    started = time.monotonic()
    result = _run(env, "ingest", WIKI, "--full")
    assert result.returncode == 2, result.stderr
    assert "in use by another Stitch process" in result.stderr and "waited 1" in result.stderr
    assert time.monotonic() - started < 60
    assert _state(data) == before
    job = _job(url, auth)
    assert job["status"] == "succeeded", job["error"]
    assert json.loads(_run(env, "query", "incident runbook", "--role", "engineering", "--json").stdout)["passages"]


def test_the_stopped_server_leaves_a_verified_audit_trail(served):
    url, auth, env, data, process = served
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=30)  # the lifespan flushes queued records before exit
    verified = _run(env, "audit", "verify", "--json")
    assert verified.returncode == 0, verified.stderr
    events = [json.loads(line) for line in _run(env, "audit", "export").stdout.splitlines()]
    assert json.loads(verified.stdout)["records"] == len(events)
    assert {"request", "ingest_job"} <= {e["event"] for e in events}
    assert any(e.get("route") == "/v1/context" and e.get("roles") == ["sales"] for e in events)  # forwarded query


def test_a_second_opener_is_refused_until_the_holder_closes_or_dies(tmp_path):
    from core.errors import StoreError
    from core.store.edge import EdgeStore

    holder = EdgeStore(tmp_path / "edge")
    holder.ensure_collection(4)
    told = []
    with pytest.raises(StoreError, match="in use by another Stitch process"):
        EdgeStore(tmp_path / "edge", lock_timeout=0.2, on_wait=told.append)
    assert told and "waiting up to 0.2 s" in told[0]
    holder.close()
    EdgeStore(tmp_path / "edge").close()  # released on close

    script = ("import sys, time; from pathlib import Path; from core.store.edge import EdgeStore; "
              "held = EdgeStore(Path(sys.argv[1])); print('held', flush=True); time.sleep(120)")
    child = subprocess.Popen([sys.executable, "-c", script, str(tmp_path / "edge")], cwd=ROOT,
                             stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "held"
        with pytest.raises(StoreError):
            EdgeStore(tmp_path / "edge")
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
        EdgeStore(tmp_path / "edge", lock_timeout=5).close()  # the OS dropped the dead holder's lock
    finally:
        child.kill()


@pytest.mark.slow
def test_two_cli_processes_on_one_data_dir_wait_for_each_other(tmp_path):
    """`stitch query` started while `stitch ingest` holds the store waits for it (saying so) and then
    answers from what the ingest wrote, instead of failing."""
    from filelock import FileLock, Timeout

    from core.config import Settings
    from core.store.lock import lock_path_for

    env = {**os.environ, "STITCH_DATA_DIR": str(tmp_path), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "STITCH_STORE_LOCK_TIMEOUT": "300"}  # a loaded CI box may take a minute to ingest the wiki
    ingest = subprocess.Popen([STITCH, "ingest", WIKI, "--json"], env=env, cwd=ROOT, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    lock = FileLock(str(lock_path_for(Settings(data_dir=tmp_path).qdrant_path)), thread_local=False)
    deadline = time.monotonic() + 120
    while True:  # until the ingest holds the store (probing takes the lock for an instant at most)
        assert ingest.poll() is None and time.monotonic() < deadline, "the ingest never took the store"
        try:
            lock.acquire(timeout=0)
            lock.release()
            time.sleep(0.05)
        except Timeout:
            break
    query = _run(env, "query", "Q3 revenue forecast", "--role", "finance", "--json")
    out, err = ingest.communicate(timeout=300)
    assert ingest.returncode == 0, err
    assert query.returncode == 0, query.stderr
    assert "in use by another Stitch process; waiting up to 300 s" in query.stderr
    assert json.loads(query.stdout)["passages"][0]["doc_id"] == "wiki:finance/q3-revenue-forecast.md"
