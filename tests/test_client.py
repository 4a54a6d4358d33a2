"""The Python client and the LlamaIndex retriever against a real ``stitch serve``; retries and Retry-After
against a scripted transport (a real server cannot be made to answer 503 on demand)."""

from __future__ import annotations

import email.utils
import json
import time

import httpx
import pytest

from stitch_client import (
    AuthenticationError,
    InvalidRequestError,
    NotFoundError,
    PermissionDeniedError,
    StitchClient,
    TransportError,
    UnavailableError,
)
from stitch_client.client import retry_after_seconds

FORECAST = "wiki:finance/q3-revenue-forecast.md"


@pytest.fixture(scope="module")
def client(stitch_server):
    with StitchClient(stitch_server["url"], stitch_server["key"], timeout=60) as c:
        yield c


@pytest.mark.slow
def test_context_search_document_and_entities(client):
    pack = client.context("Q3 revenue forecast", principal_id="fiona", roles=["finance"], max_tokens=500)
    assert pack.passages[0].doc_id == FORECAST and pack.citations[0].id == 1 and "[1]" in pack.context
    assert pack.index_as_of and pack.filtered_for["roles"] == ["finance"] and pack.request_id
    hits = client.search("incident runbook", principal_id="e", roles=["engineering"], top_k=3)
    assert 1 <= len(hits) <= 3 and hits[0].rank == 1
    assert "FIN-CANARY-7731" in client.document(FORECAST, principal_id="fiona", roles=["finance"]).text
    assert isinstance(client.entities("", principal_id="s", roles=["sales"]), list)


@pytest.mark.slow
def test_the_error_model_becomes_exceptions(client, stitch_server):
    with pytest.raises(NotFoundError) as hidden:
        client.document(FORECAST, principal_id="sam", roles=["sales"])
    assert hidden.value.status == 404 and hidden.value.code == "not_found" and hidden.value.request_id
    with pytest.raises(InvalidRequestError) as unknown:
        client.context("forecast", principal_id="f", roles=["finance"], sources=["no-such-source"])
    assert "filters.sources" in unknown.value.message
    with StitchClient(stitch_server["url"], "stk_nope_nope") as bad, pytest.raises(AuthenticationError):
        bad.context("x", principal_id="a")
    from api.keys import KeyStore

    sales_only = KeyStore(stitch_server["data"] / "api_keys.json").create(scopes=("context",), roles=("sales",),
                                                                       principals=("*",))
    with StitchClient(stitch_server["url"], sales_only) as narrow, pytest.raises(PermissionDeniedError) as denied:
        narrow.context("x", principal_id="a", roles=["finance"])
    assert "finance" in str(denied.value)


@pytest.mark.slow
def test_llama_index_retriever_and_query_engine(client):
    from llama_index.core.llms import MockLLM
    from llama_index.core.query_engine import RetrieverQueryEngine

    from stitch_client.llama_index import StitchRetriever

    retriever = StitchRetriever(client, principal_id="fiona", roles=["finance"], max_tokens=600)
    nodes = retriever.retrieve("Q3 revenue forecast")
    assert nodes[0].node.metadata["doc_id"] == FORECAST and nodes[0].node.metadata["citation"] == 1
    assert nodes[0].score == retriever.last_pack.passages[0].score and nodes[0].node.metadata["request_id"]
    assert "doc_id" not in nodes[0].node.get_content(metadata_mode="llm")  # ids are for citing, not prompting
    response = RetrieverQueryEngine.from_args(retriever, llm=MockLLM()).query("Q3 revenue forecast")
    assert response.source_nodes[0].node.metadata["doc_id"] == FORECAST
    sales = StitchRetriever(client, principal_id="sam", roles=["sales"]).retrieve("Q3 revenue forecast")
    assert all("FIN-CANARY" not in n.node.get_content() for n in sales)


class _Script(httpx.BaseTransport):
    """Answers with the scripted responses in order, recording each request."""

    def __init__(self, *responses):
        self.responses, self.seen = list(responses), []

    def handle_request(self, request):
        self.seen.append(request)
        item = self.responses.pop(0)
        if isinstance(item, Exception):
            raise item
        return item


