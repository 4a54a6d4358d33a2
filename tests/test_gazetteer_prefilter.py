"""Gazetteer.find parses only the windows that can match (entity_resolution/gazetteer.py: _Words), and finds
exactly what parsing every window finds: on generated enterprise corpora (names with typos, acronyms, legal
forms, people as addresses and Notes names), with and without a visibility filter and query acronyms.

Before it, every document of an ingest parsed ~6 windows per word as an organisation and as a person: the
SciFact ingest spent 217 s of its 365 s linking (``entity_resolution.linker.RegistryLinker.link_document``)."""

from __future__ import annotations

import csv
import random

import pytest

import entity_resolution.gazetteer as gazetteer_module
from entity_resolution.gazetteer import Gazetteer
from entity_resolution.normalize import normalize_name
from entity_resolution.people import person_key
from evaluation.corpus import generate_corpus

TEXT_SUFFIXES = (".eml", ".md", ".html", ".jsonl", ".csv", ".yaml", ".json")
NOTES = """From: Phillip K Allen/HOU/ECT@ECT on 02/09/2000; cc: Sarah Novosel/Corp/Enron@ENRON, Arnold, John
"George Rahal" <george.rahal@acnpower.com> wrote to john.arnold@enron.com and J. Arnold; The ACME Corp.'s B.V.
(Deutschland) GmbH & Co. KG - signed by Allen, Phillip K. and the Umbrela Corp team (UMB)."""


@pytest.fixture(scope="module", params=[3, 17])
def corpus(request, tmp_path_factory):
    root = tmp_path_factory.mktemp(f"corpus-{request.param}")
    generate_corpus(root, seed=request.param)
    names = []
    with (root / "gold" / "entities.csv").open(encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            person = row["entity_key"].startswith("person:")
            key = person_key(row["mention"]) if person else normalize_name(row["mention"])
            names.append(("person" if person else "organization", key, row["mention"]))
    names += [("person", "phillip k allen", "Phillip K Allen"), ("person", "john arnold", "john.arnold@enron.com"),
              ("organization", "acme", "The ACME Corp."), ("organization", "umbrella", "Umbrella Corp")]
    texts = [p.read_text(encoding="utf-8", errors="replace") for p in sorted(root.rglob("*"))
             if p.suffix in TEXT_SUFFIXES and p.is_file()]
    return names, texts + NOTES.splitlines() + [NOTES]


def _gazetteers(names):
    made = []
    for prefilter in (True, False):
        gazetteer = Gazetteer(prefilter=prefilter)
        gazetteer.add((t, k) for t, k, _ in names if k)
        gazetteer.add_acronyms((t, k, s) for t, k, s in names if k)
        made.append(gazetteer)
    return made


def test_the_prefilter_finds_exactly_what_parsing_every_window_finds(corpus):
    names, texts = corpus
    fast, reference = _gazetteers(names)
    hidden = {k for _, k, _ in names if random.Random(k).random() < 0.3}
    modes = ({}, {"acronyms": True}, {"allowed": lambda t, k: k not in hidden, "acronyms": True})
    found = 0
    for mode in modes:
        for text in texts:
            matches = fast.find(text, **mode)
            assert matches == reference.find(text, **mode)
            found += len(matches)
    assert found > 500  # the corpus names its organisations and people: the comparison is not of empty lists


def test_most_windows_are_passed_over_without_parsing(corpus, monkeypatch):
    names, texts = corpus
    calls = {True: 0, False: 0}
    parse = gazetteer_module.parse_person
    for gazetteer in _gazetteers(names):
        def counted(surface, _g=gazetteer):
            calls[_g.prefilter] += 1
            return parse(surface)
        monkeypatch.setattr(gazetteer_module, "parse_person", counted)
        for text in texts:
            gazetteer.find(text)
    assert calls[True] < calls[False] / 2, calls


def test_an_empty_gazetteer_reads_nothing(monkeypatch):
    monkeypatch.setattr(gazetteer_module, "parse_person", lambda _: pytest.fail("parsed a window"))
    assert Gazetteer().find(NOTES, acronyms=True) == []


def test_a_name_added_after_a_word_was_judged_is_found():
    gazetteer = Gazetteer()
    gazetteer.add([("organization", "globex")])
    assert gazetteer.find("Talked to Initrode Systems today") == []  # "Initrode" judged: leads nothing
    gazetteer.add([("organization", "initrode systems")])
    assert [m.key for m in gazetteer.find("Talked to Initrode Systems today")] == ["initrode systems"]


def test_flags_computed_against_old_names_never_reach_the_new_ones():
    """A find() on one thread judges a word with the old names while another thread adds a name: its flags
    must not be kept for the new names (they would hide the new name from every later find)."""
    gazetteer = Gazetteer()
    gazetteer.add([("organization", "globex")])

    class AddedMeanwhile(set):  # the other thread adds a name right after this word's prefix was looked up
        def __contains__(self, item):
            answer = super().__contains__(item)
            if not getattr(self, "done", False):
                self.done = True
                gazetteer.add([("organization", "initrode")])
            return answer

    gazetteer._prefixes = AddedMeanwhile(gazetteer._prefixes)
    assert gazetteer.word_flags("Initrod") == (False, False)  # judged with the old names
    assert [(m.key, m.fuzzy) for m in gazetteer.find("Talked to Initrod today")] == [("initrode", True)]
