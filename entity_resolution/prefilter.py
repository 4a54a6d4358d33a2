"""Which blocked pairs are worth the Python scorer: vectorised *necessary* conditions for a link.

Blocking at 10⁶ records yields ~10⁷ candidate pairs, of which ~1 % link. A pair whose two nodes do not both
carry attributes is scored on its name alone, and ``compare.name_similarity`` reaches a linking level only
through an acronym, a word-by-word aligned variant, a legal form a typo glued on, a person rule, or keys at
most one edit apart (``compare.ONE_EDIT_FLOOR``). Each of those has a cheap numpy/rapidfuzz test over the
pair arrays; a pair failing all of them cannot link, so it never reaches ``compare.score_nodes`` and the
result is the same as scoring every pair. Settings whose levels link below ``ONE_EDIT_FLOOR`` score all pairs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from rapidfuzz import fuzz, process
from rapidfuzz.distance import OSA, Prefix

from entity_resolution.compare import ONE_EDIT_FLOOR
from entity_resolution.normalize import acronym
from entity_resolution.parallel import map_slices
from entity_resolution.people import key_parts, surname
from entity_resolution.records import Node
from entity_resolution.settings import ResolutionSettings

FIRST_NAME_RATIO = 85  # people.person_similarity: "phillip" / "philip"
ALIGNED_RATIO = 0.7  # sorted-token ratio below which a same-head, same-length name is not tried as aligned
LEGAL_TAIL_MIN = 4  # compare.legal_tail: the shorter flat key has at least this many characters
CHARACTER_CLASSES = 32  # a–z, space, digits, and everything else in four buckets by code point
_PAIRS_PER_SLICE = 1 << 21  # pairs whose count rows are compared at once (2 × 64 MB of rows)


def link_floor(settings: ResolutionSettings) -> float:
    """The lowest name similarity that can reach ``match_weight`` when no attribute is compared."""
    needed = settings.match_weight - sum(c.missing_weight for c in settings.comparisons if c.field != "name")
    name = next(c for c in settings.comparisons if c.field == "name")
    if name.else_weight >= needed:
        return 0.0
    return min((lv.min_similarity for lv in name.levels if lv.weight >= needed), default=1.0)


@dataclass(frozen=True)
class _Columns:
    """Per-node columns, indexed by the pair arrays; strings interned to ints where only equality matters."""

    keys: np.ndarray  # object: the key as written
    sorted_keys: np.ndarray  # object: tokens sorted (word order ignored)
    flat: np.ndarray  # object: spaces removed
    length: np.ndarray
    flat_length: np.ndarray
    words: np.ndarray
    key_id: np.ndarray
    head_id: np.ndarray  # first word
    acronym_id: np.ndarray  # -1 when the key has no acronym
    person: np.ndarray  # bool: person rules apply (type person, key parses as first/last)
    first: np.ndarray  # object: a person's first name ('' otherwise)
    surname: np.ndarray  # object: a person's surname without particles ('' otherwise)
    first_id: np.ndarray
    surname_id: np.ndarray
    attributed: np.ndarray
    counts: np.ndarray  # (nodes × CHARACTER_CLASSES) uint8: ``character_counts`` of the key
    flat_head_id: np.ndarray  # the flat key's first LEGAL_TAIL_MIN characters


def _columns(nodes: list[Node]) -> _Columns:
    ids: dict[str, int] = {}

    def intern(text: str) -> int:
        return ids.setdefault(text, len(ids))

    keys = [n.key for n in nodes]
    named = map_slices(_name_parts, [(n.type, n.key) for n in nodes])
    parts = [p for _, p, _ in named]
    surnames = [s for _, _, s in named]
    initials = [a for a, _, _ in named]
    return _Columns(
        keys=np.asarray(keys, dtype=object),
        sorted_keys=np.asarray([" ".join(sorted(k.split())) for k in keys], dtype=object),
        flat=np.asarray([k.replace(" ", "") for k in keys], dtype=object),
        length=np.asarray([len(k) for k in keys]),
        flat_length=np.asarray([len(k) - k.count(" ") for k in keys]),
        words=np.asarray([k.count(" ") + 1 for k in keys]),
        key_id=np.asarray([intern(k) for k in keys]),
        head_id=np.asarray([intern(k.split(" ", 1)[0]) for k in keys]),
        acronym_id=np.asarray([intern(a) if a else -1 for a in initials]),
        person=np.asarray([p is not None for p in parts]),
        first=np.asarray([p[0] if p else "" for p in parts], dtype=object),
        surname=np.asarray(surnames, dtype=object),
        first_id=np.asarray([intern(p[0]) if p else -2 for p in parts]),
        surname_id=np.asarray([intern(s) if s else -3 for s in surnames]),
        attributed=np.asarray([bool(n.attributes) for n in nodes]),
        counts=character_counts(keys),
        flat_head_id=np.asarray([intern(k.replace(" ", "")[:LEGAL_TAIL_MIN]) for k in keys]),
    )


def _name_parts(items: Sequence[tuple[str, str]]) -> list[tuple[str, tuple[str, str, str] | None, str]]:
    """(acronym, person parts, surname) of each (type, key): the per-name Python of ``_columns``."""
    out = []
    for node_type, key in items:
        parts = key_parts(key) if node_type == "person" and "@" not in key else None
        out.append((acronym(key), parts, surname(parts[2]) if parts else ""))
    return out


def worth_scoring(
    nodes: list[Node], left: np.ndarray, right: np.ndarray, settings: ResolutionSettings
) -> tuple[np.ndarray, np.ndarray]:
    """The candidate pairs that may reach ``settings.match_weight``; the rest provably cannot."""
    if not len(left) or link_floor(settings) < ONE_EDIT_FLOOR:
        return left, right
    c = _columns(nodes)
    keep = c.attributed[left] & c.attributed[right]
    keep |= _acronym(c, left, right) | _one_edit(c, left, right, ~keep)
    organisation = ~c.person[left] & ~keep
    keep |= organisation & (_aligned(c, left, right, organisation) | _legal_tail(c, left, right, organisation))
    both_people = c.person[left] & c.person[right] & ~keep
    keep |= both_people & _person_rules(c, left, right)
    return left[keep], right[keep]


def _acronym(c: _Columns, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """One key is a single word equal to the other's initials ("ibm" / "international business machines")."""
    one = (c.words[left] == 1) & (c.words[right] > 1) & (c.key_id[left] == c.acronym_id[right])
    return one | ((c.words[right] == 1) & (c.words[left] > 1) & (c.key_id[right] == c.acronym_id[left]))


