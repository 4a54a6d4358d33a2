"""People across systems: an e-mail address, a Lotus Notes name, a display name and "Last, First" as ONE key.

``john.arnold@enron.com``, ``John.Arnold@ENRON``, ``John Arnold/HOU/ECT@ECT``, ``"Arnold, John"`` and
``John Arnold`` all have the person key ``"john arnold"`` (first, middle initial when written, last). The org
domain of an address is kept beside the key (``email_domain``), not in it, so a signature without an
address still finds the person.

When two keys are one person (``person_similarity``):
- the last names must be equal (particles such as "de"/"van" aside) or, with the same first name, one slip
  apart (a letter dropped, doubled or two swapped: "Novakk"); a changed letter is another name — Anna Novak
  and Anna Nowak stay two people however much else they share;
- written middle initials must agree: "Phillip K Allen" ~ "Phillip Allen", never ~ "Phillip M Allen";
- an address that keeps only the middle initial (``k..allen@enron.com``) is like an initial alone, and
  needs the same written middle initial;
- the first names are equal, or one slip apart ("Jon"/"John"), or close (both ≥ 5 letters, ``fuzz.ratio``
  ≥ 85: "Steve"/"Steven"); an initial alone ("J Arnold") links only with corroborating evidence (the same
  company e-mail domain), because "John" and "Jane" share it; two different first names never link.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from rapidfuzz import fuzz
from rapidfuzz.distance import Levenshtein

from entity_resolution.normalize import fold, name_tokens

MIDDLE_MISSING = 0.96  # "phillip allen" / "phillip k allen": fuzzy_95 level, links on the name alone
FIRST_NAME_TYPO = 0.93  # "philip allen" / "phillip allen": fuzzy_92 level, links on the name alone
UNKNOWN_FIRST = "_"  # key token of an address that writes only the middle initial ("k..allen@enron.com")
SWAPPED = 0.95  # "smith anna" / "anna smith": fuzzy_95 level
LAST_NAME_TYPO = 0.93  # "anna novakk" / "anna novak" (same first name): fuzzy_92 level
INITIAL_ONLY = 0.88  # "j arnold" / "john arnold": fuzzy_85 level, needs another agreeing field to link
PARTICLES = frozenset("de da di du del della der den van von ter ten le la st".split())
# Words that make a header's display name a list or a role, not a person ("All Employees", "IT Support").
NOT_PEOPLE = frozenset("""all everyone employees staff team group department desk support notice notices admin
    help info list mailbox service services news newsletter office the""".split())
# Mailboxes of providers, not companies: a shared domain there says nothing about being one person.
FREE_MAIL = frozenset(
    """gmail.com googlemail.com hotmail.com yahoo.com aol.com msn.com outlook.com live.com icloud.com me.com
    home.com earthlink.net compuserve.com juno.com mail.com gmx.de gmx.net web.de prodigy.net att.net
    comcast.net verizon.net""".split()
)

_ADDRESS = r"[A-Za-z0-9][\w.'+-]*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+"
_IS_ADDRESS = re.compile(rf"^{_ADDRESS}$")
_NAMED = re.compile(rf"^\"?([^\"<>@]+?)\"?\s*<({_ADDRESS})>$")  # "George Rahal" <george.rahal@acnpower.com>
_NOTES = re.compile(r"^([^/@]+?)(?:/[A-Za-z0-9&-]+)*(?:@[A-Za-z0-9&-]+)?$")  # Name/OU/ORG@DOMAIN, Name@DOMAIN
_LETTERS = re.compile(r"^[^\W\d_][^\W\d_'-]*(?:['-][^\W\d_]+)*$")
_CAPITALISED = re.compile(r"^[A-Z][\w'.,-]*$")


@dataclass(frozen=True)
class PersonName:
    """A parsed person surface: folded name parts, the org e-mail domain, how it was written, a display form."""

    first: str
    middle: str
    last: str
    domain: str  # "enron.com" for an address, "" otherwise
    kind: str  # "display" | "notes" | "address"
    display: str  # "Phillip K Allen": the name as a person reads it

    @property
    def key(self) -> str:
        return " ".join(p for p in (self.first or UNKNOWN_FIRST, self.middle, self.last) if p)

    @property
    def org_domain(self) -> str:
        """The domain when it names a company (not a free-mail provider)."""
        return self.domain if self.domain and self.domain not in FREE_MAIL else ""


@lru_cache(maxsize=200_000)  # the gazetteer asks for every text window; the same windows recur across documents
def parse_person(surface: str) -> PersonName | None:
    """The person a surface names, or None when it is not a clean person name (a fragment, a role mailbox)."""
    text = surface.strip().strip("'").strip()
    if named := _NAMED.match(text):
        person = _display(named.group(1).strip())
        address = _address(named.group(2))
        if person is None:
            return address
        return PersonName(person.first, person.middle, person.last, address.domain if address else "",
                          "display", person.display)
    if _IS_ADDRESS.match(text):
        return _address(text)
    if ("/" in text or "@" in text) and (notes := _NOTES.match(text)):
        person = _display(notes.group(1).strip())
        return PersonName(person.first, person.middle, person.last, "", "notes", person.display) if person else None
    return _display(text)


def _address(address: str) -> PersonName | None:
    """``phillip.k.allen@enron.com`` → Phillip K Allen at enron.com; a one-word mailbox names nobody."""
    local, _, domain = address.rpartition("@")
    if initial := re.match(r"^([A-Za-z])\.\.([A-Za-z]{2,})$", local):  # Exchange's form when the first name is lost
        middle, last = initial.group(1).casefold(), initial.group(2).casefold()
        return PersonName("", middle, last, domain.casefold(), "address", f"{middle.upper()}. {last.title()}")
    words = [w for w in re.split(r"[._-]+", local) if w]
    if not 2 <= len(words) <= 3 or not all(w.isalpha() for w in words):
        return None
    person = _parts([w.casefold() for w in words], " ".join(w[:1].upper() + w[1:].lower() for w in words))
    if person is None:
        return None
    return PersonName(person.first, person.middle, person.last, domain.casefold(), "address", person.display)


def _display(text: str) -> PersonName | None:
    """"Phillip K. Allen", "Allen, Phillip K.", "phillip allen" (queries are lower case) → the name parts."""
    if text.count(",") > 1 or any(c in text for c in "@/<>[]():;\n\"0123456789"):
        return None
    if "," in text:
        last, _, first = text.partition(",")
        if len([w for w in last.split() if w.casefold() not in PARTICLES]) != 1:
            return None  # "Stephanie Miller, Keith Holst" is a list, not "Last, First"
        text = f"{first.strip()} {last.strip()}"
    written = [w if len(w.rstrip(".")) == 1 else w.rstrip(".") for w in re.findall(r"[^\W\d_][\w'-]*\.?", text)]
    tokens = list(name_tokens(text, drop_legal=False))
    if len(tokens) != len(written) or not _written_as_name([w for w in written if w.casefold() not in PARTICLES]):
        return None  # "Allen_K", an "&", "by Phillip Allen": not a written personal name
    return _parts(tokens, " ".join(written))


def _written_as_name(words: list[str]) -> bool:
    """Every word capitalised, or all lower case (a query), or all upper case (a shouted header)."""
    return bool(words) and (all(w[0].isupper() for w in words) or all(w.islower() for w in words)
                            or all(w.isupper() for w in words))


def _parts(tokens: list[str], display: str) -> PersonName | None:
    if not 2 <= len(tokens) <= 4 or not all(_LETTERS.match(t) for t in tokens):
        return None
    if len(tokens[-1]) < 2 or (len(tokens) > 2 and len(tokens[0]) == 1 and len(tokens[1]) == 1):
        return None
    if NOT_PEOPLE.intersection(tokens):
        return None
    middle = tokens[1] if len(tokens) >= 3 and len(tokens[1]) == 1 else ""
    last = tokens[2:] if middle else tokens[1:]
    return PersonName(tokens[0], middle, " ".join(last), "", "display", display)


@lru_cache(maxsize=200_000)
def person_key(surface: str) -> str:
    """The person key of a surface: ``"John.Arnold@ENRON.com"`` → ``"john arnold"``; a mailbox that names
    nobody keeps its address (``"msagel@home.com"``); anything else its normalised words."""
    if person := parse_person(surface):
        return person.key
    text = surface.strip().strip("<>[]\"'")
    if _IS_ADDRESS.match(text):
        return fold(text)
    if "," in surface:
        last, _, first = surface.partition(",")
        surface = f"{first} {last}"
    return " ".join(name_tokens(surface, drop_legal=False))


@lru_cache(maxsize=200_000)
def short_key(key: str) -> str:
    """``"phillip k allen"`` → ``"phillip allen"`` (how a signature or a query writes the same person); '' if none."""
    parts = key_parts(key)
    return f"{parts[0]} {parts[2]}" if parts and parts[1] else ""


def key_parts(key: str) -> tuple[str, str, str] | None:
    """(first, middle initial, last) of a person key, or None for a mailbox or a one-word name."""
    tokens = key.split()
    if len(tokens) == 3 and tokens[0] == UNKNOWN_FIRST and len(tokens[1]) == 1:
        return "", tokens[1], tokens[2]
    if "@" in key or not 2 <= len(tokens) <= 4 or not all(_LETTERS.match(t) for t in tokens):
        return None
    if len(tokens) >= 3 and len(tokens[1]) == 1:
        return tokens[0], tokens[1], " ".join(tokens[2:])
    return tokens[0], "", " ".join(tokens[1:])


def surname(last: str) -> str:
    words = last.split()
    kept = [w for w in words if w not in PARTICLES]
    return " ".join(kept or words)


def person_similarity(a: str, b: str) -> float | None:
    """How alike two person keys are under the rules in the module docstring; None when either is a single
    word or longer than four, so the caller's generic name similarity applies."""
    if "@" in a or "@" in b:
        return 1.0 if a == b else 0.0  # mailboxes that name nobody ("ywang@", "jsmith@") match only exactly
    pa, pb = key_parts(a), key_parts(b)
    if pa is None or pb is None:
        return None
    (fa, ma, la), (fb, mb, lb) = pa, pb
    if ma and mb and ma != mb:
        return 0.0
    if (fa, la) == (lb, fb) and not (ma or mb):
        return SWAPPED  # "Smith Anna": a "Last, First" that lost its comma
    if surname(la) != surname(lb):
        return LAST_NAME_TYPO if fa == fb and _one_slip(surname(la), surname(lb), 5) else 0.0
    if not fa or not fb:  # "k..allen@": only the middle initial is known, it must be written on both sides
        return INITIAL_ONLY if ma and ma == mb else 0.0
    if fa == fb:
        return 1.0 if (ma, la) == (mb, lb) else MIDDLE_MISSING
    if len(fa) == 1 or len(fb) == 1:
        return INITIAL_ONLY if fa[0] == fb[0] else 0.0
    if _one_slip(fa, fb, 3) or (min(len(fa), len(fb)) >= 5 and fuzz.ratio(fa, fb) >= 85):
        return FIRST_NAME_TYPO
    return 0.0


