"""Comparison: rapidfuzz name similarity and attribute evidence, combined Fellegi–Sunter style (sum of log2 m/u)."""

from __future__ import annotations

from dataclasses import dataclass

from rapidfuzz import fuzz, process
from rapidfuzz.distance import OSA, JaroWinkler

from entity_resolution.normalize import LEGAL_SUFFIXES, acronym
from entity_resolution.people import person_similarity
from entity_resolution.records import RECORD_WEIGHT, Node
from entity_resolution.settings import Comparison, ResolutionSettings

ACRONYM_SIMILARITY = 0.999
ALIGNED_SIMILARITY = 0.95  # every word the same, abbreviated ("Log." / "logistics") or one-typo apart
# Above this similarity two names may differ by at most one edit (a typo: one deletion, insertion,
# substitution or adjacent transposition), unless they align word by word (above). Names two or more edits
# apart ("tanakacor" / "tanakacra") are different names that merely look alike; in a dense name space they
# are common, so they stay below it.
ONE_EDIT_FLOOR = 0.92


QUALIFIED_SIMILARITY = 0.86  # "grey harbor retail uk" is a subsidiary of "grey harbor retail", not a spelling


def qualifier_only(ta: list[str], tb: list[str]) -> bool:
    """One name is the other plus short qualifiers (country codes such as "uk", "us", "de")."""
    short, long = (ta, tb) if len(ta) < len(tb) else (tb, ta)
    extra = [t for t in long if t not in short]
    return bool(short) and set(short) <= set(long) and bool(extra) and all(len(t) <= 3 for t in extra)


def _abbreviates(short: str, long: str) -> bool:
    """``short`` is a written abbreviation of ``long``: same first letter, its letters in order ("rtl" / "retail")."""
    if len(short) < 2 or len(short) > len(long) - 2 or short[0] != long[0] or not short.isalpha():
        return False
    rest = iter(long[1:])
    return all(c in rest for c in short[1:])


def _stem(word: str) -> str:
    for ending in ("ies", "y", "s"):
        if word.endswith(ending) and len(word) > len(ending) + 3:
            return word[: -len(ending)]
    return word


def _word_variant(a: str, b: str) -> bool:
    if a == b:
        return True
    if _abbreviates(a, b) or _abbreviates(b, a):
        return True
    return min(len(a), len(b)) >= 5 and fuzz.ratio(_stem(a), _stem(b)) >= 85


def aligned_variant(ta: list[str], tb: list[str]) -> bool:
    """Same number of words, the first identical, each other one equal, abbreviated or a typo of its partner;
    at most one word may differ, so two different names sharing a sector word never align."""
    if len(ta) != len(tb) or len(ta) < 2 or ta[0] != tb[0]:
        return False
    differing = [(x, y) for x, y in zip(ta, tb) if x != y]
    return len(differing) == 1 and _word_variant(*differing[0])


LEGAL_TAIL_SIMILARITY = 0.93  # "danaxinc" / "danax": a legal form a typo glued on or misspelt
_LONG_FORMS = tuple(sorted(f for f in LEGAL_SUFFIXES if len(f) >= 4))


def legal_tail(a: str, b: str) -> bool:
    """One key is the other plus a legal form that normalisation could not drop because a typo glued it on or
    misspelt it ("danaxinc", "tidanl lc", "... corproation", "... crop"). A short word of its own ("acme uk")
    is a qualifier (``qualifier_only``), and a short glued ending must be a legal form exactly ("kalori" is
    not "kalo" + a typo)."""
    short, long = sorted((a, b), key=len)
    flat_short, flat_long = short.replace(" ", ""), long.replace(" ", "")
    if len(flat_short) < 4 or len(flat_long) <= len(flat_short) + 1 or not flat_long.startswith(flat_short):
        return False
    tail = flat_long[len(flat_short):]
    if len(tail) <= 3:
        return tail in LEGAL_SUFFIXES and not long.startswith(short + " ")
    return process.extractOne(tail, _LONG_FORMS, scorer=OSA.distance, score_cutoff=1) is not None


@dataclass(frozen=True)
class PairScore:
    """The total match weight of two nodes and the level each comparison landed on (the evidence)."""

    weight: float
    levels: tuple[tuple[str, str, float], ...]  # (field, level label, weight)

    def to_dict(self) -> dict:
        return {"weight": round(self.weight, 3), "levels": [list(lv) for lv in self.levels]}


