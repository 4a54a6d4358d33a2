"""Find known names in free text: exact n-gram lookup on normalised keys, then fuzzy windows with rapidfuzz.

Precision guard: a single lowercase word matches only exactly and only if it is not a common word;
fuzzy matching needs a capitalised or multi-word window of at least ``min_chars`` characters.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from rapidfuzz import fuzz, process

from entity_resolution.normalize import LEGAL_SUFFIXES, STOPWORDS, acronym, legal_acronym, normalize_name
from entity_resolution.people import parse_person, person_key, short_key

_POSSESSIVE = re.compile(r"['’]s$", re.IGNORECASE)
_WORD = re.compile(r"[\w][\w&'.-]*[\w]|[\w]", re.UNICODE)
Allowed = Callable[[str, str], bool]  # (type, key) → may this name take part in matching
COMMON_WORDS = frozenset(
    """about after again all also any apple are back because been before being best between both but
    call can case could data day did does done down each even every first from general get give good great
    group have help here high home how into just know last like line long look made make many may more most
    much must need new next now number off old one only open order other our out over own part people place
    plan point power program project public right same say see service set should show since small some
    state still such support system take team than that their them then there these they thing think this
    those time today total under united unit use very want was way well were what when where which while
    who will with without work world would year you your target delta oracle amazon shell apex summit
    global national standard premier first pioneer""".split()
)


@dataclass(frozen=True)
class TextMatch:
    """A known name found in text: the (type, key) node, the exact text span and how it matched."""

    type: str
    key: str
    surface: str
    start: int
    end: int
    fuzzy: bool


class Gazetteer:
    """Known (type, key) names, indexed for n-gram lookup and bucketed fuzzy search."""

    def __init__(self, *, fuzzy_cutoff: float = 92.0, min_chars: int = 4, max_tokens: int = 6) -> None:
        self.fuzzy_cutoff, self.min_chars, self.max_tokens = fuzzy_cutoff, min_chars, max_tokens
        self._exact: dict[str, set[tuple[str, str]]] = defaultdict(set)
        self._buckets: dict[str, list[str]] = defaultdict(list)
        self._acronyms: dict[str, set[tuple[str, str]]] = defaultdict(set)  # "sfl" → Summit Freight Logistics

    def add(self, entries: Iterable[tuple[str, str]]) -> None:
        """Add (type, key) names."""
        for entity_type, key in entries:
            if not key or (entity_type, key) in self._exact.get(key, ()):
                continue
            self._exact[key].add((entity_type, key))
            if entity_type == "person" and (short := short_key(key)):
                self._exact[short].add((entity_type, key))  # "Phillip Allen" names "phillip k allen"
            initials = acronym(key) if entity_type != "person" else ""
            if len(initials) >= 3:
                self._acronyms[initials].add((entity_type, key))
            if len(key) >= self.min_chars:
                self._buckets[key[:2]].append(key)

    def add_acronyms(self, entries: Iterable[tuple[str, str, str]]) -> None:
        """(type, key, surface): the surface's initials with its legal form also name the entity ("SFL")."""
        for entity_type, key, surface in entries:
            initials = legal_acronym(surface) if entity_type != "person" else ""
            if initials and (entity_type, key) in self._exact.get(key, ()):
                self._acronyms[initials].add((entity_type, key))

    def __len__(self) -> int:
        return len(self._exact)

    def find(self, text: str, *, allowed: Allowed | None = None, acronyms: bool = False) -> list[TextMatch]:
        """Non-overlapping matches, longest window first; with ``allowed``, names it refuses do not exist.

        A window never spans a line break (no "GmbH - signed\n\nFrom: Lena" aliases); a possessive "'s" is
        not part of the name; with ``acronyms`` (queries), an ALL-CAPS word may name a multi-word entity."""
        words = [(m.start(), m.end()) for m in _WORD.finditer(text)]
        taken = [False] * len(words)
        found: list[TextMatch] = []
        for size in range(min(self.max_tokens, len(words)), 0, -1):
            for i in range(len(words) - size + 1):
                if any(taken[i:i + size]):
                    continue
                start, end = words[i][0], words[i + size - 1][1]
                if size > 1 and "\n" in text[start:end]:
                    continue
                first, last = text[start:words[i][1]].casefold(), text[words[i + size - 1][0]:end].casefold()
                if size > 1 and (first in STOPWORDS or last in STOPWORDS):
                    continue
                surface = _POSSESSIVE.sub("", text[start:end]).rstrip(".")
                match = self._match(surface, size, allowed) or (
                    self._acronym_match(surface, allowed) if acronyms and size == 1 else [])
                if match:
                    found.extend(TextMatch(t, k, surface, start, start + len(surface), fuzzy) for t, k, fuzzy in match)
                    taken[i:i + size] = [True] * size
        return sorted(found, key=lambda m: (m.start, m.type))

    def _match(self, surface: str, size: int, allowed: Allowed | None) -> list[tuple[str, str, bool]]:
        lowered = surface.casefold()
        if lowered in STOPWORDS or lowered in LEGAL_SUFFIXES:
            return []
        single_plain = size == 1 and not surface[:1].isupper()
        if single_plain and (lowered in COMMON_WORDS or len(lowered) < 3):
            return []
        head = normalize_name(surface.split()[0]) if size > 1 else ""
        person = parse_person(surface)  # the whole window is one written name: "Arnold, John", "J.Arnold@x.com"
        for key in {normalize_name(surface), person_key(surface), short_key(person.key) if person else ""} - {""}:
            if size > 1 and not key.startswith(head) and not person:
                continue  # the window starts with a word the name drops ("Holdings … Acme")
            if key in self._exact and not (size > 1 and len(key.split()) == 1 and key in COMMON_WORDS):
                if size == 1 and key in COMMON_WORDS and not surface.isupper():
                    continue
                if exact := self._entries(key, allowed):
                    return [(t, k, False) for t, k in exact]
        if size > 1:
            initials = acronym(surface)
            if len(initials) >= 3 and (exact := self._entries(initials, allowed)):
                return [(t, k, False) for t, k in exact]
        if single_plain or len(lowered) < self.min_chars + 1:
            return []
        return self._fuzzy(normalize_name(surface), allowed)

    def _acronym_match(self, surface: str, allowed: Allowed | None) -> list[tuple[str, str, bool]]:
        if not (surface.isupper() and surface.isalpha() and 3 <= len(surface) <= 6):
            return []
        entries = sorted(self._acronyms.get(surface.casefold(), ()))
        return [(t, k, False) for t, k in entries if allowed is None or allowed(t, k)]

    def _entries(self, key: str, allowed: Allowed | None) -> list[tuple[str, str]]:
        entries = sorted(self._exact.get(key, ()))
        return entries if allowed is None else [(t, k) for t, k in entries if allowed(t, k)]

    def _fuzzy(self, key: str, allowed: Allowed | None) -> list[tuple[str, str, bool]]:
        if len(key) < self.min_chars + 1 or key in COMMON_WORDS:
            return []
        choices = self._buckets.get(key[:2], ())
        words = len(key.split())
        for candidate, _, _ in process.extract(key, choices, scorer=fuzz.ratio, score_cutoff=self.fuzzy_cutoff, limit=None):
            if len(candidate.split()) != words:
                continue  # a typo keeps the word count: "Globex International is" is not a spelling of the name
            entries = [(t, k) for t, k in self._entries(candidate, allowed)
                       if t != "person" or k.split()[-1] == key.split()[-1]]  # "Byrne" is not a typo of "Burne"
            if entries:
                return [(t, k, True) for t, k in entries]
        return []
