"""Comparison: rapidfuzz name similarity and attribute evidence, combined Fellegi–Sunter style (sum of log2 m/u)."""

from __future__ import annotations

from dataclasses import dataclass

from rapidfuzz import fuzz
from rapidfuzz.distance import JaroWinkler

from entity_resolution.normalize import acronym
from entity_resolution.records import Node
from entity_resolution.settings import Comparison, ResolutionSettings

ACRONYM_SIMILARITY = 0.999


@dataclass(frozen=True)
class PairScore:
    """The total match weight of two nodes and the level each comparison landed on (the evidence)."""

    weight: float
    levels: tuple[tuple[str, str, float], ...]  # (field, level label, weight)

    def to_dict(self) -> dict:
        return {"weight": round(self.weight, 3), "levels": [list(lv) for lv in self.levels]}


def name_similarity(a: str, b: str) -> float:
    """Similarity of two normalised keys in [0, 1]; ``ACRONYM_SIMILARITY`` when one is the other's acronym.

    Uses the stricter of edit-based ratio and Jaro–Winkler on sorted tokens, so an extra distinctive
    token ("acme" vs "acme analytics") costs, while typos and word order do not.
    """
    if a == b:
        return 1.0
    ta, tb = a.split(), b.split()
    if (len(ta) == 1 and len(tb) > 1 and ta[0] == acronym(b)) or (len(tb) == 1 and len(ta) > 1 and tb[0] == acronym(a)):
        return ACRONYM_SIMILARITY
    sorted_a, sorted_b = " ".join(sorted(ta)), " ".join(sorted(tb))
    ratio = fuzz.ratio(sorted_a, sorted_b) / 100.0
    jw = JaroWinkler.normalized_similarity(sorted_a, sorted_b)
    # Jaro-Winkler rewards shared prefixes too generously for names that merely start alike.
    return min(max(ratio, jw - 0.05), ACRONYM_SIMILARITY - 0.001)


def _attribute_similarity(field: str, left: set[str], right: set[str]) -> float:
    if left & right:
        return 1.0
    if field == "address":
        return max(fuzz.token_set_ratio(x, y) / 100.0 for x in left for y in right)
    return 0.0


def _level(comparison: Comparison, similarity: float | None) -> tuple[str, float]:
    if similarity is None:
        return "missing", comparison.missing_weight
    for level in comparison.levels:
        if similarity >= level.min_similarity:
            return level.label, level.weight
    return "else", comparison.else_weight


def score_nodes(left: Node, right: Node, settings: ResolutionSettings) -> PairScore:
    """Fellegi–Sunter weight of two nodes: name levels plus every attribute both sides have."""
    total, levels = 0.0, []
    for comparison in settings.comparisons:
        if comparison.field == "name":
            similarity: float | None = name_similarity(left.key, right.key)
        else:
            a, b = left.attributes.get(comparison.field), right.attributes.get(comparison.field)
            similarity = _attribute_similarity(comparison.field, a, b) if a and b else None
        label, weight = _level(comparison, similarity)
        if label != "missing":
            levels.append((comparison.field, label, weight))
        total += weight
    return PairScore(total, tuple(levels))
