"""Names for the generated enterprise corpus: organisations and the ways each system spells them.

An organisation has one legal name (the CRM's ``legal_name`` and the contract's party) and several
surfaces used elsewhere: a legal-suffix variant, an abbreviation, the acronym, a case variant and a
typo. Subsidiaries are their own entity (``… (Deutschland) GmbH``); look-alikes share the distinctive
words of a customer but are unrelated companies. Everything is drawn from one ``random.Random``.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

ADJECTIVES = (
    "Blue", "North", "Silver", "Red", "Iron", "Pine", "Golden", "Grey", "Green", "Bright", "Crown", "Eastern",
    "Western", "Royal", "Clear", "Swift", "Polar", "Amber", "Coral", "Cedar", "Summit", "Harbor", "Copper",
)
NOUNS = (
    "Harbor", "Ridge", "Valley", "Stone", "Field", "River", "Peak", "Bridge", "Lake", "Forge", "Meadow", "Anchor",
    "Falcon", "Beacon", "Orchard", "Canyon", "Willow", "Granite", "Lantern", "Compass", "Maple", "Quarry", "Delta",
)
SECTORS = (
    ("Logistics", "Log."), ("Freight", "Frt."), ("Foods", "Fds."), ("Pharma", "Phar."), ("Textiles", "Tex."),
    ("Energy", "Engy."), ("Retail", "Rtl."), ("Components", "Comp."), ("Distribution", "Distr."),
    ("Manufacturing", "Mfg."), ("Beverages", "Bev."), ("Chemicals", "Chem."), ("Technologies", "Tech."),
    ("Industries", "Ind."), ("Supply", "Sup."), ("Trading", "Trdg."),
)
LOOKALIKE_SECTORS = ("Analytics", "Ventures", "Media", "Consulting", "Software", "Capital")
SUFFIXES = ("Inc.", "GmbH", "B.V.", "Ltd", "LLC", "S.A.", "AG", "Corporation", "plc", "N.V.", "Ltd.", "SAS")
SUFFIX_VARIANTS = {
    "Inc.": "Inc", "GmbH": "G.m.b.H.", "B.V.": "BV", "Ltd": "Limited", "LLC": "L.L.C.", "S.A.": "SA",
    "AG": "Aktiengesellschaft", "Corporation": "Corp.", "plc": "PLC", "N.V.": "NV", "Ltd.": "Ltd", "SAS": "S.A.S.",
}
SUBSIDIARY_FORMS = (
    ("(Deutschland) GmbH", "Germany"), ("Nordic AB", "Sweden"), ("(UK) Ltd", "United Kingdom"),
    ("Iberia S.L.", "Spain"), ("Benelux B.V.", "Netherlands"), ("Polska Sp. z o.o.", "Poland"),
)
CITIES = (
    "Rotterdam", "Hamburg", "Lyon", "Milan", "Leeds", "Porto", "Gdansk", "Aarhus", "Antwerp", "Austin",
    "Denver", "Toronto", "Columbus", "Seville", "Graz", "Turku", "Cork", "Bilbao", "Lille", "Malmo",
)
FIRST_NAMES = (
    "Maria", "Tom", "Priya", "Liam", "Sofia", "Jonas", "Elena", "Marek", "Aisha", "Pieter", "Chloe", "Rafael",
    "Ingrid", "Omar", "Hannah", "Lucas", "Mei", "Dmitri", "Fatima", "Noah", "Greta", "Tariq", "Ana", "Felix",
    "Yuki", "Bram", "Leila", "Oskar", "Nadia", "Sven", "Carmen", "Emil", "Zara", "Hugo", "Irene", "Matteo",
)
LAST_NAMES = (
    "Schneider", "Becker", "Raman", "O'Connor", "Costa", "Lindqvist", "Novak", "Haddad", "de Vries", "Moreau",
    "Alvarez", "Nyberg", "Khan", "Fischer", "Tanaka", "Petrov", "Rahman", "Janssen", "Brandt", "Okafor",
    "Silva", "Weber", "Kowalczyk", "Dubois", "Hansen", "Rossi", "Meyer", "Ibrahim", "Larsen", "Varga",
    "Nakamura", "Horvat", "Keller", "Quinn", "Sato", "Eriksen",
)


def slug(text: str) -> str:
    """Lower-case, ASCII letters and digits joined by dashes."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


@dataclass(frozen=True)
class Org:
    """One organisation: its gold key, legal name, the surfaces systems use, and its relations."""

    key: str                       # gold entity key, e.g. "org:blue-ridge-logistics"
    base: str                      # "Blue Ridge Logistics"
    legal: str                     # "Blue Ridge Logistics GmbH"
    acronym: str                   # "BRL"
    kind: str                      # customer | subsidiary | lookalike
    city: str
    industry: str
    parent: str = ""               # legal name of the parent (subsidiaries)
    suffix_variant: str = ""       # "Blue Ridge Logistics G.m.b.H."
    abbreviation: str = ""         # "Blue Ridge Log."
    typo: str = ""                 # "Blue Ridge Logsitics"
    shouty: str = ""               # "BLUE RIDGE LOGISTICS"

    @property
    def slug(self) -> str:
        return slug(self.base)


