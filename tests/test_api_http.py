"""The HTTP API as a caller sees it: auth and roles, the error model, request ids, audit log, metrics, jobs."""

from __future__ import annotations

import json
import time

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.keys import KeyStore
from api.services import Services
from core.config import Settings
from tests.conftest import FIXTURES

WIKI = FIXTURES / "manifests" / "wiki.yaml"
FORECAST = "wiki:finance/q3-revenue-forecast.md"


@pytest.fixture(scope="module")
def api(wiki_index):
    services, _ = wiki_index
    keys = KeyStore(services.settings.keys_path)
    made = {
        "sales": keys.create(scopes=("context",), roles=("sales",), principals=("*",)),
        "finance": keys.create(scopes=("context",), roles=("finance", "exec"), principals=("*",)),
        "ingest_only": keys.create(scopes=("ingest",), roles=("*",)),
        "metrics": keys.create(scopes=("metrics",), roles=()),
    }
    with TestClient(create_app(services.settings, services=services)) as client:
        yield client, made, services.settings


def _auth(key):
    return {"Authorization": f"Bearer {key}"}


def _context(client, key, roles, query="Q3 revenue forecast", **extra):
    body = {"query": query, "principal": {"id": "alice", "roles": roles}, "max_tokens": 600, **extra}
    return client.post("/v1/context", headers=_auth(key), json=body)


def _is_error(response, status, code=None):
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"code", "message", "request_id"}
    assert error["request_id"] == response.headers["x-request-id"]
    if code:
        assert error["code"] == code
    return error


def test_auth_failures_use_the_error_model(api):
    client, keys, _ = api
    _is_error(client.post("/v1/context", json={"query": "x", "principal": {"id": "a"}}), 401, "unauthenticated")
    _is_error(_context(client, "stk_abc_def", ["sales"]), 401, "unauthenticated")
    _is_error(_context(client, "not-a-key-at-all", ["sales"]), 401)
    forged = keys["sales"][:-3] + "AAA"
    _is_error(_context(client, forged, ["sales"]), 401)
    error = _is_error(_context(client, keys["sales"], ["sales", "finance"]), 403, "forbidden")
    assert "finance" in error["message"]
    _is_error(_context(client, keys["ingest_only"], ["sales"]), 403, "forbidden")
    assert _context(client, keys["sales"], ["sales"]).status_code == 200


def test_request_id_is_the_same_in_header_body_and_pack(api):
    client, keys, _ = api
    ok = _context(client, keys["finance"], ["finance"])
    assert ok.json()["request_id"] == ok.headers["x-request-id"]
    traced = client.post(
        "/v1/search", headers={**_auth(keys["finance"]), "X-Request-ID": "trace-123"},
        json={"query": "forecast", "principal": {"id": "f", "roles": ["finance"]}},
    )
    assert traced.headers["x-request-id"] == traced.json()["request_id"] == "trace-123"