def _pack():
    return httpx.Response(200, json={"request_id": "r", "context": "", "passages": [], "citations": [],
                                     "entities": [], "usage": {}, "timings_ms": {}, "new_field": 1})


def _busy(status=503, retry_after=None):
    headers = {"Retry-After": retry_after} if retry_after is not None else {}
    return httpx.Response(status, headers=headers,
                          json={"error": {"code": "unavailable", "message": "busy", "request_id": "q"}})


def test_retries_honour_retry_after_then_succeed():
    sleeps = []
    script = _Script(_busy(503, "2"), _busy(429, "0"), _pack())
    client = StitchClient("http://stitch", "stk_a_b", transport=script, sleep=sleeps.append)
    assert client.context("q", principal_id="a").request_id == "r"
    assert sleeps == [2.0, 0.0] and len(script.seen) == 3
    assert json.loads(script.seen[0].content)["principal"] == {"id": "a", "roles": []}
    assert script.seen[0].headers["authorization"] == "Bearer stk_a_b"


def test_backoff_without_retry_after_grows_and_gives_up():
    sleeps = []
    client = StitchClient("http://stitch", "k", transport=_Script(*[_busy()] * 4), sleep=sleeps.append,
                          max_retries=3, backoff=1.0, max_backoff=3.0)
    with pytest.raises(UnavailableError) as gave_up:
        client.search("q", principal_id="a")
    assert gave_up.value.status == 503 and gave_up.value.request_id == "q"
    assert len(sleeps) == 3 and 0.5 <= sleeps[0] <= 1.0 and 1.0 <= sleeps[1] <= 2.0 and 1.5 <= sleeps[2] <= 3.0


def test_connection_failures_are_retried_then_raised():
    sleeps = []
    failing = _Script(httpx.ConnectError("refused"), httpx.ConnectError("refused"))
    client = StitchClient("http://stitch", "k", transport=failing, sleep=sleeps.append, max_retries=1)
    with pytest.raises(TransportError):
        client.context("q", principal_id="a")
    assert len(sleeps) == 1
    ok = StitchClient("http://stitch", "k", transport=_Script(httpx.ReadTimeout("slow"), _pack()), sleep=sleeps.append)
    assert ok.context("q", principal_id="a").passages == []


def test_other_errors_are_not_retried():
    script = _Script(httpx.Response(422, json={"error": {"code": "invalid_request", "message": "query: too long",
                                                         "request_id": "z"}}))
    client = StitchClient("http://stitch", "k", transport=script, sleep=lambda s: pytest.fail("slept"))
    with pytest.raises(InvalidRequestError, match="query: too long"):
        client.context("q", principal_id="a")
    assert len(script.seen) == 1


def test_retry_after_accepts_seconds_and_http_dates():
    now = time.time()
    assert retry_after_seconds("7") == 7.0
    assert 29 <= retry_after_seconds(email.utils.formatdate(now + 30, usegmt=True), now=now) <= 31
    assert retry_after_seconds("soon") is None and retry_after_seconds(None) is None


def test_the_client_models_name_only_what_the_server_schemas_send():
    """stitch_client mirrors api/schemas instead of importing them (the client installs and runs without the
    server's packages: tests/test_architecture.py), so this keeps the mirror honest: every field a client
    model reads is one its server response model has (the server sends every field; the client ignores the
    ones it does not know)."""
    from dataclasses import fields

    import api.schemas as s
    import stitch_client.models as m
    from api.routes.entities import EntityDetailOut

    mirrors = {m.Citation: s.CitationOut, m.Passage: s.PassageOut, m.ContextPack: s.ContextOut,
               m.SearchHit: s.SearchHitOut, m.Document: s.DocumentOut, m.Entity: EntityDetailOut}
    unknown = [f"{model.__name__}.{field.name}" for model, schema in mirrors.items() for field in fields(model)
               if field.name not in schema.model_fields]
    assert not unknown, f"the server's response models have no {unknown}"
