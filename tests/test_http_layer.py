"""The HTTP layer's fast path (issue 13) keeps every promise of the slow one: the hot routes' bodies are
exactly their response models, no request-path dependency hops to the threadpool, retrieval threads are
bounded with a 503 + Retry-After past the wait limit, metric label caches stay bounded, and the audit
writer batches without losing a record."""

from __future__ import annotations

import asyncio
import inspect
import json
import threading

import anyio
import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from api.app import create_app
from api.keys import KeyStore
from api.metrics import Metrics
from api.offload import Offload
from api.schemas import ContextOut, SearchOut
from core.errors import OverloadedError
from governance.audit import AuditTrail, chain_files


@pytest.fixture(scope="module")
def api(wiki_index):
    services, _ = wiki_index
    key = KeyStore(services.settings.keys_path).create(scopes=("context",), roles=("*",), principals=("*",))
    app = create_app(services.settings, services=services)
    with TestClient(app) as client:
        yield client, {"Authorization": f"Bearer {key}"}, app


@pytest.mark.parametrize("path, model, query, roles", [
    ("/v1/context", ContextOut, "Q3 revenue forecast", ["finance"]),
    ("/v1/context", ContextOut, "parental leave policy", ["hr", "sales"]),
    ("/v1/context", ContextOut, "nothing anyone may see", ["no-such-role"]),
    ("/v1/search", SearchOut, "incident runbook paging", ["engineering"]),
])
def test_hot_route_bodies_are_exactly_their_response_model(api, path, model, query, roles):
    """The routes hand FastAPI bytes instead of a dict to validate: the body must already be the model's
    shape, with no field the model would drop (nothing extra can leak) and none it would add."""
    client, auth, _ = api
    response = client.post(path, headers=auth, json={"query": query, "principal": {"id": "a", "roles": roles}})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert model.model_validate(body).model_dump(mode="json") == body
    assert body["request_id"] == response.headers["x-request-id"]


def _routes(routes):  # FastAPI keeps included routers as wrappers
    for route in routes:
        if type(route).__name__ == "_IncludedRouter":
            yield from _routes(route.original_router.routes)
        else:
            yield route


def _dependencies(dependant):
    for sub in dependant.dependencies:
        yield sub
        yield from _dependencies(sub)


def test_no_request_path_dependency_runs_in_the_threadpool(api):
    """FastAPI runs a plain ``def`` dependency in AnyIO's threadpool: one thread hop per dependency per
    request, queued behind running retrievals at 50 clients. Every /v1 and /metrics dependency is async."""
    _, _, app = api
    routes = [r for r in _routes(app.routes) if isinstance(r, APIRoute) and r.path.startswith(("/v1/", "/metrics"))]
    assert any(r.path == "/v1/context" for r in routes)
    sync = {(r.path, d.call.__name__) for r in routes for d in _dependencies(r.dependant)
            if d.call is not None and not inspect.iscoroutinefunction(d.call)}
    assert not sync


def test_retrieval_threads_are_bounded_and_the_wait_is_refused_past_its_limit():
    offload = Offload(1, max_waiting=1)
    release, running = threading.Event(), threading.Event()

    def blocking() -> str:
        running.set()
        release.wait(10)
        return "done"

    async def scenario() -> tuple:
        async with anyio.create_task_group() as group:
            results = []

            async def call() -> None:
                results.append(await offload.run(blocking))

            group.start_soon(call)  # runs
            await anyio.to_thread.run_sync(running.wait, 10)
            group.start_soon(call)  # waits for the one thread
            await anyio.sleep(0.05)
            with pytest.raises(OverloadedError) as refused:
                await offload.run(blocking)  # past the wait limit: refused at once
            release.set()
        return results, refused.value

    results, refused = asyncio.run(scenario())
    assert results == ["done", "done"]
    assert refused.retry_after >= 1 and "waiting" in str(refused)


def test_retrieval_threads_default_to_one_per_core_this_process_may_use(monkeypatch):
    """0 (the default) sizes the limiter by the CPU affinity, which a container or taskset narrows, not by
    os.cpu_count(); an explicit value is kept."""
    import os

    from core.config import Settings

    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 3, 5}, raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 64)
    assert Settings().request_threads == 0
    assert Offload.from_settings(Settings()).threads == 3
    assert Offload.from_settings(Settings(request_threads=7)).threads == 7


def test_metric_label_caches_stay_bounded_whatever_callers_send():
    metrics = Metrics()
    for n in range(300):
        metrics.observe_request(method=f"M{n}", route="unmatched", status=400 + n % 200, seconds=0.001)
        metrics.observe_stages({f"stage{n}": 1.0})
    assert len(metrics._children) < 64
    text = metrics.render().decode()
    assert 'method="other"' in text and 'stage="other"' in text and "M17" not in text


def test_the_audit_writer_batches_and_loses_nothing(tmp_path, monkeypatch):
    trail = AuditTrail(tmp_path / "audit.jsonl", linger=0.05)
    appends = []
    real_append = trail.append
    monkeypatch.setattr(trail, "append", lambda records: appends.append(1) or real_append(records))

    def writer(n: int) -> None:
        for i in range(100):
            trail.record({"event": "request", "request_id": f"{n}-{i}"})

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    trail.close()
    records = [json.loads(line) for path in chain_files(trail.path) for line in path.read_text().splitlines()]
    assert sorted(r["request_id"] for r in records) == sorted(f"{n}-{i}" for n in range(4) for i in range(100))
    assert [r["seq"] for r in records] == list(range(1, 401))
    assert all(r["prev"] == p["hash"] for p, r in zip(records, records[1:]))
    assert len(appends) < 40  # 400 records in batches, not one lock + fsync each


def test_a_server_stopped_under_load_has_audited_every_request_it_answered(tmp_path):
    """SIGTERM while clients are mid-flight: each response a client got has its record in the chain
    (the writer's batches wait ``linger`` for company; shutdown and exit still flush them)."""
    import os
    import signal
    import subprocess
    from concurrent.futures import ThreadPoolExecutor

    import httpx

    from tests.conftest import ROOT
    from tests.test_api_server import STITCH, _free_port, _run, _wait_ready

    env = {**os.environ, "STITCH_DATA_DIR": str(tmp_path), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    key = KeyStore(tmp_path / "api_keys.json").create(scopes=("context",), roles=("*",), principals=("*",))
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    process = subprocess.Popen([STITCH, "serve", "--port", str(port)], env=env, cwd=ROOT,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    answered, stop = [], threading.Event()

    def client(n: int) -> None:
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=30) as http:
            while not stop.is_set():
                try:
                    response = http.post("/v1/context", json={"query": f"q{n}", "principal": {"id": "a", "roles": ["x"]}})
                except httpx.HTTPError:
                    return  # the server has stopped accepting
                answered.append(response.headers["x-request-id"])

    try:
        _wait_ready(url, process)
        with ThreadPoolExecutor(6) as pool:
            for n in range(6):
                pool.submit(client, n)
            while len(answered) < 30:
                assert process.poll() is None
                stop.wait(0.05)
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=60)
            stop.set()
    finally:
        stop.set()
        if process.poll() is None:
            process.kill()
    verified = _run(env, "audit", "verify", "--json")
    assert verified.returncode == 0, verified.stderr
    recorded = {json.loads(line).get("request_id") for line in _run(env, "audit", "export").stdout.splitlines()}
    assert len(answered) >= 30 and set(answered) <= recorded
