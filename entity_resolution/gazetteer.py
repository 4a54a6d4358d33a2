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

from entity_resolution.normalize import LEGAL_SUFFIXES, STOPWORDS, acronym, legal_acronym, name_tokens, normalize_name
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

    def __init__(self, *, fuzzy_cutoff: float = 92.0, min_chars: int = 4, max_tokens: int = 6,
                 prefilter: bool = True) -> None:
        self.fuzzy_cutoff, self.min_chars, self.max_tokens = fuzzy_cutoff, min_chars, max_tokens
        self.prefilter = prefilter  # False: every window is parsed (the reference the prefilter is tested against)
        self._exact: dict[str, set[tuple[str, str]]] = defaultdict(set)
        self._buckets: dict[str, list[str]] = defaultdict(list)
        self._acronyms: dict[str, set[tuple[str, str]]] = defaultdict(set)  # "sfl" → Summit Freight Logistics
        # What lets find() pass over a window without parsing it (_Words): the first two letters of every key,
        # and every token of every key as name_tokens cuts it (a person's key is made of the window's words).
        self._prefixes: set[str] = set()
        self._vocabulary: set[str] = set()
        self._initialisms = False  # a one-word key of 3+ characters, which a window's initials could spell
        self._word_flags: dict[tuple[str, bool], tuple[bool, bool]] = {}

    def add(self, entries: Iterable[tuple[str, str]]) -> None:
        """Add (type, key) names."""
        for entity_type, key in entries:
            if not key or (entity_type, key) in self._exact.get(key, ()):
                continue
            self._exact[key].add((entity_type, key))
            self._index(key)
            if entity_type == "person" and (short := short_key(key)):
                self._exact[short].add((entity_type, key))  # "Phillip Allen" names "phillip k allen"
                self._index(short)
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

    def word_flags(self, word: str, *, dot_after: bool = False) -> tuple[bool, bool]:
        """(may a window starting with ``word`` lead a name, is one of its tokens a key's token): _Words.
        ``dot_after``: a one-letter word followed by "." (an initial, which a dotted form may join to the next).
        Kept per word until a name is added (words recur across a corpus, the flags depend only on the keys)."""
        kept = self._word_flags  # the flags of the names as they are now: a name added meanwhile starts a new dict
        flags = kept.get((word, dot_after))
        if flags is None:
            tokens = name_tokens(word, drop_legal=False)
            first = tokens[0] if tokens else ""
            if word.casefold() in STOPWORDS:
                lead = False  # find() never tries a window that starts with one, and a one-word one is no name
            elif not first or dot_after or _REWRITTEN.search(word) or first in _DROPPED_HEADS:
                lead = True  # the window's name may not start with this word's first token: no telling
            else:  # the name starts with ``first``: its first two characters are those of some key
                lead = (first[:2] in self._prefixes if len(first) >= 2
                        else first + " " in self._prefixes or first in self._prefixes)  # "p smith", "p"
            flags = (lead, any(t in self._vocabulary for t in tokens))
            if len(kept) >= WORD_FLAGS_KEPT:
                kept.clear()
            kept[(word, dot_after)] = flags
        return flags

    def _index(self, key: str) -> None:
        self._prefixes.add(key[:2])
        self._vocabulary.update(name_tokens(key, drop_legal=False))
        self._initialisms = self._initialisms or (" " not in key and len(key) >= 3)
        # Replaced, not cleared, and after the keys: a find() on another thread that read the old keys stores
        # its flags in the old dict, never in this one (queries run while ingest and the registry add names).
        self._word_flags = {}

    def __len__(self) -> int:
        return len(self._exact)

    def find(self, text: str, *, allowed: Allowed | None = None, acronyms: bool = False) -> list[TextMatch]:
        """Non-overlapping matches, longest window first; with ``allowed``, names it refuses do not exist.

        A window never spans a line break (no "GmbH - signed\n\nFrom: Lena" aliases); a possessive "'s" is
        not part of the name; with ``acronyms`` (queries), an ALL-CAPS word may name a multi-word entity."""
        if not self._exact:  # no names (acronyms only ever name known entities)
            return []
        words = [(m.start(), m.end()) for m in _WORD.finditer(text)]
        cheap = _Words(text, words, self) if self.prefilter else None
        taken = [False] * len(words)
        found: list[TextMatch] = []
        for size in range(min(self.max_tokens, len(words)), 0, -1):
            every = cheap is None or (acronyms if size == 1 else self._initialisms)
            for i in range(len(words) - size + 1) if every else cheap.starts(size):
                if any(taken[i:i + size]):
                    continue
                named, personal = cheap.could_match(i, size) if cheap else (True, True)
                start, end = words[i][0], words[i + size - 1][1]
                if size > 1 and "\n" in text[start:end]:
                    continue
                first, last = text[start:words[i][1]].casefold(), text[words[i + size - 1][0]:end].casefold()
                if size > 1 and (first in STOPWORDS or last in STOPWORDS):
                    continue
                surface = _POSSESSIVE.sub("", text[start:end]).rstrip(".")
                match = self._match(surface, size, allowed, named=named, personal=personal) or (
                    self._acronym_match(surface, allowed) if acronyms and size == 1 else [])
                if match:
                    found.extend(TextMatch(t, k, surface, start, start + len(surface), fuzzy) for t, k, fuzzy in match)
                    taken[i:i + size] = [True] * size
        return sorted(found, key=lambda m: (m.start, m.type))

    def _match(self, surface: str, size: int, allowed: Allowed | None, *, named: bool = True,
               personal: bool = True) -> list[tuple[str, str, bool]]:
        """``named``: the window's normalised name may be a key (or fuzzily one); ``personal``: a person's key
        read from the window may be one (_Words says when either cannot be)."""
        lowered = surface.casefold()
        if lowered in STOPWORDS or lowered in LEGAL_SUFFIXES:
            return []
        single_plain = size == 1 and not surface[:1].isupper()
        if single_plain and (lowered in COMMON_WORDS or len(lowered) < 3):
            return []
        head = None  # the first word's name, when a multi-word key needs it
        person = None
        if personal:
            person = parse_person(surface)  # the whole window is one written name: "Arnold, John", "J.Arnold@x.com"
            keys = {normalize_name(surface), person_key(surface), short_key(person.key) if person else ""} - {""}
        else:
            keys = {normalize_name(surface)} - {""} if named else set()
        for key in keys:
            if size > 1 and head is None:
                head = normalize_name(surface.split()[0])
            if size > 1 and not key.startswith(head):
                if not personal and key in self._exact:
                    person = parse_person(surface)  # only decides whether the head may be dropped
                if not person:
                    continue  # the window starts with a word the name drops ("Holdings … Acme")
            if key in self._exact and not (size > 1 and len(key.split()) == 1 and key in COMMON_WORDS):
                if size == 1 and key in COMMON_WORDS and not surface.isupper():
                    continue
                if exact := self._entries(key, allowed):
                    return [(t, k, False) for t, k in exact]
        if size > 1 and (self._initialisms or not self.prefilter):
            initials = acronym(surface)
            if len(initials) >= 3 and (exact := self._entries(initials, allowed)):
                return [(t, k, False) for t, k in exact]
        if single_plain or len(lowered) < self.min_chars + 1 or not named:
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