def _one_slip(a: str, b: str, min_len: int) -> bool:
    """One letter dropped, doubled or two neighbours swapped — how a name is mistyped; a changed letter is
    another name (Novak / Nowak, Meyer / Mayer), and so is a trailing "s" (Richard / Richards)."""
    short, long = sorted((a, b), key=len)
    if len(long) < min_len or short == long:
        return False
    if len(long) == len(short) + 1:
        return Levenshtein.distance(short, long) == 1 and long != short + "s"
    if len(long) != len(short):
        return False
    diffs = [i for i, (x, y) in enumerate(zip(a, b)) if x != y]
    return len(diffs) == 2 and diffs[1] == diffs[0] + 1 and (a[diffs[0]], a[diffs[1]]) == (b[diffs[1]], b[diffs[0]])


def display_name(surfaces: dict[str, int]) -> str:
    """The name a person is shown by: a written display name ("Phillip Allen") before a Notes name before
    an address, the best-supported person key first, mixed case, then the most frequent; Notes names and
    addresses are shown by their name part ("Sarah Novosel", "John Arnold"); a mailbox as it is."""
    support: dict[str, int] = {}
    parsed = {s: parse_person(s) for s in surfaces}
    for surface, count in surfaces.items():
        key = parsed[surface].key if parsed[surface] else person_key(surface)
        support[key] = support.get(key, 0) + count
    order = {"display": 0, "notes": 1, "address": 2}

    def rank(item: tuple[int, tuple[str, int]]) -> tuple:
        index, (surface, count) = item
        person = parsed[surface]
        kind = order[person.kind] if person else 3
        mixed = surface != surface.upper() and surface != surface.lower()
        key = person.key if person else person_key(surface)
        return (kind, -support[key], -mixed, -count, index)

    best = min(enumerate(surfaces.items()), key=rank)[1][0]
    person = parsed[best]
    if person is None:
        return best
    return best if person.kind == "display" and "," not in best else person.display


