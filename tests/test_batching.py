"""Micro-batched query encoding: one model call for concurrent queries, bounded queue → 503 + Retry-After,
and passages (ingest) never queue behind queries or hold queries up. No wall-clock assertions: the
tests hold the fake model still with events and look at what it was asked."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.keys import KeyStore
from api.services import Services
from core.batching import BatchingEncoder
from core.errors import OverloadedError


class GatedEncoder:
    """Records every call; a call blocks while ``gate`` is closed."""

    name, dimension, max_tokens = "gated", 4, 254

    def __init__(self, real=None) -> None:
        self.calls: list[list[str]] = []
        self.threads: list[threading.Thread] = []
        self.gate = threading.Event()
        self.entered = threading.Event()
        self.real = real

    def encode_passages(self, texts):
        self.calls.append(list(texts))
        self.threads.append(threading.current_thread())
        self.entered.set()
        self.gate.wait(30)
        if self.real is not None:
            return self.real.encode_passages(texts)
        if any(t == "boom" for t in texts):
            raise RuntimeError("model failed")
        return np.array([[len(t), 1.0, 0.0, 0.0] for t in texts], dtype=np.float32)

    def count_tokens(self, texts):
        return [len(t.split()) for t in texts]


def _ask(encoder, texts, out):
    threads = [threading.Thread(target=lambda t=t: out.__setitem__(t, _safe(encoder, t))) for t in texts]
    for thread in threads:
        thread.start()
    return threads


def _safe(encoder, text):
    try:
        return encoder.encode_query(text)
    except Exception as exc:  # noqa: BLE001
        return exc


def _wait_queued(batcher, n):
    for _ in range(3000):
        if len(batcher._queue) >= n:
            return
        threading.Event().wait(0.01)
    raise AssertionError(f"never saw {n} queued")


def test_concurrent_queries_share_one_model_call():
    inner = GatedEncoder()
    batcher = BatchingEncoder(inner, window_ms=0, max_batch=32)
    out: dict = {}
    first = _ask(batcher, ["q0"], out)
    assert inner.entered.wait(10)  # q0 is in the model; the next ten arrive meanwhile
    rest = _ask(batcher, [f"query {i}" for i in range(1, 11)], out)
    _wait_queued(batcher, 10)
    inner.gate.set()
    for thread in first + rest:
        thread.join(10)
    assert [len(c) for c in inner.calls] == [1, 10]
    assert (batcher.batches, batcher.queries) == (2, 11)
    for text, vector in out.items():  # each caller gets its own row back
        assert vector[0] == len(text)


def test_a_lone_query_goes_straight_to_the_model():
    """Nothing in flight: the caller's own thread makes the model call, so neither the window (50 ms
    here, the maximum) nor a hand-off to the worker thread is paid; the worker is never even started."""
    inner = GatedEncoder()
    inner.gate.set()
    batcher = BatchingEncoder(inner, window_ms=50)
    assert batcher.encode_query("alone")[0] == len("alone")
    assert batcher.encode_query("alone again")[0] == len("alone again")
    assert inner.calls == [["alone"], ["alone again"]]
    assert inner.threads == [threading.current_thread()] * 2
    assert batcher._worker is None
    assert (batcher.batches, batcher.queries) == (2, 2)


def test_queries_queued_behind_a_lone_one_run_as_one_batch_after_it():
    inner = GatedEncoder()
    batcher = BatchingEncoder(inner, window_ms=0)
    out: dict = {}
    first = _ask(batcher, ["lone"], out)
    assert inner.entered.wait(10)
    rest = _ask(batcher, ["second", "third"], out)
    _wait_queued(batcher, 2)
    assert len(inner.calls) == 1  # the queued two do not start a second model call beside the first
    inner.gate.set()
    for thread in first + rest:
        thread.join(10)
    assert sorted(map(sorted, inner.calls)) == [["lone"], ["second", "third"]]
    assert inner.threads[1] is batcher._worker
    assert all(out[t][0] == len(t) for t in ("lone", "second", "third"))


def test_full_queue_is_refused_at_once_with_a_retry_hint():
    inner = GatedEncoder()
    batcher = BatchingEncoder(inner, window_ms=0, max_queue=2)
    out: dict = {}
    threads = _ask(batcher, ["in the model"], out)
    assert inner.entered.wait(10)
    threads += _ask(batcher, ["waiting 1", "waiting 2"], out)
    _wait_queued(batcher, 2)
    with pytest.raises(OverloadedError) as refused:
        batcher.encode_query("one too many")
    assert refused.value.retry_after >= 1
    inner.gate.set()
    for thread in threads:
        thread.join(10)
    assert all(isinstance(v, np.ndarray) for v in out.values())


def test_a_model_error_reaches_every_caller_of_the_batch():
    inner = GatedEncoder()
    inner.gate.set()
    batcher = BatchingEncoder(inner, window_ms=0)
    with pytest.raises(RuntimeError, match="model failed"):
        batcher.encode_query("boom")
    assert batcher.encode_query("fine")[0] == 4  # the worker survived


def test_passages_bypass_the_query_queue():
    """An ingest batch stuck in the model does not keep a query from being answered."""
    ingest_model = GatedEncoder()
    batcher = BatchingEncoder(ingest_model, window_ms=0)
    ingest = threading.Thread(target=batcher.encode_passages, args=([f"passage {i}" for i in range(64)],))
    ingest.start()
    assert ingest_model.entered.wait(10)
    batcher.inner = GatedEncoder()  # the query side: same wrapper, a model that is free
    batcher.inner.gate.set()
    assert batcher.encode_query("asked during ingest")[0] == len("asked during ingest")
    assert ingest.is_alive()  # the ingest batch is still in the model
    ingest_model.gate.set()
    ingest.join(10)


def test_batched_query_vectors_match_single_ones(encoder):
    """With the real model: a query encoded in a batch of others is (nearly) its single-call vector."""
    texts = ["refund policy for enterprise customers", "parental leave", "incident runbook paging"]
    batcher = BatchingEncoder(encoder, window_ms=0)
    gate = GatedEncoder(real=encoder)
    batcher.inner = gate
    out: dict = {}
    threads = _ask(batcher, texts[:1], out)
    assert gate.entered.wait(10)
    threads += _ask(batcher, texts[1:], out)
    _wait_queued(batcher, 2)
    gate.gate.set()
    for thread in threads:
        thread.join(30)
    assert [len(c) for c in gate.calls] == [1, 2]
    for text in texts:
        assert float(out[text] @ encoder.encode_query(text)) > 0.97  # int8: activation scale is per batch


def test_overload_is_http_503_with_retry_after(wiki_index):
    indexed, _ = wiki_index
    services = Services(indexed.settings)
    inner = GatedEncoder(real=indexed.encoder)
    services.__dict__["encoder"] = BatchingEncoder(inner, window_ms=0, max_queue=1)
    key = KeyStore(indexed.settings.keys_path).create(scopes=("context",), roles=("sales",), principals=("*",))
    inner.gate.set()  # start-up warms the model up
    with TestClient(create_app(indexed.settings, services=services)) as client:
        assert client.post("/v1/context", headers={"Authorization": f"Bearer {key}"},
                           json={"query": "refunds", "principal": {"id": "a", "roles": ["sales"]}}).status_code == 200
        inner.gate.clear()
        inner.entered.clear()
        out: dict = {}
        threads = _ask(services.encoder, ["in the model"], out)
        assert inner.entered.wait(10)
        threads += _ask(services.encoder, ["queued"], out)
        _wait_queued(services.encoder, 1)
        response = client.post("/v1/context", headers={"Authorization": f"Bearer {key}"},
                               json={"query": "refunds", "principal": {"id": "a", "roles": ["sales"]}})
        inner.gate.set()
        for thread in threads:
            thread.join(30)
    assert response.status_code == 503, response.text
    assert int(response.headers["retry-after"]) >= 1
    assert response.json()["error"]["code"] == "overloaded"


def test_a_submitted_query_is_in_the_model_while_the_caller_goes_on():
    """``submit_query`` returns with the model call running on the worker; the result waits for it."""
    inner = GatedEncoder()
    batcher = BatchingEncoder(inner, window_ms=60_000)  # a lone query never waits for company
    result = batcher.submit_query("overlapped")
    assert inner.entered.wait(10)  # in the model, and submit_query has already returned
    assert inner.threads == [batcher._worker]
    inner.gate.set()
    assert result()[0] == len("overlapped")
    assert inner.calls == [["overlapped"]] and (batcher.batches, batcher.queries) == (1, 1)
    with pytest.raises(RuntimeError, match="model failed"):
        batcher.submit_query("boom")()


def test_a_submitted_query_gets_the_vector_encode_query_gives(encoder):
    batcher = BatchingEncoder(encoder, window_ms=0)
    for text in ("refund policy for enterprise customers", "parental leave"):
        assert np.array_equal(batcher.submit_query(text)(), batcher.encode_query(text))


def test_a_context_request_looks_up_entities_while_its_query_is_encoded(wiki_index):
    """The entity lookup (Python) overlaps the model call (which releases the GIL): the lookup sees the
    model already running. Sequential code would look up first and time out waiting here."""
    from dataclasses import replace

    from core.models import Principal
    from retrieval.context import ContextRequest

    indexed, _ = wiki_index
    inner = GatedEncoder(real=indexed.encoder)
    seen: list[bool] = []

    class Lookup:
        def entities_in_query(self, text, *, acl_tokens, fuzzy_cutoff=None):  # noqa: ANN001, ANN201
            seen.append(inner.entered.wait(10))
            inner.gate.set()
            return []

    retriever = replace(indexed.retriever, encoder=BatchingEncoder(inner, window_ms=0), entity_resolver=Lookup())
    pack = retriever.context(ContextRequest("How do refunds work?", Principal(id="a", roles=("sales",))))
    assert seen == [True] and pack.passages
    assert inner.calls == [["How do refunds work?"]]
