"""Per-request shortcuts (issue 13 latency) must give exactly the answer of the slow way they replace."""

from __future__ import annotations

import random

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rapidfuzz import fuzz

from core import payload as P
from core.models import Hit
from retrieval.pack import NEAR_DUPLICATE, _histogram, _may_be_near, _near_duplicate, _normalised, drop_duplicates
from retrieval.stitch import StitchedSpan

FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
WORDS = ["renewal", "Acme", "credit", "outage", "the", "of", "2026", "SLA", "é", "日本", "İ", "ſ", " ", ".", "\n"]


def _edited(text: str, rng: random.Random, edits: int) -> str:
    chars = list(text)
    for _ in range(edits):
        at = rng.randrange(len(chars) + 1)
        if chars and rng.random() < 0.5:
            del chars[min(at, len(chars) - 1)]
        else:
            chars.insert(at, rng.choice("abcxyz é日İ0"))
    return "".join(chars)


@st.composite
def text_pairs(draw):  # noqa: ANN201
    """A text and an edit of it: from identical to far apart, around the 92 cutoff most of the time."""
    base = " ".join(draw(st.lists(st.sampled_from(WORDS), min_size=5, max_size=60)))
    edits = draw(st.integers(0, max(1, len(base) // 8)))
    return base, _edited(base, random.Random(draw(st.integers(0, 10**6))), edits)


@FAST
@given(text_pairs())
def test_the_histogram_check_never_rules_out_a_near_duplicate(pair):
    a, b = pair
    near = _may_be_near(_histogram(a), len(a), _histogram(b)[None, :], np.array([len(b)]))[0]
    if fuzz.ratio(a, b) >= NEAR_DUPLICATE or a == b:
        assert near, (a, b, fuzz.ratio(a, b))
    if not near:
        assert not _near_duplicate(a, b)


def _span(doc: str, rank: int, text: str, entity_ids: tuple[str, ...] = ()) -> StitchedSpan:
    payload = {P.DOC_ID: doc, P.CHUNK_INDEX: 0, P.SPAN_START: 0, P.SPAN_END: len(text), P.TEXT: text,
               P.URI: None, P.SOURCE: doc.split(":")[0], P.TITLE: doc, P.ENTITY_IDS: list(entity_ids)}
    return StitchedSpan(doc, 1.0 / (rank + 1), rank, (Hit(doc, 0.0, payload),))


def _brute_force_groups(spans: list[StitchedSpan]) -> list[list[str]]:
    """drop_duplicates' grouping without the pre-check: every span against each group's first span."""
    from retrieval.pack import _Seen, _entity_ids, _same_content

    groups: list[list[_Seen]] = []
    for span in spans:
        seen = _Seen(span, _normalised(span.text), _entity_ids(span))
        group = next((g for g in groups if _same_content(seen, g[0])), None)
        groups.append([seen]) if group is None else group.append(seen)
    return sorted(sorted(s.span.doc_id for s in g) for g in groups)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 6), st.integers(0, 10**6)), min_size=1, max_size=14))
def test_dedupe_with_the_pre_check_groups_spans_as_comparing_every_pair(plan):
    bases = ["The quarterly numbers were strong across every region this year, said the CFO on Monday.",
             "Renewal terms for Acme: three years, SLA credit of 10 % after the October outage, net 30.",
             "Parental leave is sixteen weeks at full pay; notify HR four weeks ahead of the start date.",
             "日本語のテキストも重複として扱われるべきです。同じ内容が二つのシステムに保存されています。"]
    spans = [_span(f"s:{n}", n, _edited(bases[b], random.Random(seed), edits))
             for n, (b, edits, seed) in enumerate(plan)]
    kept = drop_duplicates(spans)
    kept_ids = sorted(s.doc_id for s in kept)
    groups = _brute_force_groups(spans)
    assert len(kept) == len(groups)
    assert all(any(d in g for g in groups) for d in kept_ids)
    assert [s.rank for s in kept] == sorted(s.rank for s in kept)
