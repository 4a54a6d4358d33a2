"""Name normalisation: case, unicode, punctuation, legal suffixes, leading "The", &/and, abbreviations, acronyms.

Person keys (addresses, Notes names, "Last, First") are in ``entity_resolution.people``."""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

# Legal-form words dropped from organisation names (compared after punctuation is removed).
LEGAL_SUFFIXES = frozenset(
    """inc incorporated corp corporation co company ltd limited llc llp lp plc gmbh ag sa sas sarl srl spa bv nv
    oy ab as asa kg kgaa ohg se pty pte kk holding holdings group grp intl aktiengesellschaft
    kommanditgesellschaft gesellschaft mbh haftung beschrankter besloten naamloze vennootschap bvba sprl
    anonyme responsabilite limitee aktiebolag osakeyhtio anonima sp oo""".split()
)
# Multi-token legal forms written with dots/spaces: "s.a." → "sa", "b.v." → "bv", "co. kg"; the last dot
# may be missing ("Iron Compass Supply B.V" where a sentence or a text window ends).
_DOTTED = re.compile(r"\b([a-z])\.\s?([a-z])(?:\.|\b)(?:\s?([a-z])\.)?")
ABBREVIATIONS = {
    "intl": "international", "int'l": "international", "natl": "national", "mfg": "manufacturing",
    "tech": "technology", "technologies": "technology", "svcs": "services", "svc": "services",
    "sys": "systems", "dept": "department", "univ": "university", "assoc": "associates",
    "bros": "brothers", "labs": "laboratories", "lab": "laboratories", "mgmt": "management",
    "st": "saint", "ctr": "center", "centre": "center", "&": "and",
}
STOPWORDS = frozenset({"the", "of", "and", "for", "a", "an", "de", "der", "die", "la", "le", "et", "und"})
_PAREN = re.compile(r"\([^)]*\)")
_NON_WORD = re.compile(r"[^\w&']+|_")


def fold(text: str) -> str:
    """Lowercase, strip accents, unify unicode compatibility forms."""
    if text.isascii():  # NFKD leaves ASCII alone and casefold is lower there: the common case, 5x faster
        return text.lower()
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


@lru_cache(maxsize=200_000)
def name_tokens(name: str, *, drop_legal: bool = True) -> tuple[str, ...]:
    """Normalised tokens of a name: folded, punctuation-free, abbreviations expanded, legal forms dropped."""
    text = fold(name)
    if "." in text:
        text = _DOTTED.sub(lambda m: "".join(g for g in m.groups() if g), text)
    if "(" in text:  # a parenthesised qualifier names a subsidiary ("Acme Holdings (Deutschland) GmbH" is not Acme)
        text = _PAREN.sub(lambda m: " " + m.group(0)[1:-1] + " ", text)
    raw = [t.strip("'") for t in _NON_WORD.split(text.replace("&", " & "))]
    tokens = [ABBREVIATIONS.get(t, t) for t in raw if t]
    if tokens and tokens[0] == "the":
        tokens = tokens[1:]
    if drop_legal:
        kept = [t for t in tokens if t not in LEGAL_SUFFIXES]
        tokens = kept or tokens
    return tuple(t for t in tokens if t != "and") or tuple(tokens)


def normalize_name(name: str) -> str:
    """The comparison key of a name: ``"The ACME Corp."`` → ``"acme"``."""
    return " ".join(name_tokens(name))


def acronym(name: str) -> str:
    """Initials of the significant words (``"International Business Machines"`` → ``"ibm"``); '' if < 2."""
    words = [t for t in name_tokens(name) if t not in STOPWORDS]
    return "".join(w[0] for w in words) if len(words) >= 2 else ""


def legal_acronym(name: str) -> str:
    """Initials including the legal form (``"Stark Freight Ltd."`` → ``"sfl"``); '' if < 3 letters."""
    words = [t for t in name_tokens(name, drop_legal=False) if t not in STOPWORDS]
    return "".join(w[0] for w in words) if len(words) >= 3 else ""


def is_acronym_of(short: str, long: str) -> bool:
    """True when one single-token name is the acronym of the other (``IBM`` ~ ``International Business Machines``)."""
    s_tokens, l_tokens = name_tokens(short), name_tokens(long)
    if len(s_tokens) != 1 or len(l_tokens) < 2:
        return False
    return len(s_tokens[0]) >= 2 and s_tokens[0] == acronym(long)
