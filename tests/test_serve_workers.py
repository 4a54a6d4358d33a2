"""``stitch serve`` with worker processes (api.workers): the store host, workers that answer the hot reads,
everything else forwarded to the primary, one audit chain, one metrics view, no orphans."""

from __future__ import annotations

import json
import os
import pickle
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from multiprocessing import AuthenticationError as ChallengeFailed
from multiprocessing.connection import Client
from pathlib import Path

import httpx
import pytest

from core.errors import StoreError
from core.store.protocol import HybridQuery, PrefetchSpec
from core.store.remote import RemoteStore, StoreHost
from tests.test_api_server import _free_port, _ingest_over_http, _wait_ready

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"


@pytest.fixture()
def short_dir():
    """AF_UNIX paths must stay under 108 bytes: pytest's tmp_path can be longer."""
    path = Path(tempfile.mkdtemp(prefix="st-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture()
def hosted(tmp_path, short_dir, encoder):
    """The congruence suite's documents (four ACLs, one visible to nobody) in an embedded store behind a StoreHost."""
    from core.store.edge import EdgeStore
    from tests.test_store_congruence import _chunks

    store = EdgeStore(tmp_path / "shard")
    store.ensure_collection(encoder.dimension)
    store.upsert(_chunks(encoder))
    store.flush()
    key = os.urandom(32)
    host = StoreHost(store, short_dir / "store.sock", key)
    yield store, RemoteStore(short_dir / "store.sock", key), encoder, short_dir / "store.sock", key
    host.close()
    store.close()


def _dense(encoder, text: str, limit: int = 10) -> HybridQuery:
    return HybridQuery((PrefetchSpec("dense", tuple(encoder.encode_query(text)), limit),), limit=limit)


def test_remote_reads_equal_the_store_and_keep_every_acl_filter(hosted):
    store, remote, encoder, _, _ = hosted
    query = _dense(encoder, "revenue forecast")
    for tokens in (("role:finance",), ("role:sales",), ("role:finance", "role:sales"), ()):
        assert remote.search(query, acl_tokens=tokens) == store.search(query, acl_tokens=tokens)
        assert remote.count(acl_tokens=tokens) == store.count(acl_tokens=tokens)
        wanted = {"wiki:forecast": [0], "crm:acme": [0], "wiki:draft": [0]}
        assert remote.fetch_neighbours(wanted, acl_tokens=tokens) == store.fetch_neighbours(wanted, acl_tokens=tokens)
        assert (remote.document_chunks("wiki:forecast", acl_tokens=tokens)
                == store.document_chunks("wiki:forecast", acl_tokens=tokens))
    assert {h.payload["doc_id"] for h in remote.search(query, acl_tokens=("role:finance",))} == {"wiki:forecast"}
    assert remote.search(query, acl_tokens=()) == [], "no tokens, nothing: deny by default across the socket too"
    assert remote.count(acl_tokens=None) == store.count(acl_tokens=None) > 3 and remote.ready()


def test_remote_store_refuses_writes(hosted):
    _, remote, encoder, _, _ = hosted
    with pytest.raises(StoreError, match="does not write"):
        remote.delete_document("wiki:forecast")
    with pytest.raises(StoreError, match="does not write"):
        remote.upsert([])


def test_store_host_refuses_a_client_without_the_key_and_never_unpickles_its_bytes(hosted, tmp_path):
    _, _, _, path, key = hosted
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):  # what a pickle-speaking attacker would send instead of answering the challenge
            return (Path.touch, (marker,))

    payload = pickle.dumps(("search", (Exploit(),), {}))
    with socket.socket(socket.AF_UNIX) as raw:
        raw.connect(str(path))
        raw.settimeout(2)
        for step in (lambda: raw.recv(4096), lambda: raw.sendall(struct.pack("!i", len(payload)) + payload),
                     lambda: raw.recv(4096)):
            try:
                step()
            except OSError:
                pass
    time.sleep(0.3)
    assert not marker.exists(), "bytes from a client that did not pass the challenge were unpickled"
    with pytest.raises(ChallengeFailed):
        Client(str(path), family="AF_UNIX", authkey=os.urandom(32))
    assert RemoteStore(path, key).ready(), "the host still serves clients that know the key"


def test_the_host_maps_store_errors_and_serves_reads_only(hosted):
    store, remote, _, path, key = hosted
    conn = Client(str(path), family="AF_UNIX", authkey=key)
    before = store.count(acl_tokens=None)
    conn.send(("delete_document", ("wiki:forecast",), {}))
    status, kind, message = conn.recv()
    assert (status, kind) == ("error", "StoreError") and "reads only" in message
    conn.close()
    assert store.count(acl_tokens=None) == before, "nothing was deleted"


# -- a real server with two workers --

def _children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid), "-f", "spawn_main"], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


