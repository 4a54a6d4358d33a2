"""Redaction policies: detectors (email, phone, IBAN, card number) and custom patterns, each with the
roles allowed to see the raw value. Applied when text is served, so one index serves every role; the
index itself (dense and BM25 text) is built from fully masked text, so nobody can search by a raw value.

Policies travel with each chunk's payload (``core.payload.REDACT``) as plain dicts.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass

import phonenumbers
import regex

from core.access import role_token

DETECTORS = ("email", "phone", "iban", "card", "pattern")
PATTERN_TIMEOUT_S = 0.05  # a custom pattern that takes longer fails closed (the whole text is withheld)
_EMAIL = regex.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
_IBAN = regex.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?\b")
_CARD = regex.compile(r"(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d-])")


@dataclass(frozen=True)
class RedactionRule:
    """What to hide, and which roles may see it raw (``roles`` empty: nobody)."""

    name: str
    detector: str
    roles: tuple[str, ...] = ()
    pattern: str = ""
    region: str = "US"  # phones written without a country code are read in this region

    def to_payload(self) -> dict:
        return {"name": self.name, "detector": self.detector, "roles": list(self.roles),
                "pattern": self.pattern, "region": self.region}

    @classmethod
    def from_payload(cls, raw: dict) -> "RedactionRule":
        return cls(raw["name"], raw["detector"], tuple(raw.get("roles") or ()), raw.get("pattern", ""),
                   raw.get("region", "US"))


@dataclass(frozen=True)
class Redacted:
    """Text as served, and the spans (offsets into the original text) that were hidden."""

    text: str
    spans: tuple[tuple[int, int, str], ...]
    withheld: bool = False  # a custom pattern timed out: nothing of the text is shown


class _Timeout(Exception):
    pass


def _luhn(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch) * (2 if i % 2 else 1)
        total += d - 9 if d > 9 else d
    return total % 10 == 0


def _iban_ok(value: str) -> bool:
    compact = value.replace(" ", "")
    rearranged = compact[4:] + compact[:4]
    return len(compact) >= 15 and int("".join(str(int(c, 36)) for c in rearranged)) % 97 == 1


def _matches(text: str, rule: RedactionRule) -> Iterable[tuple[int, int]]:
    if rule.detector == "email":
        yield from (m.span() for m in _EMAIL.finditer(text))
    elif rule.detector == "phone":
        for match in phonenumbers.PhoneNumberMatcher(text, rule.region or "US"):
            yield match.start, match.end
    elif rule.detector == "iban":
        yield from (m.span() for m in _IBAN.finditer(text) if _iban_ok(m.group()))
    elif rule.detector == "card":
        digits = ((m.span(), "".join(c for c in m.group() if c.isdigit())) for m in _CARD.finditer(text))
        yield from (span for span, d in digits if 13 <= len(d) <= 19 and _luhn(d))
    else:
        try:
            yield from (m.span() for m in regex.finditer(rule.pattern, text, timeout=PATTERN_TIMEOUT_S))
        except TimeoutError as exc:
            raise _Timeout(rule.name) from exc


def find_spans(text: str, rules: Sequence[RedactionRule]) -> list[tuple[int, int, str]]:
    """Non-overlapping spans of ``text`` the rules hide, in order (the earliest, then longest, wins)."""
    found = sorted(((s, e, r.name) for r in rules for s, e in _matches(text, r) if e > s),
                   key=lambda f: (f[0], -f[1]))
    merged: list[tuple[int, int, str]] = []
    for start, end, name in found:
        if merged and start < merged[-1][1]:
            continue
        merged.append((start, end, name))
    return merged


def hidden_from(rules: Sequence[RedactionRule], acl_tokens: Collection[str] | None) -> list[RedactionRule]:
    """The rules that apply to a reader (``None``: nobody is exempt, e.g. the index itself)."""
    tokens = set(acl_tokens or ())
    return [r for r in rules if acl_tokens is None or not ({role_token(x) for x in r.roles} & tokens)]


def redact(text: str, rules: Sequence[RedactionRule], acl_tokens: Collection[str] | None) -> Redacted:
    """``text`` with every value the reader may not see replaced by ``[REDACTED:<rule>]``."""
    applicable = hidden_from(rules, acl_tokens)
    if not applicable or not text:
        return Redacted(text, ())
    try:
        spans = find_spans(text, applicable)
    except _Timeout as exc:
        return Redacted(f"[REDACTED:{exc.args[0]}: text withheld]", ((0, len(text), str(exc.args[0])),), True)
    parts, cursor = [], 0
    for start, end, name in spans:
        parts += [text[cursor:start], f"[REDACTED:{name}]"]
        cursor = end
    parts.append(text[cursor:])
    return Redacted("".join(parts), tuple(spans))


def rules_of(payload_rules: Iterable[dict] | None) -> tuple[RedactionRule, ...]:
    """Rules as stored in a chunk payload."""
    return tuple(RedactionRule.from_payload(r) for r in payload_rules or ())


def policy_digest(rules: Sequence[RedactionRule]) -> str:
    """Changes whenever the policy does, so documents are re-processed when it changes."""
    body = json.dumps([r.to_payload() for r in rules], sort_keys=True)
    return hashlib.sha256(body.encode()).hexdigest()[:16] if rules else ""


def mask_for_index(text: str, rules: Sequence[RedactionRule]) -> str:
    """``text`` with every value replaced by its rule's name: what dense and BM25 vectors are built from."""
    if not rules or not text:
        return text
    try:
        spans = find_spans(text, rules)
    except _Timeout:
        return ""
    parts, cursor = [], 0
    for start, end, name in spans:
        parts += [text[cursor:start], name]
        cursor = end
    parts.append(text[cursor:])
    return "".join(parts)


def redact_passage(passage, payload_rules: Iterable[dict] | None, acl_tokens: Collection[str]):  # noqa: ANN001, ANN201
    """A ``core.models.Passage`` as this reader may see it. Its span still points into the stored text;
    content hashes are withheld where something was hidden (a hash would confirm a guessed value)."""
    from dataclasses import replace

    rules = rules_of(payload_rules)
    result, title = redact(passage.text, rules, acl_tokens), redact(passage.title, rules, acl_tokens)
    if not result.spans and not title.spans:
        return passage
    return replace(passage, text=result.text, title=title.text, content_hashes=(),
                   redactions=len(result.spans) + len(title.spans))


def redact_hit(hit, acl_tokens: Collection[str]):  # noqa: ANN001, ANN201 - core.models.Hit
    """A search hit whose payload text is as this reader may see it."""
    from dataclasses import replace

    from core import payload as P

    rules = rules_of(hit.payload.get(P.REDACT))
    if not rules:
        return hit
    text, title = (redact(hit.payload.get(key) or "", rules, acl_tokens) for key in (P.TEXT, P.TITLE))
    if not text.spans and not title.spans:
        return hit
    kept = {k: v for k, v in hit.payload.items() if k not in P.DERIVED_FROM_TEXT}
    return replace(hit, payload={**kept, P.TEXT: text.text, P.TITLE: title.text, P.CONTENT_HASH: ""})