# -- people named by e-mail headers inside free text (forwarded and quoted mails) ----------------------------
_NAME = r"[A-Z][\w'-]*\.?(?: [A-Z][\w'-]*\.?){1,3}"
# A Notes name in prose has its hierarchy: two units or more (Name/HOU/ECT) or a unit and a domain
# (Name/ENRON@X); a unit is a capitalised code, and one of them is in capitals unless a domain follows
# (_written_as_notes). One slash is how prose joins words ("World Health Organization/Rose", "Sales/Marketing",
# "CRISPR/Cas"); "An Al/methyl-red/p-InP" and "Human Resources/Legal/Finance" are not people either.
_SEGMENT = r"[A-Za-z0-9&-]+"
_UNIT = r"(?:/[A-Z][A-Za-z0-9&]{1,11})"
_IN_TEXT = (
    re.compile(rf"\"?(?P<name>{_NAME})\"?\s*<(?P<address>{_ADDRESS})>"),  # "George Rahal" <george.rahal@acn…>
    re.compile(rf"(?<![\w.'+-])(?P<address>{_ADDRESS})"),  # Phillip_K_Allen@enron.com
    re.compile(rf"(?<![\w/])(?P<notes>{_NAME}(?:{_UNIT}{{2,}}(?:@{_SEGMENT})?|{_UNIT}@{_SEGMENT}))(?![\w/@.])"),  # Name/HOU/ECT
    re.compile(rf"(?<![\w/])(?P<notes>{_NAME}@[A-Z][A-Za-z0-9&-]*)(?![\w/@.])"),  # Sarah Novosel@ENRON
)
_HEADER = re.compile(r"^[> \t]*(?:From|To|Cc|CC|cc|Bcc|Sent by):[ \t]*(?P<value>[^\n]+)$", re.MULTILINE)


