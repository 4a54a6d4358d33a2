"""Batch resolution: mentions → nodes → blocking → scoring → anti-chaining clusters → stable entities."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial

import numpy as np

from entity_resolution.blocking import BlockingReport, candidate_pair_arrays
from entity_resolution.cluster import Constraints, cluster_nodes
from entity_resolution.compare import PairScore, cluster_weight, score_nodes
from entity_resolution.normalize import LEGAL_SUFFIXES, name_tokens, normalize_name
from entity_resolution.parallel import map_slices
from entity_resolution.people import display_name
from entity_resolution.prefilter import worth_scoring
from entity_resolution.records import Mention, Node, nodes_from_mentions
from entity_resolution.settings import DEFAULT_SETTINGS, ResolutionSettings


@dataclass(frozen=True)
class ResolvedEntity:
    """One cluster: stable id, canonical name, its normalised keys and the evidence of its merges."""

    entity_id: str
    type: str
    name: str
    canonical_key: str
    keys: tuple[str, ...]
    evidence: tuple[tuple[str, str, PairScore], ...] = ()


@dataclass(frozen=True)
class Resolution:
    """The result of one batch run plus its blocking statistics."""

    entities: tuple[ResolvedEntity, ...]
    key_to_entity: dict[tuple[str, str], str]
    blocking: BlockingReport
    scored_pairs: int


def entity_id_for(entity_type: str, canonical_key: str) -> str:
    """Stable id from the type and the cluster's earliest normalised key."""
    digest = hashlib.sha1(f"{entity_type}\x1f{canonical_key}".encode()).hexdigest()[:16]
    return f"ent_{digest}"


def canonical_name(surfaces: dict[str, int], entity_type: str = "organization", keys: dict[str, str] | None = None) -> str:
    """The authoritative surface: from the spelling most surfaces agree on (a typo has its own key and little
    support), preferring a legal name ("Umbrella Logistics GmbH") in mixed case, then the most frequent;
    ties → the earliest seen (``surfaces`` is in first-seen order, counts weigh record fields over text).
    A person is shown by a display name, never an address or a Notes name (``people.display_name``).
    ``keys`` (surface → normalised key) saves re-normalising surfaces whose node the caller knows."""
    if entity_type == "person":
        return display_name(surfaces)
    keys = keys if keys is not None else {surface: normalize_name(surface) for surface in surfaces}
    support: dict[str, int] = {}
    for surface, count in surfaces.items():
        support[keys[surface]] = support.get(keys[surface], 0) + count
    best = max(support.values())
    candidates = [(i, item) for i, item in enumerate(surfaces.items()) if support[keys[item[0]]] == best]
    if len(candidates) == 1:
        return candidates[0][1][0]

    def rank(item: tuple[int, tuple[str, int]]) -> tuple:
        index, (surface, count) = item
        written_legal = has_legal_form(surface)
        mixed = surface != surface.upper() and surface != surface.lower()
        return (-written_legal, -mixed, -count, index)

    return min(candidates, key=rank)[1][0]


def has_legal_form(surface: str) -> bool:
    """The surface writes a legal form ("GmbH", "Inc.", "S.A.")."""
    return any(t in LEGAL_SUFFIXES for t in name_tokens(surface, drop_legal=False))


def resolve_nodes(
    nodes: list[Node], settings: ResolutionSettings = DEFAULT_SETTINGS, *, constraints: Constraints = Constraints()
) -> Resolution:
    """Cluster nodes; types never mix because every blocking key is prefixed by the type."""
    left, right, report = candidate_pair_arrays(nodes, settings.blocking_keys, max_block_size=settings.max_block_size)
    scores = _linking_pairs(nodes, *worth_scoring(nodes, left, right, settings), settings)
    edges = [(a, b, score.weight) for (a, b), score in scores.items()]

    def on_demand(a: int, b: int) -> float:
        return cluster_weight(nodes[a], nodes[b], settings)

    groups = cluster_nodes(
        len(nodes), edges, on_demand, match_weight=settings.match_weight,
        min_weight=settings.cluster_min_weight, constraints=constraints,
    )
    cluster_of = {i: c for c, group in enumerate(groups) for i in group}
    evidence: dict[int, list[tuple[str, str, PairScore]]] = {}
    for (a, b), score in scores.items():
        if cluster_of[a] == cluster_of[b]:
            evidence.setdefault(cluster_of[a], []).append((nodes[a].key, nodes[b].key, score))
    ordered = [sorted(group, key=lambda i: nodes[i].order) for group in groups]
    names = map_slices(entity_names, [(nodes[g[0]].type, [(nodes[i].key, nodes[i].surfaces) for i in g]) for g in ordered])
    entities = tuple(
        _entity(nodes, group, first_seen[0], name, tuple(evidence.get(c, ())))
        for c, (group, first_seen, name) in enumerate(zip(groups, ordered, names))
    )
    mapping = {(nodes[i].type, nodes[i].key): e.entity_id for e, g in zip(entities, groups) for i in g}
    return Resolution(entities, mapping, report, report.comparisons)


def _linking_pairs(
    nodes: list[Node], left: np.ndarray, right: np.ndarray, settings: ResolutionSettings
) -> dict[tuple[int, int], PairScore]:
    """The candidate pairs that link, with their scores (on every core for a big batch)."""
    pairs = list(zip(left.tolist(), right.tolist()))
    scored = map_slices(partial(linking_scores, settings=settings), [(nodes[a], nodes[b]) for a, b in pairs])
    return {pair: score for pair, score in zip(pairs, scored) if score is not None}


def linking_scores(pairs: Sequence[tuple[Node, Node]], settings: ResolutionSettings) -> list[PairScore | None]:
    """Each pair's score when it reaches ``settings.match_weight``, else None; module-level for the workers."""
    out: list[PairScore | None] = []
    for left, right in pairs:
        score = score_nodes(left, right, settings)
        out.append(score if score.weight >= settings.match_weight else None)
    return out


def entity_names(clusters: Sequence[tuple[str, list[tuple[str, dict[str, int]]]]]) -> list[str]:
    """The canonical name of each cluster, given as its type and its nodes' (key, surfaces) in first-seen
    order; module-level so that worker processes can run it."""
    out = []
    for entity_type, members in clusters:
        surfaces: dict[str, int] = {}
        keys: dict[str, str] = {}
        for key, written in members:
            for surface, count in written.items():
                surfaces[surface] = surfaces.get(surface, 0) + count
                keys[surface] = key  # an organisation node's key is normalize_name of each of its surfaces
        out.append(canonical_name(surfaces, entity_type, keys))
    return out


def _entity(
    nodes: list[Node], group: list[int], first: int, name: str, evidence: tuple[tuple[str, str, PairScore], ...]
) -> ResolvedEntity:
    node = nodes[first]
    return ResolvedEntity(
        entity_id_for(node.type, node.key), node.type, name, node.key, tuple(sorted(nodes[i].key for i in group)), evidence,
    )


def resolve_records(mentions: list[Mention], settings: ResolutionSettings = DEFAULT_SETTINGS) -> Resolution:
    """Resolve a batch of mentions (records in first-seen order) into entities."""
    return resolve_nodes(nodes_from_mentions(mentions), settings)