def test_every_failure_is_a_json_error(api):
    client, keys, settings = api
    _is_error(client.get("/no/such/route"), 404, "not_found")
    _is_error(client.get("/v1/context"), 405, "method_not_allowed")
    bad_json = client.post("/v1/context", headers={**_auth(keys["sales"]), "Content-Type": "application/json"},
                           content=b'{"query": "x", "principal": ')
    _is_error(bad_json, 422, "invalid_request")
    wrong_type = _context(client, keys["sales"], ["sales"], top_k="many")
    assert "top_k" in _is_error(wrong_type, 422)["message"]
    huge = client.post("/v1/context", headers=_auth(keys["sales"]), content=b"x" * (settings.max_request_bytes + 1))
    _is_error(huge, 413, "payload_too_large")

    def chunks():
        for _ in range(settings.max_request_bytes // 1000 + 2):
            yield b"y" * 1000

    streamed = client.post("/v1/context", headers=_auth(keys["sales"]), content=chunks())
    _is_error(streamed, 413, "payload_too_large")


def test_audit_log_records_who_and_what_but_never_secrets(api):
    client, keys, settings = api
    secret_query = "what is the Q3 revenue forecast number"
    ok = _context(client, keys["finance"], ["finance"], query=secret_query)
    denied = _context(client, keys["sales"], ["finance"], query=secret_query)
    client.app.state.audit.flush()  # records are written by a background thread
    lines = [json.loads(line) for line in settings.audit_log_path.read_text().splitlines()]
    by_id = {rec.get("request_id"): rec for rec in lines}
    rec = by_id[ok.headers["x-request-id"]]
    assert rec["status"] == 200 and rec["route"] == "/v1/context" and rec["principal_id"] == "alice"
    assert rec["roles"] == ["finance"] and FORECAST in rec["doc_ids"] and rec["latency_ms"] > 0
    assert rec["key_id"] == keys["finance"].split("_")[1] and len(rec["query_hash"]) == 64
    assert by_id[denied.headers["x-request-id"]]["status"] == 403
    raw = settings.audit_log_path.read_text()
    assert secret_query not in raw and "14.2 million" not in raw
    assert all(key not in raw for key in keys.values())
    stored = settings.keys_path.read_text()
    assert all(key not in stored and key.split("_")[1] in stored for key in keys.values())  # hashed at rest


def test_an_unexpected_failure_is_a_json_500_without_details(api, wiki_index):
    from api.deps import get_services

    client, keys, _ = api

    class Broken:
        class retriever:  # noqa: N801 - stands in for the Retriever attribute
            @staticmethod
            def context(_request):
                raise RuntimeError("disk on fire at /secret/path")

    client.app.dependency_overrides[get_services] = lambda: Broken()
    try:
        response = _context(client, keys["finance"], ["finance"])
    finally:
        client.app.dependency_overrides.clear()
    error = _is_error(response, 500, "internal_error")
    assert "secret" not in response.text and error["message"] == "internal error"


def test_metrics_count_requests_by_route_template_and_stage(api):
    client, keys, _ = api
    _context(client, keys["finance"], ["finance"])
    client.get(f"/v1/documents/{FORECAST}", params={"principal_id": "f", "role": ["finance"]},
               headers=_auth(keys["finance"]))
    text = client.get("/metrics", headers=_auth(keys["metrics"])).text
    assert 'route="/v1/context",status="200"' in text
    assert 'route="/v1/documents/{doc_id:path}"' in text and FORECAST not in text
    assert 'stitch_context_stage_seconds_count{stage="embed"}' in text
    assert "stitch_ingest_jobs_pending" in text


def test_health_and_readiness(api):
    client, _, _ = api
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["checks"] == {"model": True, "store": True}


def test_openapi_documents_every_endpoint_with_examples(api):
    client, _, _ = api
    schema = client.get("/openapi.json").json()
    paths = schema["paths"]
    for path in ("/v1/context", "/v1/search", "/v1/documents/{doc_id}", "/v1/ingest/jobs",
                 "/v1/ingest/jobs/{job_id}", "/healthz", "/readyz", "/metrics"):
        assert path in paths, path
    for name in ("ContextIn", "ContextOut", "SearchIn", "IngestJobIn", "IngestJobOut", "ErrorOut", "DocumentOut"):
        assert schema["components"]["schemas"][name].get("examples"), name


def test_openapi_declares_the_service_key_and_the_user_token(api):
    """Generated clients must know both credentials: the key everywhere under /v1, and the end
    user's token (in the configured header) exactly where a route reads for a principal."""
    client, _, _ = api
    schema = client.get("/openapi.json").json()
    schemes = schema["components"]["securitySchemes"]
    assert schemes["serviceKey"] == {**schemes["serviceKey"], "type": "http", "scheme": "bearer"}
    assert schemes["userToken"]["in"] == "header" and schemes["userToken"]["name"] == "X-Stitch-User-Token"
    security = {(path, method): op.get("security") for path, ops in schema["paths"].items()
                for method, op in ops.items()}
    with_token = [{"serviceKey": []}, {"serviceKey": [], "userToken": []}]
    for read in (("/v1/context", "post"), ("/v1/search", "post"), ("/v1/documents/{doc_id}", "get"),
                 ("/v1/entities", "get"), ("/v1/feedback", "post")):
        assert security[read] == with_token, read
    assert security[("/v1/ingest/jobs", "post")] == [{"serviceKey": []}]
    assert security[("/metrics", "get")] == [{"serviceKey": []}]
    assert security[("/healthz", "get")] is None


# --- ingest jobs: a store of their own, so the shared wiki index stays read-only ---------------------


@pytest.fixture()
def jobs_api(tmp_path, encoder):
    settings = Settings(data_dir=tmp_path / "data", ingest_roots=(FIXTURES, tmp_path))
    services = Services(settings)
    services.__dict__["encoder"] = encoder
    keys = KeyStore(settings.keys_path)
    ingest_key = keys.create(scopes=("ingest",), roles=())
    context_key = keys.create(scopes=("context",), roles=("*",), principals=("*",))
    with TestClient(create_app(settings, services=services)) as client:
        yield client, ingest_key, context_key, settings
    services.store.close()


def _wait(client, key, job_id, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = client.get(f"/v1/ingest/jobs/{job_id}", headers=_auth(key)).json()
        if body["status"] in ("succeeded", "failed", "interrupted"):
            return body
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} did not finish")


def test_ingest_job_runs_in_background_and_reports(jobs_api):
    client, ingest_key, context_key, settings = jobs_api
    first = client.post("/v1/ingest/jobs", headers=_auth(ingest_key), json={"manifests": [str(WIKI)]})
    second = client.post("/v1/ingest/jobs", headers=_auth(ingest_key), json={"manifests": [str(WIKI)]})
    assert first.status_code == second.status_code == 202
    done = _wait(client, ingest_key, first.json()["job_id"])
    report = done["report"]
    assert done["status"] == "succeeded" and report["added"] >= 6 and report["invisible"] >= 1
    assert done["progress"]["documents"] >= report["added"] and done["progress"]["chunks"] >= report["added"]
    queued_behind = _wait(client, ingest_key, second.json()["job_id"])
    assert queued_behind["report"]["unchanged"] == report["added"] and queued_behind["started_at"] >= done["finished_at"]
    saved = json.loads((settings.data_dir / "jobs" / f"{done['job_id']}.json").read_text())
    assert saved["status"] == "succeeded"
    found = _context(client, context_key, ["finance"])
    assert found.json()["passages"][0]["doc_id"] == FORECAST
    metrics_key = KeyStore(settings.keys_path).create(scopes=("metrics",), roles=())
    assert 'stitch_ingest_jobs_total{status="succeeded"} 2.0' in client.get("/metrics", headers=_auth(metrics_key)).text


def test_ingest_job_validation_and_scope(jobs_api, tmp_path):
    client, ingest_key, context_key, _ = jobs_api
    _is_error(client.post("/v1/ingest/jobs", headers=_auth(context_key), json={"manifests": [str(WIKI)]}), 403)
    missing = client.post("/v1/ingest/jobs", headers=_auth(ingest_key), json={"manifests": ["manifests/nope.yaml"]})
    assert _is_error(missing, 400, "invalid_manifest")["message"] == "manifests/nope.yaml: manifest not found"
    both = {"manifests": [str(WIKI)], "manifest": {"source": "wiki"}}
    _is_error(client.post("/v1/ingest/jobs", headers=_auth(ingest_key), json=both), 422)
    inline = {"manifest": {"source": "wiki", "kind": "files", "path": str(tmp_path), "colour": "red"}}
    bad = client.post("/v1/ingest/jobs", headers=_auth(ingest_key), json=inline)
    assert "colour" in _is_error(bad, 400, "invalid_manifest")["message"]
    folder = FIXTURES / "manifests" / "wiki"
    good = {"manifest": {"source": "wiki", "kind": "files", "path": str(folder), "include": ["**/*.md"],
                         "acl": {"default": ["sales"]}}}
    accepted = client.post("/v1/ingest/jobs", headers=_auth(ingest_key), json=good)
    assert accepted.status_code == 202
    assert _wait(client, ingest_key, accepted.json()["job_id"])["report"]["added"] >= 5
    _is_error(client.get("/v1/ingest/jobs/job_" + "0" * 32, headers=_auth(ingest_key)), 404, "not_found")
    _is_error(client.get("/v1/ingest/jobs/..%2Fapi_keys", headers=_auth(ingest_key)), 404)


def test_job_status_survives_a_restart(tmp_path):
    from api.jobs import JobRunner

    jobs_dir = tmp_path / "jobs"
    stuck = JobRunner(jobs_dir, lambda *_: {})
    jobs_dir.mkdir()
    job = stuck.submit([], full=False, key_id=None)  # never started: the process "died"
    restarted = JobRunner(jobs_dir, lambda *_: {})
    restarted.start()
    state = restarted.get(job.job_id)
    restarted.stop()
    assert state.status == "interrupted" and "submit it again" in state.error
