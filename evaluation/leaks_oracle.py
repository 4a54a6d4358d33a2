"""Who may see what, decided from the manifests and the raw files/records alone (never ``ingest.sources``).

Semantics (README, access control): rule, include and exclude globs are anchored at the source root
(``*`` one path segment, ``**`` any number of segments); the first matching rule wins, else
``acl.default``. A record's ACL field (a JSON list, or ``;``- or ``,``-separated) replaces the default
when present and non-empty. A role is valid only in the one grammar of ``core.access`` — the oracle
keeps its own copy of it, and an invalid role string ("exec public") grants nothing (fail closed).
A file reached through a symlink that leaves the source tree is not a document of that source.

Identity: a ``user:<id>`` token is legitimate only for an id the key may assert; roles only those the
key may assert. The oracle answers for that legitimate principal: anything more is a leak.
"""

from __future__ import annotations

import csv
import json
import os
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

import yaml

_ROLE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_USER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@+-]{0,127}$")
_RECORD_SUFFIXES = (".csv", ".json", ".jsonl", ".ndjson")


def glob_regex(pattern: str) -> re.Pattern[str]:
    """An anchored glob: matches the whole relative path, ``**`` spans segments, ``*`` and ``?`` do not."""
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:[^/]+/)*", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(r"\A" + out + r"\Z")


def acl_entry(value: str) -> str | None:
    """The token one ACL entry grants, or None when it is not a valid role / ``user:<id>``."""
    value = value.strip()
    if value == "public":
        return "public"
    if value.startswith("user:"):
        return value if _USER.match(value[5:]) else None
    return f"role:{value}" if _ROLE.match(value) else None


def acl_tokens(entries: list | tuple, *, public: bool = False) -> frozenset[str]:
    tokens = {t for t in (acl_entry(str(e)) for e in entries) if t}
    return frozenset(tokens | ({"public"} if public else set()))


def fold(text: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


@dataclass(frozen=True)
class OracleDoc:
    doc_id: str
    tokens: frozenset[str]  # who may read it
    text: str  # raw text, folded (for entity-name ownership)


@dataclass
class AccessOracle:
    """Every document the manifests describe, with its readers; unknown documents have none."""

    docs: dict[str, OracleDoc] = field(default_factory=dict)
    refused: list[str] = field(default_factory=list)  # manifests the oracle itself finds invalid

    @classmethod
    def from_manifests(cls, paths: list[Path]) -> "AccessOracle":
        oracle = cls()
        for path in paths:
            raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
            root = (Path(path).resolve().parent / raw["path"]).resolve()
            acl = raw.get("acl") or {}
            if raw["kind"] == "files":
                oracle._add_files(raw, root, acl)
            else:
                oracle._add_records(raw, root, acl)
        return oracle

    def _add(self, doc_id: str, tokens: frozenset[str], text: str) -> None:
        self.docs[doc_id] = OracleDoc(doc_id, tokens, fold(text))

    def _add_files(self, raw: dict, root: Path, acl: dict) -> None:
        include = [glob_regex(g) for g in raw.get("include", ["**/*"])]
        exclude = [glob_regex(g) for g in raw.get("exclude", [])]
        rules = [(glob_regex(r["match"]), r.get("roles") or []) for r in acl.get("rules", [])]
        for dirpath, _, names in os.walk(root):  # symlinked folders are not followed
            for name in names:
                path = Path(dirpath) / name
                rel = path.relative_to(root).as_posix()
                if not path.resolve().is_relative_to(root) or not path.is_file():
                    continue  # a link leaving the tree is not part of the source
                if rel.startswith(".") or not any(g.match(rel) for g in include) or any(g.match(rel) for g in exclude):
                    continue
                roles = next((r for g, r in rules if g.match(rel)), acl.get("default", []))
                self._add(f"{raw['source']}:{rel}", acl_tokens(roles, public=acl.get("public", False)),
                          path.read_bytes().decode("utf-8", "replace"))

    def _add_records(self, raw: dict, root: Path, acl: dict) -> None:
        files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.suffix in _RECORD_SUFFIXES)
        for file in files:
            for row in _rows(file):
                native = str(row.get(raw["id_field"], "")).strip()
                if not native:
                    continue
                value = row.get(acl["field"]) if acl.get("field") else None
                roles = _split(value) if value not in (None, "", []) else acl.get("default", [])
                text = " ".join(str(v) for v in row.values())
                self._add(f"{raw['source']}:{native}", acl_tokens(roles, public=acl.get("public", False)), text)

    def visible(self, doc_id: str, tokens: frozenset[str]) -> bool:
        doc = self.docs.get(doc_id)
        return doc is not None and bool(doc.tokens & tokens)

    def visible_docs(self, tokens: frozenset[str]) -> set[str]:
        return {d for d, doc in self.docs.items() if doc.tokens & tokens}

    def docs_containing(self, name: str) -> set[str]:
        needle = fold(name)
        return {d for d, doc in self.docs.items() if needle in doc.text}


def _split(value: object) -> list[str]:
    if isinstance(value, list):
        return [str(v) for v in value]
    return [p for p in re.split(r"[;,]", str(value)) if p.strip()]


def _rows(file: Path) -> list[dict]:
    text = file.read_text(encoding="utf-8-sig")
    if file.suffix == ".csv":
        return list(csv.DictReader(text.splitlines()))
    if file.suffix == ".json":
        return [r for r in json.loads(text) if isinstance(r, dict)]
    rows = []
    for line in text.splitlines():
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if isinstance(row, dict):
            rows.append(row)
    return rows


@dataclass(frozen=True)
class KeyGrant:
    """What one API key may assert, as the oracle understands the contract (CONTRACT §6)."""

    roles: tuple[str, ...]  # "*" = any
    principals: tuple[str, ...] = ()  # ids the key may assert; "*" = any; () = none

    def legit_tokens(self, principal_id: str | None, roles: list[str]) -> frozenset[str]:
        """The token set the request may be answered with: nothing the key could not vouch for."""
        tokens = {"public"}
        for role in roles:
            token = acl_entry(role)
            if token and token.startswith("role:") and ("*" in self.roles or role in self.roles):
                tokens.add(token)
        if principal_id and _USER.match(principal_id) and ("*" in self.principals or principal_id in self.principals):
            tokens.add(f"user:{principal_id}")
        return frozenset(tokens)

    def must_refuse(self, principal_id: str | None, roles: list[str]) -> bool:
        """The contract says 403/422: a role the key may not assert, or a role that is no role."""
        bad_role = any(acl_entry(r) is None or acl_entry(r).startswith("user:") for r in roles)
        foreign = "*" not in self.roles and any(r not in self.roles for r in roles)
        return bad_role or foreign
