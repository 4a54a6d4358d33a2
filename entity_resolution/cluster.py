"""Clustering that resists chaining: merge in descending weight order only if every cross pair agrees.

A~B and B~C link A and C only when A and C themselves score at least ``cluster_min_weight`` and no
steward never-link rule separates them. Steward must-link rules are applied first and always win.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Constraints:
    """Steward rules as node-index pairs."""

    must_link: tuple[tuple[int, int], ...] = ()
    cannot_link: tuple[tuple[int, int], ...] = ()


class _Clusters:
    def __init__(self, size: int) -> None:
        self.parent = list(range(size))
        self.members: dict[int, list[int]] = {i: [i] for i in range(size)}

    def find(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def union(self, a: int, b: int) -> int:
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return ra
        if len(self.members[ra]) < len(self.members[rb]):
            ra, rb = rb, ra
        self.parent[rb] = ra
        self.members[ra].extend(self.members.pop(rb))
        return ra


def cluster_nodes(
    size: int,
    edges: Iterable[tuple[int, int, float]],
    pair_weight: Callable[[int, int], float],
    *,
    match_weight: float,
    min_weight: float,
    constraints: Constraints = Constraints(),
    max_checks: int = 2500,
) -> list[list[int]]:
    """Clusters (lists of node indexes, each sorted) from scored candidate edges.

    ``pair_weight`` scores any two nodes on demand (cross pairs blocking never compared); merges that
    would need more than ``max_checks`` cross comparisons are refused rather than guessed.
    """
    clusters = _Clusters(size)
    forbidden = {frozenset(p) for p in constraints.cannot_link}
    for a, b in constraints.must_link:
        clusters.union(a, b)
    cache: dict[tuple[int, int], float] = {}
    for a, b, weight in sorted(edges, key=lambda e: (-e[2], e[0], e[1])):
        cache[(min(a, b), max(a, b))] = weight
        if weight < match_weight:
            continue
        ra, rb = clusters.find(a), clusters.find(b)
        if ra == rb:
            continue
        if _compatible(clusters.members[ra], clusters.members[rb], pair_weight, cache, forbidden, min_weight, max_checks):
            clusters.union(ra, rb)
    return sorted(sorted(m) for m in clusters.members.values())


def _compatible(
    left: list[int], right: list[int], pair_weight: Callable[[int, int], float],
    cache: dict[tuple[int, int], float], forbidden: set[frozenset[int]], min_weight: float, max_checks: int,
) -> bool:
    if len(left) * len(right) > max_checks:
        return False
    for x in left:
        for y in right:
            if frozenset((x, y)) in forbidden:
                return False
            key = (min(x, y), max(x, y))
            if key not in cache:
                cache[key] = pair_weight(*key)
            if cache[key] < min_weight:
                return False
    return True
