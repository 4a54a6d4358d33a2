"""Entity resolution core: normalisation, blocking, scoring, anti-chaining clustering, stable ids, settings."""

from __future__ import annotations

import json

import pytest

from entity_resolution.blocking import candidate_pairs, pair_completeness
from entity_resolution.cluster import Constraints, cluster_nodes
from entity_resolution.compare import score_nodes
from entity_resolution.normalize import acronym, is_acronym_of, normalize_name
from entity_resolution.people import person_key
from entity_resolution.records import Mention, nodes_from_mentions
from entity_resolution.resolve import resolve_records
from entity_resolution.settings import DEFAULT_SETTINGS, ResolutionSettings

ACME = ["Acme Corporation", "ACME Corp.", "acme"]
SUBSIDIARY = "Acme Holdings (Deutschland) GmbH"  # its own legal entity (the fixture gold and the generator agree)


def _orgs(*names: str, **attrs) -> list[Mention]:
    return [Mention("organization", n, attributes=tuple(attrs.get(n, ()))) for n in names]


def _entity_of(resolution, name: str, entity_type: str = "organization") -> str:
    return resolution.key_to_entity[(entity_type, Mention(entity_type, name).key)]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Acme Corporation", "acme"), ("ACME Corp.", "acme"), ("  acme ", "acme"),
        ("Acme Holdings (Deutschland) GmbH", "acme deutschland"), ("The Foo & Bar S.A.", "foo bar"),
        ("Société Générale S.A.", "societe generale"), ("Acme Analytics Ltd", "acme analytics"),
        ("Smith & Sons Mfg. Co.", "smith sons manufacturing"),
    ],
)
def test_normalisation_removes_case_accents_punctuation_and_legal_forms(raw, expected):
    assert normalize_name(raw) == expected


def test_acronyms_and_person_names():
    assert acronym("International Business Machines Corp.") == "ibm"
    assert is_acronym_of("IBM", "International Business Machines")
    assert not is_acronym_of("IBM", "Intel")
    assert person_key("Smith, John") == person_key("john SMITH")


def test_the_acme_spellings_are_one_entity_and_acme_analytics_and_the_subsidiary_are_not():
    result = resolve_records(_orgs(*ACME, SUBSIDIARY, "Acme Analytics", "IBM", "International Business Machines"))
    acme_ids = {_entity_of(result, n) for n in ACME}
    assert len(acme_ids) == 1
    assert _entity_of(result, "Acme Analytics") not in acme_ids
    assert _entity_of(result, SUBSIDIARY) not in acme_ids
    assert _entity_of(result, "IBM") == _entity_of(result, "International Business Machines")
    acme = next(e for e in result.entities if e.entity_id in acme_ids)
    assert acme.name == "Acme Corporation" and acme.entity_id.startswith("ent_")


def test_blocking_keeps_true_pairs_and_stays_far_below_quadratic():
    names = [f"Company{i} Widgets" for i in range(300)] + ["Acme Corp", "ACME Corporation", "IBM", "Intl Business Machines"]
    nodes = nodes_from_mentions(_orgs(*names))
    pairs, report = candidate_pairs(nodes, DEFAULT_SETTINGS.blocking_keys, max_block_size=50)
    index = {n.key: i for i, n in enumerate(nodes)}
    true = {tuple(sorted((index["ibm"], index["international business machines"])))}
    assert pair_completeness(set(pairs), true) == 1.0
    assert report.comparisons < report.quadratic / 20
    assert report.oversized_blocks >= 1  # "widgets" is too common to discriminate


def test_attribute_evidence_lifts_a_weak_name_match():
    weak = _orgs("Northwind Traders", "Northwind Trading")
    strong = _orgs(
        "Northwind Traders", "Northwind Trading",
        **{"Northwind Traders": [("email_domain", "acme.com")], "Northwind Trading": [("email_domain", "acme.com")]},
    )
    w_weak = score_nodes(*nodes_from_mentions(weak), DEFAULT_SETTINGS).weight
    w_strong = score_nodes(*nodes_from_mentions(strong), DEFAULT_SETTINGS).weight
    assert w_weak < DEFAULT_SETTINGS.match_weight <= w_strong
    conflicting = _orgs(
        "Northwind Traders", "Northwind Trading",
        **{"Northwind Traders": [("website", "northwind.com")], "Northwind Trading": [("website", "northwind.de")]},
    )
    assert score_nodes(*nodes_from_mentions(conflicting), DEFAULT_SETTINGS).weight < w_weak


def test_clustering_resists_chaining():
    # A~B and B~C are strong, but A and C contradict each other: C must not join A.
    weights = {(0, 1): 9.0, (1, 2): 8.0, (0, 2): -8.0}
    groups = cluster_nodes(3, [(0, 1, 9.0), (1, 2, 8.0)], lambda a, b: weights[(a, b)], match_weight=5, min_weight=0)
    assert groups == [[0, 1], [2]]


def test_constraints_win_over_scores():
    edges = [(0, 1, 9.0)]
    score = lambda a, b: 9.0  # noqa: E731
    assert cluster_nodes(2, edges, score, match_weight=5, min_weight=0, constraints=Constraints(cannot_link=((0, 1),))) == [[0], [1]]
    assert cluster_nodes(2, [], score, match_weight=5, min_weight=0, constraints=Constraints(must_link=((0, 1),))) == [[0, 1]]


