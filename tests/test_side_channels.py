"""Side channels of the HTTP API: /metrics (scope, bounded labels) and the audit log's records."""

from __future__ import annotations

import json
import random
import string

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.keys import KeyStore

FORECAST = "wiki:finance/q3-revenue-forecast.md"


@pytest.fixture(scope="module")
def api(wiki_index):
    services, _ = wiki_index
    keys = KeyStore(services.settings.keys_path)
    made = {
        "sales": keys.create(scopes=("context",), roles=("sales",), principals=("*",)),
        "finance": keys.create(scopes=("context",), roles=("finance",), principals=("*",)),
        "metrics": keys.create(scopes=("metrics",), roles=()),
        "admin": keys.create(scopes=("admin",), roles=()),
    }
    with TestClient(create_app(services.settings, services=services)) as client:
        yield client, made, services.settings


def _auth(key: str) -> dict:
    return {"Authorization": f"Bearer {key}"}


def test_metrics_need_a_metrics_or_admin_key(api):
    client, keys, _ = api
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers=_auth(keys["sales"])).status_code == 403
    assert client.get("/metrics", headers=_auth(keys["metrics"])).status_code == 200
    assert "stitch_http_requests_total" in client.get("/metrics", headers=_auth(keys["admin"])).text


def test_metric_labels_stay_bounded_whatever_callers_send(api):
    client, keys, _ = api
    rng = random.Random(7)
    warm = ["/v1/context", "/healthz", "/nope"]
    for path in warm:
        client.request("BREW", path)
    before = len(client.get("/metrics", headers=_auth(keys["metrics"])).content)
    for _ in range(1500):
        method = "".join(rng.choices(string.ascii_uppercase, k=rng.randint(3, 12)))
        path = rng.choice([*warm, "/" + "".join(rng.choices(string.ascii_lowercase, k=8))])
        client.request(method, path)
    text = client.get("/metrics", headers=_auth(keys["metrics"])).text
    assert len(text) < before * 1.05, (before, len(text))
    assert 'method="other"' in text and 'route="unmatched"' in text
    methods = {part.split('"')[1] for part in text.split('method=')[1:]}
    assert methods <= {"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "other"}


def test_metrics_say_nothing_about_a_document(api):
    client, keys, _ = api
    body = {"query": "Q3 revenue forecast", "principal": {"id": "s", "roles": ["sales"]}}
    client.post("/v1/context", json=body, headers=_auth(keys["sales"]))
    client.get(f"/v1/documents/{FORECAST}", params={"principal_id": "s"}, headers=_auth(keys["sales"]))
    text = client.get("/metrics", headers=_auth(keys["metrics"])).text
    assert "finance" not in text and "q3-revenue" not in text and "FIN-CANARY" not in text


# --- the audit log: who asked, for whom, what was returned or denied --------------------------------


def _audit_lines(client, settings) -> list[dict]:
    trail = getattr(client.app.state, "audit", None)  # written by a background thread: flush it first
    if trail is not None:
        trail.flush()
    return [json.loads(line) for line in settings.audit_log_path.read_text().splitlines()]


def _audit(client, settings) -> dict[str, dict]:
    """Request records by request id."""
    return {rec["request_id"]: rec for rec in _audit_lines(client, settings) if rec.get("request_id")}


def test_entity_routes_and_denied_reads_are_attributed(api):
    client, keys, settings = api
    listed = client.get("/v1/entities", params={"q": "acme", "principal_id": "fiona", "role": "finance"},
                        headers=_auth(keys["finance"]))
    denied = client.get(f"/v1/documents/{FORECAST}", params={"principal_id": "sam", "role": "sales"},
                        headers=_auth(keys["sales"]))
    assert listed.status_code == 200 and denied.status_code == 404
    records = _audit(client, settings)
    entity = records[listed.headers["x-request-id"]]
    assert entity["principal_id"] == "fiona" and entity["roles"] == ["finance"]
    assert entity["key_id"] == keys["finance"].split("_")[1]
    assert "acme" not in json.dumps(entity) and entity["query_hash"]
    miss = records[denied.headers["x-request-id"]]
    assert miss["status"] == 404 and miss["principal_id"] == "sam"
    assert miss["requested_doc_id"] == FORECAST and miss["doc_ids"] == []


def test_the_query_hash_is_keyed(api):
    import hashlib

    client, keys, settings = api
    query = "how do refunds work for enterprise customers"
    ok = client.post("/v1/context", json={"query": query, "principal": {"id": "s", "roles": ["sales"]}},
                     headers=_auth(keys["sales"]))
    rec = _audit(client, settings)[ok.headers["x-request-id"]]
    assert rec["query_hash"] and rec["query_hash"] != hashlib.sha256(query.encode()).hexdigest()
    assert rec["doc_ids"] and rec["chunk_ids"] and len(rec["content_hashes"]) == len(ok.json()["passages"])


def test_ingest_jobs_are_audited_with_their_id_sources_and_paths(wiki_index, tmp_path):
    from api.jobs import JobRunner
    from tests.conftest import FIXTURES

    services, _ = wiki_index
    settings = services.settings.model_copy(update={"ingest_roots": (FIXTURES,)})  # HTTP ingest is confined
    key = KeyStore(settings.keys_path).create(scopes=("ingest",), roles=())
    wiki = str(FIXTURES / "manifests" / "wiki.yaml")
    jobs = JobRunner(tmp_path / "jobs", lambda *_: {"added": 0})  # the shared index stays untouched
    with TestClient(create_app(settings, services=services, jobs=jobs)) as client:
        accepted = client.post("/v1/ingest/jobs", json={"manifests": [wiki]}, headers=_auth(key))
        job_id = accepted.json()["job_id"]
        for _ in range(100):
            if client.get(f"/v1/ingest/jobs/{job_id}", headers=_auth(key)).json()["status"] == "succeeded":
                break
        lines = _audit_lines(client, settings)
    submitted = {r.get("request_id"): r for r in lines}[accepted.headers["x-request-id"]]
    assert submitted["job_id"] == job_id and submitted["sources"] == ["wiki"] and submitted["paths"] == [wiki]
    finished = [r for r in lines if r.get("event") == "ingest_job" and r.get("job_id") == job_id]
    assert finished and finished[-1]["status"] == "succeeded" and finished[-1]["key_id"] == key.split("_")[1]
