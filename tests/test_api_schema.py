"""Schema-driven fuzzing (schemathesis, in-process ASGI): no generated request, valid or not, gets a 5xx,
and every 4xx uses the error model. Ingest jobs go to a no-op runner so nothing is written."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

from api.app import create_app
from api.jobs import JobRunner
from api.keys import KeyStore


@pytest.fixture(scope="module")
def fuzz_target(wiki_index, tmp_path_factory):
    services, _ = wiki_index
    key = KeyStore(services.settings.keys_path).create(scopes=("context", "ingest"), roles=("*",), principals=("*",))
    jobs = JobRunner(tmp_path_factory.mktemp("fuzz-jobs"), lambda *_: {})
    app = create_app(services.settings, services=services, jobs=jobs)
    jobs.start()
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    yield schema, {"Authorization": f"Bearer {key}"}
    jobs.stop()


def _operations(schema):
    for result in schema.get_all_operations():
        yield result.ok()


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_no_generated_request_gets_a_server_error(fuzz_target, mode):
    schema, auth = fuzz_target
    seen = []
    for operation in _operations(schema):

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def check(case):
            response = case.call(headers=auth)
            assert response.status_code < 500, (case.method, case.formatted_path, response.text[:500])
            if response.status_code >= 400:
                error = response.json()["error"]
                assert error["code"] and error["message"]
                header = response.headers["x-request-id"]
                assert error["request_id"] == (header[0] if isinstance(header, list) else header)

        try:
            check()
        except Unsatisfiable:  # no way to make e.g. GET /healthz's (empty) input invalid
            assert mode is GenerationMode.NEGATIVE, operation.label
            continue
        seen.append(operation.label)
    assert "POST /v1/context" in seen and "POST /v1/ingest/jobs" in seen
