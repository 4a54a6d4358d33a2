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
        "sales": keys.create(scopes=("context",), roles=("sales",)),
        "finance": keys.create(scopes=("context",), roles=("finance",)),
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