@dataclass(frozen=True)
class Person:
    """A person (customer contact or Northwind employee) with the surfaces used for them."""

    key: str                       # "person:maria-schneider"
    name: str                      # "Maria Schneider"
    email: str
    title: str
    org_key: str = ""              # "" for Northwind staff


def typo_of(name: str, rng: random.Random) -> str:
    """One realistic typo in the longest word (swap, drop or double a letter; never the first letter)."""
    words = name.split()
    index = max(range(len(words)), key=lambda i: len(words[i]))
    word = words[index]
    pos = rng.randrange(1, len(word) - 1)
    operation = rng.choice(("swap", "drop", "double"))
    if operation == "swap":
        word = word[:pos] + word[pos + 1] + word[pos] + word[pos + 2:]
    elif operation == "drop":
        word = word[:pos] + word[pos + 1:]
    else:
        word = word[:pos] + word[pos] + word[pos:]
    if word == words[index]:  # swapping two equal letters changes nothing
        word = words[index][:pos] + words[index][pos + 1:]
    return " ".join(words[:index] + [word] + words[index + 1:])


def _with_variants(org: Org, abbreviation_word: str, rng: random.Random) -> Org:
    suffix = org.legal[len(org.base):].strip()
    words = org.base.split()
    return Org(
        org.key, org.base, org.legal, org.acronym, org.kind, org.city, org.industry, org.parent,
        suffix_variant=f"{org.base} {SUFFIX_VARIANTS.get(suffix, suffix)}".strip(),
        abbreviation=" ".join(words[:-1] + [abbreviation_word]) if abbreviation_word else org.base,
        typo=typo_of(org.base, rng),
        shouty=org.base.upper(),
    )


def make_orgs(rng: random.Random, count: int) -> list[Org]:
    """``count`` organisations: ~75 % customers, then subsidiaries of customers and unrelated look-alikes.

    Customer names are three words (adjective, noun, sector) with distinct acronyms, so an acronym
    names exactly one customer in the corpus."""
    n_special = max(2, count // 7)
    n_customers = max(1, count - 2 * n_special)
    customers: list[Org] = []
    used_acronyms: set[str] = set()
    used_heads: set[tuple[str, str]] = set()
    while len(customers) < n_customers:
        adjective, noun = rng.choice(ADJECTIVES), rng.choice(NOUNS)
        sector, short = rng.choice(SECTORS)
        acronym = adjective[0] + noun[0] + sector[0]
        if adjective == noun or acronym in used_acronyms or (adjective, noun) in used_heads:
            continue
        used_acronyms.add(acronym)
        used_heads.add((adjective, noun))
        base = f"{adjective} {noun} {sector}"
        org = Org(f"org:{slug(base)}", base, f"{base} {rng.choice(SUFFIXES)}", acronym, "customer",
                  rng.choice(CITIES), sector.lower())
        customers.append(_with_variants(org, short, rng))
    orgs = list(customers)
    parents = rng.sample(customers, min(n_special, len(customers)))
    for parent, (form, country) in zip(parents, rng.sample(SUBSIDIARY_FORMS, len(parents)), strict=False):
        base = f"{parent.base} {form.split(' ')[0].strip('()')}"
        legal = f"{parent.base} {form}"
        org = Org(f"org:{slug(legal)}", base, legal, parent.acronym + form[0 if form[0] != '(' else 1],
                  "subsidiary", country, parent.industry, parent=parent.legal)
        orgs.append(_with_variants(org, "", rng))
    for twin in rng.sample(customers, min(n_special, len(customers))):
        head = " ".join(twin.base.split()[:2])
        sector = rng.choice(LOOKALIKE_SECTORS)
        base = f"{head} {sector}"
        org = Org(f"org:{slug(base)}", base, f"{base} {rng.choice(SUFFIXES)}", "", "lookalike",
                  rng.choice(CITIES), sector.lower())
        orgs.append(_with_variants(org, "", rng))
    return orgs


def make_people(rng: random.Random, orgs: list[Org], staff: int = 8) -> tuple[list[Person], list[Person]]:
    """Northwind staff, and one or two contacts per organisation (distinct names corpus-wide)."""
    names = [(f, last) for f in FIRST_NAMES for last in LAST_NAMES]
    rng.shuffle(names)
    titles = ("VP Procurement", "Head of IT", "Operations Director", "CFO", "Logistics Manager", "General Counsel")
    staff_titles = ("Account Executive", "Account Executive", "Support Engineer", "Support Engineer",
                    "Collections Lead", "Legal Counsel", "Solutions Engineer", "Customer Success Manager")

    def person(first: str, last: str, domain: str, title: str, org_key: str = "") -> Person:
        full = f"{first} {last}"
        local = f"{first}.{last}".lower().replace(" ", "").replace("'", "")
        return Person(f"person:{slug(full)}", full, f"{local}@{domain}", title, org_key)

    employees = [person(*names.pop(), "northwind.example", staff_titles[i % len(staff_titles)]) for i in range(staff)]
    contacts = []
    for org in orgs:
        domain = f"{org.slug}.example"
        for title in rng.sample(titles, 1 if org.kind == "lookalike" else rng.choice((1, 2))):
            contacts.append(person(*names.pop(), domain, title, org.key))
    return employees, contacts