@pytest.fixture(scope="module")
def workers_server(tmp_path_factory):
    from api.keys import KeyStore

    data = tmp_path_factory.mktemp("workers")
    env = {**os.environ, "STITCH_DATA_DIR": str(data), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "STITCH_INGEST_ROOTS": json.dumps([str(FIXTURES)]), "STITCH_SERVE_WORKERS": "2"}
    key = KeyStore(data / "api_keys.json").create(scopes=("context", "ingest", "metrics", "admin"), roles=("*",),
                                                     principals=("*",))
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    process = subprocess.Popen([str(Path(sys.executable).parent / "stitch"), "serve", "--port", str(port)], env=env,
                               cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        _wait_ready(url, process)
        _ingest_over_http(url, key)  # a write: forwarded to the primary, which runs the job
        yield {"url": url, "key": key, "env": env, "data": data, "process": process}
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=60)


def _context(server, roles, query="Q3 revenue forecast") -> httpx.Response:
    return httpx.post(f"{server['url']}/v1/context", json={"query": query, "principal": {"id": "a", "roles": roles}},
                      headers={"Authorization": f"Bearer {server['key']}"}, timeout=60)


def test_workers_answer_reads_with_the_acl_and_forward_everything_else(workers_server):
    server = workers_server
    assert len(_children(server["process"].pid)) == 2
    finance = _context(server, ["finance"]).json()
    assert finance["passages"] and all(p["source"] for p in finance["passages"])
    hidden = _context(server, ["nobody-has-this-role"]).json()  # sees the public pages only
    assert all(p["doc_id"].startswith("wiki:public/") for p in hidden["passages"])
    assert {p["doc_id"] for p in finance["passages"]} - {p["doc_id"] for p in hidden["passages"]}
    auth = {"Authorization": f"Bearer {server['key']}"}
    doc = sorted({p["doc_id"] for p in finance["passages"]} - {p["doc_id"] for p in hidden["passages"]})[0]
    forwarded = httpx.get(f"{server['url']}/v1/documents/{doc}", params={"role": "finance"}, headers=auth, timeout=60)
    assert forwarded.status_code == 200 and forwarded.json()["doc_id"] == doc
    denied = httpx.get(f"{server['url']}/v1/documents/{doc}", params={"role": "nobody-has-this-role"}, headers=auth,
                       timeout=60)
    assert denied.status_code == 404
    assert httpx.get(f"{server['url']}/v1/documents/{doc}", timeout=60).status_code == 401
    request_id = "trace-me-123"
    answer = httpx.get(f"{server['url']}/v1/ingest/jobs/nope", headers={**auth, "X-Request-ID": request_id},
                       timeout=60)
    assert answer.status_code == 404 and answer.headers["x-request-id"] == request_id
    assert answer.json()["error"]["request_id"] == request_id, "the primary answered under the caller's id"
    assert httpx.get(f"{server['url']}/openapi.json", timeout=60).json()["paths"].get("/v1/ingest/jobs")