def character_counts(keys: list[str]) -> np.ndarray:
    """How often each character class occurs in each key (capped at 255). One OSA edit changes at most two
    counts by one each, and merging characters into classes or capping can only shrink a difference, so two
    keys whose counts differ by more than 2 in total are at least two edits apart."""
    lengths = np.fromiter(map(len, keys), dtype=np.int64, count=len(keys))
    codes = np.frombuffer("".join(keys).encode("utf-32-le"), dtype=np.uint32).astype(np.int64)
    classes = 28 + codes % 4
    letter = (codes >= 97) & (codes <= 122)
    classes[letter] = codes[letter] - 97
    classes[codes == 32] = 26
    classes[(codes >= 48) & (codes <= 57)] = 27
    cells = np.repeat(np.arange(len(keys), dtype=np.int64), lengths) * CHARACTER_CLASSES + classes
    counts = np.bincount(cells, minlength=len(keys) * CHARACTER_CLASSES)
    return np.minimum(counts, 255).astype(np.uint8).reshape(len(keys), CHARACTER_CLASSES)


def _counts_within_one_edit(c: _Columns, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The necessary condition of ``character_counts`` for each pair, a slice of pairs at a time."""
    out = np.zeros(len(a), dtype=bool)
    for start in range(0, len(a), _PAIRS_PER_SLICE):
        stop = start + _PAIRS_PER_SLICE
        difference = c.counts[a[start:stop]].astype(np.int16) - c.counts[b[start:stop]]
        out[start:stop] = np.abs(difference).sum(axis=1) <= 2
    return out


def _one_edit(c: _Columns, left: np.ndarray, right: np.ndarray, open_: np.ndarray) -> np.ndarray:
    """At most one OSA edit apart, in sorted-token or in written order (a moved space); both orders have the
    same characters, so pairs whose character counts already differ too much are not compared at all."""
    out = np.zeros(len(left), dtype=bool)
    todo = np.flatnonzero(open_ & (np.abs(c.length[left] - c.length[right]) <= 1))
    todo = todo[_counts_within_one_edit(c, left[todo], right[todo])]
    a, b = left[todo], right[todo]
    out[todo] = process.cpdist(c.sorted_keys[a].tolist(), c.sorted_keys[b].tolist(), scorer=OSA.distance,
                               score_cutoff=1, workers=-1) <= 1
    todo = todo[~out[todo] & ((c.words[a] > 1) | (c.words[b] > 1))]  # one word: written order is sorted order
    a, b = left[todo], right[todo]
    out[todo] = process.cpdist(c.keys[a].tolist(), c.keys[b].tolist(), scorer=OSA.distance, score_cutoff=1, workers=-1) <= 1
    return out


def _aligned(c: _Columns, left: np.ndarray, right: np.ndarray, open_: np.ndarray) -> np.ndarray:
    """Same word count (≥ 2) and first word, close enough overall: ``compare.aligned_variant`` decides."""
    out = np.zeros(len(left), dtype=bool)
    todo = np.flatnonzero(open_ & (c.words[left] == c.words[right]) & (c.words[left] >= 2)
                          & (c.head_id[left] == c.head_id[right]))
    a, b = left[todo], right[todo]
    ratio = process.cpdist(c.sorted_keys[a].tolist(), c.sorted_keys[b].tolist(), scorer=fuzz.ratio, workers=-1)
    out[todo] = ratio >= ALIGNED_RATIO * 100
    return out


def _legal_tail(c: _Columns, left: np.ndarray, right: np.ndarray, open_: np.ndarray) -> np.ndarray:
    """The shorter flat key (≥ 4 chars) starts the longer one, which is ≥ 2 chars longer (``compare.legal_tail``):
    so their first four flat characters are equal, an integer test before any string is compared."""
    out = np.zeros(len(left), dtype=bool)
    short = np.minimum(c.flat_length[left], c.flat_length[right])
    todo = np.flatnonzero(open_ & (short >= LEGAL_TAIL_MIN) & (np.abs(c.flat_length[left] - c.flat_length[right]) >= 2)
                          & (c.flat_head_id[left] == c.flat_head_id[right]))
    a, b = left[todo], right[todo]
    shared = process.cpdist(c.flat[a].tolist(), c.flat[b].tolist(), scorer=Prefix.similarity, workers=-1)
    out[todo] = shared == short[todo]
    return out


def _person_rules(c: _Columns, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """``people.person_similarity`` links the same surname with first names equal or a typo apart (one slip,
    or ratio ≥ 85), or the same first name with surnames one slip apart (a slip is at most one OSA edit);
    swapped order ("smith anna") is ``_one_edit``'s."""
    same_first = c.first_id[left] == c.first_id[right]
    same_surname = c.surname_id[left] == c.surname_id[right]
    out = same_surname & same_first
    todo = np.flatnonzero(same_surname & ~same_first)
    a, b = c.first[left[todo]].tolist(), c.first[right[todo]].tolist()
    typo = process.cpdist(a, b, scorer=OSA.distance, score_cutoff=1, workers=-1) <= 1
    out[todo] = typo | (process.cpdist(a, b, scorer=fuzz.ratio, workers=-1) >= FIRST_NAME_RATIO)
    todo = np.flatnonzero(same_first & ~same_surname)
    a, b = c.surname[left[todo]].tolist(), c.surname[right[todo]].tolist()
    out[todo] = process.cpdist(a, b, scorer=OSA.distance, score_cutoff=1, workers=-1) <= 1
    return out
