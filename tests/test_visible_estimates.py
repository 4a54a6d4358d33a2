"""The engine's filter estimates are kept per filter between requests, and forgotten on every write
(core/store/estimates.py): both engines, real stores."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from core import payload as P
from core.models import SparseVector, StoredChunk
from core.store.estimates import VisibleEstimates
from core.store.protocol import PrefetchSpec
from retrieval.search import SearchPlan


def _chunks(n: int, *, start: int = 0) -> list[StoredChunk]:
    rng = np.random.default_rng(start)
    out = []
    for i in range(start, start + n):
        dense = rng.normal(size=8)
        acl = ["role:big"] + (["role:rare"] if i % 4 == 0 else [])
        payload = {P.DOC_ID: f"d:{i}", P.CHUNK_INDEX: 0, P.SOURCE: "t", P.ACL: acl, P.TEXT: f"chunk {i}",
                   P.ENTITY_IDS: ["ent_a"] if i % 2 else []}
        out.append(StoredChunk(P.chunk_point_id(f"d:{i}", 0, ""), tuple(dense / np.linalg.norm(dense)),
                               SparseVector((1,), (1.0,)), payload))
    return out


class _CountSpy:
    """Stands in for the engine handle (the edge shard or the qdrant client) and counts ``count`` calls."""

    def __init__(self, real: object) -> None:
        self._real, self.calls = real, 0

    def count(self, *args: object, **kwargs: object):  # noqa: ANN201
        self.calls += 1
        return self._real.count(*args, **kwargs)

    def __getattr__(self, name: str):  # noqa: ANN204
        return getattr(self._real, name)


def _spy(store) -> _CountSpy:  # noqa: ANN001
    attr = "_shard" if hasattr(store, "_shard") else "_client"
    spy = _CountSpy(getattr(store, attr))
    setattr(store, attr, spy)
    return spy


def _query(entity_ids: tuple[str, ...] = ()):  # noqa: ANN202
    spec = PrefetchSpec(P.DENSE, tuple((np.ones(8) / np.sqrt(8)).tolist()), 10, entity_ids=entity_ids)
    return SearchPlan().query([spec], limit=10)  # the default plan decides each dense prefetch by estimate


@pytest.mark.parametrize("any_store", ["edge", "server"], indirect=True)
def test_a_principals_estimate_is_asked_once_and_asked_again_after_a_write(any_store):
    any_store.ensure_collection(8)
    any_store.upsert(_chunks(40))
    spy = _spy(any_store)

    first = any_store.search(_query(), acl_tokens=["role:rare"])
    assert spy.calls == 1  # 10 visible: exact scoring, the collection's size is not needed
    again = any_store.search(_query(), acl_tokens=["role:rare"])
    assert spy.calls == 1, "the same filter asked the engine again"
    assert [h.point_id for h in again] == [h.point_id for h in first]

    any_store.search(_query(), acl_tokens=["role:big"])  # another principal's filter
    any_store.search(_query(("ent_a",)), acl_tokens=["role:rare"])  # the same principal narrowed to an entity
    assert spy.calls == 3

    any_store.upsert(_chunks(8, start=40))  # a write: every kept estimate is stale
    after = any_store.search(_query(), acl_tokens=["role:rare"])
    assert spy.calls == 4
    assert len(after) == 10 and all("role:rare" in h.payload[P.ACL] for h in after)

    any_store.delete_document("d:0")
    any_store.search(_query(), acl_tokens=["role:rare"])
    assert spy.calls == 5


def test_estimates_expire_and_stay_bounded():
    now = [0.0]
    estimates = VisibleEstimates(ttl=5.0, size=2, clock=lambda: now[0])
    asked = []

    def count(value: int):  # noqa: ANN202
        return lambda: asked.append(value) or value

    assert estimates.get("a", count(1)) == 1 and estimates.get("a", count(99)) == 1
    now[0] = 5.0  # ttl elapsed: another replica may have written
    assert estimates.get("a", count(2)) == 2
    estimates.get("b", count(3))
    estimates.get("c", count(4))  # "a" is the least recently used of three: dropped
    assert estimates.get("a", count(5)) == 5
    assert asked == [1, 2, 3, 4, 5]


def test_an_estimate_asked_before_a_write_is_not_kept():
    estimates = VisibleEstimates()
    started, release = threading.Event(), threading.Event()

    def slow_count() -> int:
        started.set()
        release.wait(5)
        return 10

    worker = threading.Thread(target=lambda: estimates.get("a", slow_count))
    worker.start()
    started.wait(5)
    estimates.forget()  # a write lands while the engine was still counting
    release.set()
    worker.join(5)
    assert estimates.get("a", lambda: 11) == 11