def test_ids_and_names_are_stable_across_reruns_and_input_growth():
    first = resolve_records(_orgs(*ACME, "Acme Analytics"))
    again = resolve_records(_orgs(*ACME, "Acme Analytics"))
    grown = resolve_records(_orgs(*ACME, "Acme Analytics", "Globex", "ACME CORP"))
    assert [(e.entity_id, e.name) for e in first.entities] == [(e.entity_id, e.name) for e in again.entities]
    assert _entity_of(grown, "acme") == _entity_of(first, "acme")
    assert _entity_of(grown, "Acme Analytics") == _entity_of(first, "Acme Analytics")


def test_settings_round_trip_through_json_and_reject_unknown_keys():
    settings = ResolutionSettings(match_weight=6.5, blocking_keys=("token", "acronym"))
    restored = ResolutionSettings.from_dict(json.loads(json.dumps(settings.to_dict())))
    assert restored == settings
    with pytest.raises(ValueError, match="soundex"):
        ResolutionSettings(blocking_keys=("soundex",))


def _people(*names: str) -> list[Mention]:
    return [Mention("person", n) for n in names]


def test_look_alike_names_two_edits_apart_do_not_link_but_a_typo_does():
    # Distinct people whose surnames differ in a syllable score high on ratio/Jaro-Winkler; only a single
    # edit (a typo) may reach the linking levels.
    different = nodes_from_mentions(_people("Elena Tanakacor", "Elena Tanakacra"))
    typo = nodes_from_mentions(_people("Elena Tanakacor", "Elena Tanakcor"))
    assert score_nodes(*different, DEFAULT_SETTINGS).weight < DEFAULT_SETTINGS.match_weight
    assert score_nodes(*typo, DEFAULT_SETTINGS).weight >= DEFAULT_SETTINGS.match_weight


def test_a_typo_between_two_look_alikes_does_not_chain_them():
    # "silvano" is one edit from both "silvanor" and "silvaro", which are two edits apart: one entity
    # must not swallow both look-alikes through the typo.
    resolution = resolve_records(_people("Henry Silvanor", "Henry Silvano", "Henry Silvaro", "Henry Silvanor"))
    assert _entity_of(resolution, "Henry Silvanor", "person") != _entity_of(resolution, "Henry Silvaro", "person")


def test_a_typo_and_an_abbreviation_of_one_name_meet_through_the_full_name():
    # "Feight" (a typo) and "Frt." (an abbreviation) are far apart, but neither is a look-alike of the
    # other: anti-chaining must not split them from the name both derive from.
    resolution = resolve_records([Mention("organization", n) for n in
                                  ("Blue Willow Freight", "Blue Willow Frt.", "Blue Willow Feight", "Blue Wilow Foods",
                                   "Blue Willow Foods", "Blue Willow Fds.")])
    assert len({_entity_of(resolution, n, "organization") for n in ("Blue Willow Freight", "Blue Willow Frt.",
                                                                     "Blue Willow Feight")}) == 1
    assert len({_entity_of(resolution, n, "organization") for n in ("Blue Wilow Foods", "Blue Willow Fds.")}) == 1
    assert _entity_of(resolution, "Blue Willow Foods", "organization") != _entity_of(
        resolution, "Blue Willow Freight", "organization")


@pytest.mark.parametrize(("typo", "name"), [
    ("DanaxInc", "Danax Inc."),                      # the space before the legal form deleted
    ("Tidanl LC", "Tidan LLC"),                      # the space moved into the legal form
    ("Fisolcus Corproation", "Fisolcus Corporation"),  # the legal form misspelt
    ("Belcor Motors Crop", "Belcor Motors Corp"),
    ("Vibo Partner SGmbH", "Vibo Partners GmbH"),
    ("Roga NPartners", "Rogan Partners"),            # a moved space is one edit in written order only
])
def test_a_typo_in_the_legal_form_or_a_moved_space_still_links(typo, name):
    resolution = resolve_records(_orgs(name, name, typo))
    assert _entity_of(resolution, typo) == _entity_of(resolution, name)


def test_a_short_word_of_its_own_or_a_longer_name_is_not_a_legal_form_typo():
    resolution = resolve_records(_orgs("Grey Harbor Retail", "Grey Harbor Retail UK", "Kalo", "Kalori"))
    assert _entity_of(resolution, "Grey Harbor Retail") != _entity_of(resolution, "Grey Harbor Retail UK")
    assert _entity_of(resolution, "Kalo") != _entity_of(resolution, "Kalori")


def test_two_spellings_each_written_in_several_records_are_two_names():
    # A typo is rarely repeated; two spellings one edit apart, each in several records, are two companies...
    rivals = resolve_records(_orgs(*["Stennor Logistics"] * 3, *["Stencor Logistics"] * 3))
    assert _entity_of(rivals, "Stennor Logistics") != _entity_of(rivals, "Stencor Logistics")
    # ...while a spelling seen once next to a well-attested one is its typo,
    typo = resolve_records(_orgs(*["Stennor Logistics"] * 3, "Stencor Logistics"))
    assert _entity_of(typo, "Stennor Logistics") == _entity_of(typo, "Stencor Logistics")
    # and attribute evidence still links rival spellings.
    domain = {n: [("email_domain", "stennor.example")] for n in ("Stennor Logistics", "Stencor Logistics")}
    shared = resolve_records(_orgs(*["Stennor Logistics"] * 3, *["Stencor Logistics"] * 3, **domain))
    assert _entity_of(shared, "Stennor Logistics") == _entity_of(shared, "Stencor Logistics")
