"""Big batches resolve on every core (worker interpreters) with exactly the result of one process."""

from __future__ import annotations

import os
from functools import partial

import pytest

import entity_resolution.parallel as parallel
from entity_resolution.parallel import cores, map_slices
from entity_resolution.records import Mention, nodes_from_mentions
from entity_resolution.resolve import resolve_nodes
from tests.test_entity_prefilter import _mentions

needs_two_cores = pytest.mark.skipif(cores() < 2, reason="one core: map_slices never starts a worker")


def _pid_of_each(items: list[int]) -> list[int]:
    return [os.getpid() for _ in items]


def _fails_outside(items: list[int], parent: int) -> list[int]:
    if os.getpid() != parent:
        raise RuntimeError("worker failure")
    return [i * 2 for i in items]


@needs_two_cores
def test_a_big_batch_is_split_across_processes_in_order():
    pids = map_slices(_pid_of_each, list(range(10)), min_items=2)
    assert len(pids) == 10 and pids[0] == os.getpid()
    assert len(set(pids)) == min(cores(), 10)  # one slice per core, the first computed here
    assert map_slices(_pid_of_each, [1, 2, 3], min_items=10) == [os.getpid()] * 3  # small: no worker


@needs_two_cores
def test_a_failing_worker_is_redone_here():
    assert map_slices(partial(_fails_outside, parent=os.getpid()), list(range(7)), min_items=2) == [i * 2 for i in range(7)]


def _summary(resolution):
    return (
        sorted((e.entity_id, e.name, e.keys, tuple((a, b, s.weight, s.levels) for a, b, s in e.evidence))
               for e in resolution.entities),
        sorted(resolution.key_to_entity.items()), resolution.scored_pairs,
    )


@needs_two_cores
def test_parallel_resolution_equals_one_process(monkeypatch, caplog):
    mentions = _mentions(3) + [Mention("organization", "Acme Corp", attributes=(("email_domain", "acme.com"),)),
                               Mention("organization", "Acme Analytics", attributes=(("email_domain", "acme.com"),))]
    serial = resolve_nodes(nodes_from_mentions(mentions))
    monkeypatch.setattr(parallel, "PARALLEL_MIN_ITEMS", 2)
    calls = []
    monkeypatch.setattr(parallel, "cores", lambda: calls.append(1) or 2)
    with caplog.at_level("WARNING", logger="entity_resolution.parallel"):
        both = resolve_nodes(nodes_from_mentions(mentions))
    assert len(calls) == 5  # keys, block keys, name parts, pair scores, legal forms: each went to a worker
    assert not caplog.records  # no worker failed (a failed slice would be redone here, hiding it)
    assert len(serial.entities) > 50
    assert _summary(both) == _summary(serial)