def test_one_audit_chain_and_one_metrics_view_across_processes(workers_server):
    server = workers_server
    for _ in range(6):
        assert _context(server, ["finance"]).status_code == 200
    auth = {"Authorization": f"Bearer {server['key']}"}
    metrics = httpx.get(f"{server['url']}/metrics", headers=auth, timeout=60).text
    served = sum(float(line.rsplit(" ", 1)[1]) for line in metrics.splitlines()
                 if line.startswith("stitch_http_requests_total{") and 'route="/v1/context"' in line)
    assert served >= 6, "the primary's /metrics sums what the workers served"
    time.sleep(0.5)  # the writers linger 50 ms
    verify = subprocess.run([str(Path(sys.executable).parent / "stitch"), "audit", "verify"], env=server["env"],
                            capture_output=True, text=True, timeout=120)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    records = [json.loads(line) for line in (server["data"] / "audit.jsonl").read_text().splitlines()]
    contexts = [r for r in records if r.get("route") == "/v1/context"]
    assert len(contexts) >= 6 and all(r.get("doc_ids") for r in contexts if r["status"] == 200)
    jobs = [r for r in records if r.get("route") == "/v1/ingest/jobs" and r.get("method") == "POST"]
    assert len(jobs) == 1, "a forwarded request is recorded once (by the primary), not by the worker too"


def test_cli_query_forwards_through_a_worker(workers_server):
    server = workers_server
    out = subprocess.run([str(Path(sys.executable).parent / "stitch"), "query", "Q3 revenue forecast", "--role",
                          "finance", "--json"], env=server["env"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["passages"]


def test_one_callers_cookies_never_reach_another_callers_request(workers_server):
    """The forwarder keeps no cookie jar: a console session cookie set for one caller must not ride along on
    the next forwarded request of someone else."""
    server = workers_server
    with httpx.Client(base_url=server["url"], timeout=60, follow_redirects=False) as steward:
        login = steward.post("/console/login", data={"key": server["key"]})
        assert login.status_code == 303 and "stitch_console" in login.headers.get("set-cookie", "")
        assert steward.get("/console/sources").status_code == 200
    for _ in range(6):  # whichever worker and forwarding connection the stranger lands on
        stranger = httpx.get(f"{server['url']}/console/sources", timeout=60, follow_redirects=False)
        assert stranger.status_code == 303 and stranger.headers["location"].endswith("/console/login")


def test_a_dead_worker_is_replaced_and_workers_leave_with_the_primary(workers_server):
    server = workers_server
    before = _children(server["process"].pid)
    os.kill(before[0], signal.SIGKILL)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        now = _children(server["process"].pid)
        if len(now) == 2 and before[0] not in now:
            break
        time.sleep(0.5)
    assert len(now) == 2 and before[0] not in now
    for _ in range(4):  # whichever process accepts, the answer is right
        assert _context(server, ["finance"]).status_code == 200
    server["process"].send_signal(signal.SIGKILL)
    server["process"].wait(timeout=30)
    def alive(pid: int) -> bool:  # a zombie has exited; only its parent's reaping is left
        try:
            return "zombie" not in Path(f"/proc/{pid}/status").read_text()
        except OSError:
            return False

    deadline = time.monotonic() + 90  # the replacement may still be loading its model on a loaded box
    while time.monotonic() < deadline and any(alive(p) for p in now):
        time.sleep(0.3)
    assert not any(alive(p) for p in now), "workers do not outlive a SIGKILLed primary"


def test_a_worker_runs_two_request_threads_per_core_unless_told(settings):
    """A worker's store calls wait on the primary's socket, not on the GIL: one thread per core (the
    single-process default) left its cores idle (docs/serving.md "Serving processes")."""
    from api.app import create_app
    from api.services import Services
    from api.worker_app import create_worker_app
    from api.workers import WorkerLinks
    from core.config import available_cores

    links = WorkerLinks(primary_http="/nonexistent/p.sock", store="/nonexistent/s.sock", authkey=b"k" * 32,
                        held_keys=(), primary_pid=os.getpid())
    worker = create_worker_app(settings, Services(settings), links)
    assert worker.state.offload.threads == 2 * available_cores()
    assert create_app(settings, services=Services(settings)).state.offload.threads == available_cores()
    pinned = settings.model_copy(update={"request_threads": 3})
    assert create_worker_app(pinned, Services(pinned), links).state.offload.threads == 3