WORD_FLAGS_KEPT = 200_000  # words whose _Words flags a gazetteer keeps (~30 MB at most)
_DROPPED_HEADS = LEGAL_SUFFIXES | {"the", "and"}
_REWRITTEN = re.compile(r"[.('’]")  # dotted forms and parentheses rewrite across words; a possessive is cut off


class _Words:
    """Per word of a text, what it allows a window starting at or holding it to match, so that find() parses
    only windows that can match (a document's text has ~6 windows per word, the gazetteer few of them).

    * ``named``: the window's normalised name starts with its first word's first token when that word has
      no "." or "(" (the only rewrites that cross words; nor is it an initial followed by a dot) nor an
      apostrophe (a possessive is cut off) and is not dropped ("the", "and", a legal form). Then a name key,
      or a fuzzy bucket, needs that token's first two characters among the keys' prefixes. A window starting
      with a stop word is never tried (find), so such a word leads nothing.
    * ``personal``: a person's key read from a window (address, Notes name, "Last, First", a display name)
      is made of the window's words, so one of their tokens is a token of that key.
    """

    def __init__(self, text: str, words: list[tuple[int, int]], gazetteer: "Gazetteer") -> None:
        flags = [gazetteer.word_flags(text[start:end], dot_after=end - start == 1 and text[end:end + 1] == ".")
                 for start, end in words]
        self.lead: list[bool] = [lead for lead, _ in flags]
        self.known: list[bool] = [known for _, known in flags]

    def could_match(self, i: int, size: int) -> tuple[bool, bool]:
        return self.lead[i], any(self.known[i:i + size])

    def starts(self, size: int) -> list[int]:
        """Where a window of ``size`` words could match: its first word leads a name or one of its words
        is a key's token (a small gazetteer leaves few such windows in a long text)."""
        last = len(self.lead) - size
        found = {i for i, lead in enumerate(self.lead) if lead and i <= last}
        for k, known in enumerate(self.known):
            if known:
                found.update(range(max(0, k - size + 1), min(k, last) + 1))
        return sorted(found)
