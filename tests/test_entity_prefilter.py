"""The vectorised pre-filter drops only pairs that cannot link: resolution equals scoring every blocked pair."""

from __future__ import annotations

import random
from dataclasses import replace

import numpy as np
import pytest

from entity_resolution.blocking import candidate_pair_arrays
from entity_resolution.compare import score_nodes
from entity_resolution.prefilter import link_floor, worth_scoring
from entity_resolution.records import Mention, nodes_from_mentions
from entity_resolution.settings import DEFAULT_SETTINGS, Comparison, ComparisonLevel
from evaluation.corpus_names import make_orgs, make_people, typo_of

# One of each way a name links on the name alone: acronym, aligned abbreviation, a legal form glued on or
# misspelt, a moved space, a typo, "Last, First", swapped order, a first-name or surname slip.
CRAFTED = [
    ("organization", s) for s in (
        "Danax Inc", "DanaxInc", "Tidanl", "Tidanl LC", "Roga Partners", "Roga NPartners", "Zena Partners", "Zen Apartners", "Iron Lake Components",
        "Iron Lake Comp.", "International Business Machines", "IBM", "Fisolcus Corporation", "Fisolcus Corproation",
        "Belcor Motors", "Belcor Motors Crop", "Acme Analytics", "Acme", "Grey Harbor Retail UK", "Grey Harbor Retail",
    )
] + [
    ("person", s) for s in (
        "Anna Novak", "Anna Novakk", "Novak, Anna", "Novak Anna", "Phillip Allen", "Philip Allen", "Phillip K Allen",
        "Steve Jensen", "Steven Jensen", "J Jensen", "anna.novak@example.com",
    )
]


def _mentions(seed: int) -> list[Mention]:
    rng = random.Random(seed)
    orgs = make_orgs(rng, 40)
    employees, contacts = make_people(rng, orgs)
    out = [Mention(kind, surface) for kind, surface in CRAFTED]
    for org in orgs:
        for surface in (org.base, org.legal, org.suffix_variant, org.abbreviation, org.typo, org.shouty,
                        org.acronym.upper(), typo_of(org.legal, rng), org.legal.replace(" ", "", 1)):
            if surface:
                out.append(Mention("organization", surface))
    for person in employees + contacts:
        first, last = person.name.split(" ", 1)
        for surface in (person.name, f"{last}, {first}", person.name.upper(), typo_of(person.name, rng),
                        f"{first[0]} {last}", person.email, f"{first[:-1]} {last}"):
            out.append(Mention("person", surface))
    return out


def _linking_pairs(nodes, left, right, settings) -> set[tuple[int, int]]:
    return {(a, b) for a, b in zip(left.tolist(), right.tolist())
            if score_nodes(nodes[a], nodes[b], settings).weight >= settings.match_weight}


@pytest.mark.parametrize("seed", [3, 4])
def test_every_pair_that_links_passes_the_pre_filter_and_most_others_do_not(seed):
    nodes = nodes_from_mentions(_mentions(seed))
    left, right, _ = candidate_pair_arrays(nodes, DEFAULT_SETTINGS.blocking_keys, max_block_size=200)
    kept_left, kept_right = worth_scoring(nodes, left, right, DEFAULT_SETTINGS)
    kept = set(zip(kept_left.tolist(), kept_right.tolist()))
    linking = _linking_pairs(nodes, left, right, DEFAULT_SETTINGS)
    assert len(linking) > 100
    assert linking <= kept, sorted((nodes[a].key, nodes[b].key) for a, b in linking - kept)[:10]
    assert len(kept) < 0.5 * len(left)  # it does filter: most blocked pairs are far apart


def test_every_crafted_variant_pair_is_kept():
    nodes = nodes_from_mentions([Mention(kind, surface) for kind, surface in CRAFTED])
    index = {(n.type, n.key): i for i, n in enumerate(nodes)}
    n = len(nodes)
    left, right = np.triu_indices(n, k=1)
    same_type = np.asarray([nodes[a].type == nodes[b].type for a, b in zip(left, right)])
    left, right = left[same_type], right[same_type]
    kept = set(zip(*(x.tolist() for x in worth_scoring(nodes, left, right, DEFAULT_SETTINGS))))
    linking = _linking_pairs(nodes, left, right, DEFAULT_SETTINGS)
    assert linking <= kept
    for kind, a, b in [("organization", "Danax Inc", "DanaxInc"), ("organization", "Roga Partners", "Roga NPartners"), ("organization", "Zena Partners", "Zen Apartners"),
                       ("organization", "IBM", "International Business Machines"),
                       ("organization", "Iron Lake Components", "Iron Lake Comp."), ("person", "Anna Novak", "Anna Novakk"),
                       ("person", "Phillip Allen", "Philip Allen"), ("person", "Novak, Anna", "Novak Anna")]:
        pair = tuple(sorted((index[(kind, Mention(kind, a).key)], index[(kind, Mention(kind, b).key)])))
        assert pair in linking and pair in kept, (a, b)


def test_settings_that_link_below_one_edit_score_every_pair():
    name = DEFAULT_SETTINGS.comparisons[0]
    loose_levels = tuple(replace(lv, weight=5.0) if lv.label == "fuzzy_85" else lv for lv in name.levels)
    loose = replace(DEFAULT_SETTINGS, comparisons=(Comparison("name", loose_levels, name.else_weight),
                                                   *DEFAULT_SETTINGS.comparisons[1:]))
    assert link_floor(DEFAULT_SETTINGS) == 0.92 and link_floor(loose) == 0.85
    left, right = np.arange(5), np.arange(1, 6)
    nodes = nodes_from_mentions([Mention("organization", f"Name {i}") for i in range(6)])
    kept = worth_scoring(nodes, left, right, loose)
    assert kept[0].tolist() == left.tolist()
    assert link_floor(replace(DEFAULT_SETTINGS, comparisons=(Comparison("name", (ComparisonLevel("exact", 1.0, 8.0),), 6.0),))) == 0.0
