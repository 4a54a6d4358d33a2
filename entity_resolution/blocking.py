"""Blocking: several cheap keys per node so only nodes sharing a key are compared (far below quadratic)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np

from entity_resolution.normalize import STOPWORDS, acronym
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
    """The same pairs as two aligned index arrays (no Python tuples: for millions of records)."""
    names = tuple(names)
    blocks: dict[str, list[int]] = defaultdict(list)
    for index, node in enumerate(nodes):
        for block in block_keys(node.type, node.key, names):
            blocks[block].append(index)
    n = len(nodes)
    chunks, oversized = [], 0
    for members in blocks.values():
        if len(members) > max_block_size:
            oversized += 1
        elif len(members) > 1:
            ids = np.asarray(members, dtype=np.int64)
            first, second = np.triu_indices(len(ids), k=1)
            a, b = ids[first], ids[second]
            chunks.append(np.minimum(a, b) * n + np.maximum(a, b))
    codes = np.unique(np.concatenate(chunks)) if chunks else np.zeros(0, dtype=np.int64)
    report = BlockingReport(n, len(blocks), oversized, len(codes), n * (n - 1) // 2)
    return codes // max(n, 1), codes % max(n, 1), report


def _pairs_within(members: list[int]) -> Iterator[tuple[int, int]]:
    for a in range(len(members)):
        for b in range(a + 1, len(members)):
            yield members[a], members[b]


def pair_completeness(found: set[tuple[int, int]], true_pairs: set[tuple[int, int]]) -> float:
    """Share of true matching pairs that blocking kept (1.0 when there are none)."""
    if not true_pairs:
        return 1.0
    return len(true_pairs & found) / len(true_pairs)