@dataclass(frozen=True)
class FoundPerson:
    """A person named by an address, a Notes name or a header line in text: the exact surface and the parse."""

    surface: str
    start: int
    person: PersonName


def find_people(text: str) -> list[FoundPerson]:
    """People named in the structured forms of mail text — ``"Name" <address>``, a personal address
    (``first.last@company``), a Notes name (``Name/OU/ORG@DOMAIN``, ``Name@DOMAIN``) and display names in
    ``From:``/``To:``/``cc:`` lines. Prose is left to the gazetteer: it only finds names already known."""
    found: dict[tuple[int, str], FoundPerson] = {}
    for pattern in _IN_TEXT:
        for match in pattern.finditer(text):
            for group in ("name", "address", "notes"):
                if group in pattern.groupindex and match.group(group):
                    if group != "notes" or _written_as_notes(match.group(group)):
                        _keep(found, match.group(group), match.start(group))
    for header in _HEADER.finditer(text):
        value, offset = header.group("value"), header.start("value")
        separator = r"[^;]+" if ";" in value else r"[^;,]+" if value.count("@") > 1 else r".+"
        for part in re.finditer(separator, value):
            start = offset + part.start()
            names = [part.group(0)] if parse_person(part.group(0)) else part.group(0).split(",")
            for name in names:
                start = text.index(name, start)
                if name.strip() and all(_CAPITALISED.match(w) for w in name.split()):
                    _keep(found, name.strip(), start + name.index(name.strip()))
                start += len(name)
    return sorted(found.values(), key=lambda f: f.start)


def _written_as_notes(surface: str) -> bool:
    """``Name/HOU/ECT``, ``Name/Corp/Enron@ENRON``: a domain, or an organisational unit in capitals."""
    name, at, _ = surface.partition("@")
    return bool(at) or any(len(unit) >= 2 and unit.isupper() for unit in name.split("/")[1:])


def _keep(found: dict, surface: str, start: int) -> None:
    person = parse_person(surface)
    if person is not None and len(person.first) > 1 and (start, surface) not in found:
        found[(start, surface)] = FoundPerson(surface, start, person)


def split_people(value: str) -> list[str]:
    """A header-like field may list several people (``"a@x.com, b@x.com"``); "Allen, Phillip" is one."""
    if value.count("@") > 1 or ";" in value:
        return [p.strip() for p in re.split(r";" if ";" in value else r"[;,]", value) if p.strip()]
    return [value.strip()] if value.strip() else []