def name_similarity(a: str, b: str, *, organization: bool = True) -> float:
    """Similarity of two normalised keys in [0, 1]; ``ACRONYM_SIMILARITY`` when one is the other's acronym.

    Uses the stricter of edit-based ratio and Jaro–Winkler on sorted tokens, so an extra distinctive
    token ("acme" vs "acme analytics") costs, while typos and word order do not. Similarity reaches
    ``ONE_EDIT_FLOOR`` only for an acronym, a word-by-word aligned variant, or names at most one OSA edit apart.
    """
    if a == b:
        return 1.0
    if not organization and (person := person_similarity(a, b)) is not None:
        return person  # first / middle initial / last rules: two different Johns never link
    ta, tb = a.split(), b.split()
    if (len(ta) == 1 and len(tb) > 1 and ta[0] == acronym(b)) or (len(tb) == 1 and len(ta) > 1 and tb[0] == acronym(a)):
        return ACRONYM_SIMILARITY
    if organization and aligned_variant(ta, tb):  # "Anna Novak" / "Anna Nowak" are two people
        return ALIGNED_SIMILARITY
    if organization and legal_tail(a, b):
        return LEGAL_TAIL_SIMILARITY
    if organization and qualifier_only(ta, tb):
        return QUALIFIED_SIMILARITY
    sorted_a, sorted_b = " ".join(sorted(ta)), " ".join(sorted(tb))
    # Unsorted too: a typo that moves a space ("roga npartners") is one edit in written order only.
    ratio = max(fuzz.ratio(sorted_a, sorted_b), fuzz.ratio(a, b)) / 100.0
    jw = JaroWinkler.normalized_similarity(sorted_a, sorted_b)
    # Jaro-Winkler rewards shared prefixes too generously for names that merely start alike.
    similarity = min(max(ratio, jw - 0.05), ACRONYM_SIMILARITY - 0.001)
    if similarity >= ONE_EDIT_FLOOR and min(OSA.distance(sorted_a, sorted_b, score_cutoff=2),
                                            OSA.distance(a, b, score_cutoff=2)) > 1:
        return ONE_EDIT_FLOOR - 0.001
    return similarity


def look_alike(a: str, b: str) -> bool:
    """Two different names of one naming scheme: the same words but one, and that word two or more edits
    from its partner at (nearly) the same length ("silvanor" / "silvaro", "larsencortor" / "larsendortor").
    Variants of ONE name that far apart differ in length (a typo of an abbreviation: "feight" / "frt") or in
    several words ("wilow foods" / "willow fds"), so they are not look-alikes."""
    ta, tb = sorted(a.split()), sorted(b.split())
    if len(ta) != len(tb) or a == b:
        return False
    differing = [(x, y) for x, y in zip(ta, tb) if x != y]
    if len(differing) != 1:
        return False
    x, y = differing[0]
    if abs(len(x) - len(y)) > 1 or min(len(x), len(y)) < 4 or _abbreviates(x, y) or _abbreviates(y, x):
        return False
    return OSA.distance(x, y, score_cutoff=2) > 1


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


def rival_spellings(left: Node, right: Node, similarity: float, settings: ResolutionSettings) -> bool:
    """Two spellings one edit apart, each written in several records about as often as the other: a typo is
    rarely repeated (it has its own key and little support, see ``resolve.canonical_name``), so these are two
    names ("Stennor Logistics" / "Stencor Logistics"), and the name alone must not link them. Acronyms,
    aligned abbreviations, legal-form typos and exact keys are not spellings of this kind; attribute evidence
    (a shared email domain) still links them. The cost: a typo repeated consistently in several records
    ("Brght Bridge Pharma" three times in one system) is a rival too; ``rival_min_mentions = 0`` turns it off."""
    if not settings.rival_min_mentions or not ONE_EDIT_FLOOR <= similarity < 1.0 or similarity in (ACRONYM_SIMILARITY, ALIGNED_SIMILARITY, LEGAL_TAIL_SIMILARITY):
        return False
    a, b = sorted((sum(left.surfaces.values()), sum(right.surfaces.values())))
    return a >= settings.rival_min_mentions * RECORD_WEIGHT and a >= settings.rival_min_share * b


def score_nodes(left: Node, right: Node, settings: ResolutionSettings) -> PairScore:
    """Fellegi–Sunter weight of two nodes: name levels plus every attribute both sides have."""
    total, levels = 0.0, []
    for comparison in settings.comparisons:
        if comparison.field == "name":
            similarity: float | None = name_similarity(left.key, right.key, organization=left.type != "person")
            if rival_spellings(left, right, similarity, settings):
                similarity = ONE_EDIT_FLOOR - 0.001
        else:
            a, b = left.attributes.get(comparison.field), right.attributes.get(comparison.field)
            similarity = _attribute_similarity(comparison.field, a, b) if a and b else None
        label, weight = _level(comparison, similarity)
        if label != "missing":
            levels.append((comparison.field, label, weight))
        total += weight
    return PairScore(total, tuple(levels))


def cluster_weight(left: Node, right: Node, settings: ResolutionSettings) -> float:
    """The weight two members of one cluster must keep (anti-chaining, see ``cluster_min_weight``):
    look-alikes can never share a cluster, whatever a typo between them links to both."""
    if left.type != right.type or look_alike(left.key, right.key):
        return float("-inf")
    return score_nodes(left, right, settings).weight
