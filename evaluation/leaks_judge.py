"""Judging one response: every doc id, canary, entity id, entity name and count in it must be explained
by documents the legitimate principal may see (``AccessOracle``); anything else is a leak."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from evaluation.leaks_corpus import CANARY_PATTERN, CorpusPlan
from evaluation.leaks_oracle import AccessOracle, fold

# Generated canaries, and the fixture corpus' own style (``FIN-CANARY-7731``) for --corpus runs.
CANARY = re.compile(rf"{CANARY_PATTERN}|\b[A-Z]+-CANARY-\d{{4}}\b")
MIN_NAME_CHARS = 5


@dataclass(frozen=True)
class Leak:
    cls: str  # ACL class of what leaked
    endpoint: str
    kind: str  # doc_id | canary | entity_id | entity_name | count | error_text | status
    item: str
    principal: str
    request: str


@dataclass
class EntityMap:
    """The steward's (unfiltered) view of the registry: entity id -> documents that mention it, aliases."""

    docs: dict[str, set[str]] = field(default_factory=dict)
    aliases: dict[str, set[str]] = field(default_factory=dict)
    # doc id -> ACL tokens the registry stored for its mentions, read the way the registry reads them.
    # Only to attribute a leak to the document that let it through; never to decide what is a leak.
    stored_acl: dict[str, set[str]] = field(default_factory=dict)


def _alternation(items: Iterable[str], flags: int = 0) -> re.Pattern[str] | None:
    items = sorted({i for i in items if i}, key=len, reverse=True)
    if not items:
        return None
    return re.compile(r"(?<![\w/.:-])(" + "|".join(map(re.escape, items)) + r")(?![\w/.-])", flags)


class Judge:
    """Scans response texts; built once per run, cheap per response (a few compiled regexes)."""

    def __init__(self, oracle: AccessOracle, plan: CorpusPlan, entities: EntityMap) -> None:
        self.oracle, self.plan, self.entities = oracle, plan, entities
        self.canaries = {c.token: c for c in plan.canaries}
        planted = {c.doc_id for c in plan.canaries} | set(plan.doc_classes)
        self._doc_re = _alternation(set(oracle.docs) | planted | {d for ds in entities.docs.values() for d in ds})
        self._entity_re = _alternation(entities.docs)
        names = set(plan.entity_names) | {a for al in entities.aliases.values() for a in al}
        names = {n for n in names if len(n) >= MIN_NAME_CHARS}
        self._name_re = _alternation(names, re.IGNORECASE)
        self._name_owners = {fold(n): oracle.docs_containing(n) for n in names}
        self._visible_cache: dict[frozenset[str], set[str]] = {}
        self.redacted = list(plan.redacted)

    def may_see_raw(self, value, tokens: frozenset[str]) -> bool:  # noqa: ANN001 - leaks_corpus.RedactedValue
        """A redacted value is for readers of its document who hold one of the policy's roles for it."""
        return value.doc_id in self.visible(tokens) and any(f"role:{r}" in tokens for r in value.roles)

    def visible(self, tokens: frozenset[str]) -> set[str]:
        if tokens not in self._visible_cache:
            self._visible_cache[tokens] = self.oracle.visible_docs(tokens)
        return self._visible_cache[tokens]

    def doc_class(self, doc_id: str) -> str:
        return self.plan.doc_classes.get(doc_id) or ("baseline" if doc_id in self.oracle.docs else "unknown")

    def entity_class(self, entity_id: str, tokens: frozenset[str] = frozenset(), claimed: frozenset[str] = frozenset(),
                     shown: frozenset[str] = frozenset()) -> str:
        """The class of the documents that most likely let the entity through: hidden ones shown in the same
        response, else ones the principal's unvouched claim (``user:dana`` from a key that may not assert
        dana) would see, else any hidden one."""
        docs = self.entities.docs.get(entity_id, set())
        hidden = docs - self.visible(tokens)
        stale = {d for d in hidden if self.entities.stored_acl.get(d, set()) & claimed}
        pool = (hidden & shown) or stale or (hidden & self.visible(claimed)) or hidden or docs
        classes = {self.doc_class(d) for d in pool}
        if not hidden & self.visible(claimed):
            aliases = self.entities.aliases.get(entity_id, ())
            classes |= {self.plan.entity_names[a] for a in aliases if a in self.plan.entity_names}
        specific = sorted(classes - {"baseline", "unknown"})
        return specific[0] if specific else (sorted(classes)[0] if classes else "unknown")

    def entity_visible_docs(self, entity_id: str, tokens: frozenset[str]) -> set[str]:
        return self.entities.docs.get(entity_id, set()) & self.visible(tokens)

    def scan(self, text: str, tokens: frozenset[str], *, claimed: frozenset[str] = frozenset(),
             exempt: Iterable[str] = ()) -> list[tuple[str, str, str]]:
        """(class, kind, item) for all in ``text`` that ``tokens`` may not see; ``exempt``: the caller's own input."""
        for item in exempt:
            if item:
                text = text.replace(item, "\x00")
        visible = self.visible(tokens)
        found: list[tuple[str, str, str]] = [
            ("redaction", "redacted_value", f"{v.rule} value of {v.doc_id}")
            for v in self.redacted if v.value in text and not self.may_see_raw(v, tokens)]
        for token in set(CANARY.findall(text)):
            canary = self.canaries.get(token)
            owners = {canary.doc_id} if canary else self.oracle.docs_containing(token)
            if (canary and canary.never) or not owners & visible:
                cls = canary.cls if canary else self.doc_class(min(owners, default=""))
                found.append((cls, "canary", token))
        shown = frozenset(self._doc_re.findall(text)) if self._doc_re else frozenset()
        for doc_id in shown - visible:
            found.append((self.doc_class(doc_id), "doc_id", doc_id))
        if self._entity_re:
            for entity_id in set(self._entity_re.findall(text)):
                if not self.entity_visible_docs(entity_id, tokens):
                    found.append((self.entity_class(entity_id, tokens, claimed, shown), "entity_id", entity_id))
        if self._name_re:
            for name in {fold(n) for n in self._name_re.findall(text)}:
                if not self._name_owners.get(name, set()) & visible:
                    found.append((self._name_class(name, tokens, claimed, shown), "entity_name", name))
        return found

    def _name_class(self, folded: str, tokens: frozenset[str], claimed: frozenset[str], shown: frozenset[str]) -> str:
        for name, cls in self.plan.entity_names.items():
            if fold(name) == folded:
                return cls
        for entity_id, aliases in self.entities.aliases.items():
            if folded in {fold(a) for a in aliases}:
                return self.entity_class(entity_id, tokens, claimed, shown)
        return "entity_names"
