"""Blocking: several cheap keys per node so only nodes sharing a key are compared (far below quadratic)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache, partial

import numpy as np

from entity_resolution.normalize import STOPWORDS, acronym
from entity_resolution.parallel import map_slices
from entity_resolution.records import Node


def _phonetic(token: str) -> str:
    """A crude consonant skeleton: survives vowel typos ("acme" / "akme" share little else)."""
    skeleton = token[0] + "".join(c for c in token[1:] if c not in "aeiouyhw")
    return skeleton.replace("k", "c").replace("z", "s")[:4]


def block_keys(node_type: str, key: str, names: Iterable[str]) -> set[str]:
    """Every blocking key of a node; ``names`` is the subset of ``BLOCKING_KEYS`` in use."""
    tokens = key.split()
    if not tokens:
        return set()
    chosen = set(names)
    out: set[str] = set()
    significant = [t for t in tokens if t not in STOPWORDS] or tokens
    if "first_token" in chosen:
        out.add(f"f:{significant[0]}")
    if "sorted_tokens" in chosen:
        out.add("s:" + " ".join(sorted(tokens)))
    if "prefix4" in chosen:
        out.add(f"p:{key.replace(' ', '')[:4]}")
    if "token" in chosen:
        out.update(f"t:{t}" for t in significant if len(t) >= 3)
    if "phonetic_prefix" in chosen:
        out.add("ph:" + " ".join(_phonetic(t) for t in significant[:2]))
    if "acronym" in chosen:
        initials = acronym(key)
        if initials:
            out.add(f"a:{initials}")
        if len(tokens) == 1 and 2 <= len(tokens[0]) <= 6:
            out.add(f"a:{tokens[0]}")  # a short single token may itself be an acronym
    return {f"{node_type}|{k}" for k in out}


@dataclass(frozen=True)
class BlockingReport:
    """How many pairs blocking produced versus the quadratic number."""

    nodes: int
    blocks: int
    oversized_blocks: int
    comparisons: int
    quadratic: int


def candidate_pairs(nodes: list[Node], names: Iterable[str], *, max_block_size: int) -> tuple[list[tuple[int, int]], BlockingReport]:
    """Unique index pairs ``(i, j)``, i < j, sharing at least one key; blocks above ``max_block_size`` are skipped."""
    left, right, report = candidate_pair_arrays(nodes, names, max_block_size=max_block_size)
    return list(zip(left.tolist(), right.tolist())), report


def candidate_pair_arrays(
    nodes: list[Node], names: Iterable[str], *, max_block_size: int
) -> tuple[np.ndarray, np.ndarray, BlockingReport]:
    """The same pairs as two aligned index arrays (no Python tuples: for millions of records).

    Blocks of one size are expanded together as a (blocks × size) member matrix, so the Python loop runs
    over block sizes (≤ ``max_block_size``), not over blocks; duplicates are dropped by one sort."""
    keys_per_node = node_block_keys(nodes, names)
    block_ids: dict[str, int] = {}
    member_block = [block_ids.setdefault(block, len(block_ids)) for keys in keys_per_node for block in keys]
    member_node = np.repeat(np.arange(len(nodes), dtype=np.int64), [len(keys) for keys in keys_per_node])
    n = len(nodes)
    blocks = np.asarray(member_block, dtype=np.int64)
    order = np.argsort(blocks, kind="stable")
    members = member_node[order]  # grouped by block, ascending node index inside
    sizes = np.bincount(blocks, minlength=len(block_ids))
    starts = np.concatenate(([0], np.cumsum(sizes)[:-1])) if len(sizes) else sizes
    chunks = []
    for size in np.unique(sizes[(sizes > 1) & (sizes <= max_block_size)]).tolist():
        first, second = _upper_pairs(size)
        matrix = members[starts[sizes == size][:, None] + np.arange(size)]
        chunks.append((matrix[:, first] * n + matrix[:, second]).ravel())  # first < second: ascending nodes
    codes = _distinct(np.concatenate(chunks)) if chunks else np.zeros(0, dtype=np.int64)
    report = BlockingReport(n, len(block_ids), int(np.sum(sizes > max_block_size)), len(codes), n * (n - 1) // 2)
    return codes // max(n, 1), codes % max(n, 1), report


def node_block_keys(nodes: list[Node], names: Iterable[str]) -> list[tuple[str, ...]]:
    """Every node's blocking keys (on every core for a big batch: it is Python per name)."""
    return map_slices(partial(_block_keys_of, names=tuple(names)), [(node.type, node.key) for node in nodes])


def _block_keys_of(items: Sequence[tuple[str, str]], names: tuple[str, ...]) -> list[tuple[str, ...]]:
    return [tuple(block_keys(node_type, key, names)) for node_type, key in items]


@lru_cache(maxsize=512)
def _upper_pairs(size: int) -> tuple[np.ndarray, np.ndarray]:
    return np.triu_indices(size, k=1)


def _distinct(codes: np.ndarray) -> np.ndarray:
    """Sorted unique values (a plain sort: numpy's hash-based ``unique`` is several times slower here)."""
    codes.sort()
    return codes[np.concatenate(([True], codes[1:] != codes[:-1]))] if len(codes) else codes


def _pairs_within(members: list[int]) -> Iterator[tuple[int, int]]:
    for a in range(len(members)):
        for b in range(a + 1, len(members)):
            yield members[a], members[b]


def pair_completeness(found: set[tuple[int, int]], true_pairs: set[tuple[int, int]]) -> float:
    """Share of true matching pairs that blocking kept (1.0 when there are none)."""
    if not true_pairs:
        return 1.0
    return len(true_pairs & found) / len(true_pairs)
