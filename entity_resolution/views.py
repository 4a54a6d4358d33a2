"""What a reader may see of the registry: names, aliases, mentions and documents only through visible documents.

``acl_tokens=None`` is the steward's view (CLI, everything); any token set filters every field.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from dataclasses import dataclass

from core.errors import NotFoundError
from entity_resolution.records import RECORD_WEIGHT
from entity_resolution.registry import RegistryStore


@dataclass(frozen=True)
class MentionView:
    source: str
    doc_id: str
    surface: str


@dataclass(frozen=True)
class EntityView:
    """One entity as the reader may see it."""

    entity_id: str
    type: str
    name: str
    aliases: tuple[str, ...]
    documents: int
    mentions: tuple[MentionView, ...] = ()
    evidence: tuple[dict, ...] = ()

    def to_dict(self) -> dict:
        return {
            "entity_id": self.entity_id, "type": self.type, "name": self.name, "aliases": list(self.aliases),
            "documents": self.documents, "mentions": [m.__dict__ for m in self.mentions],
            "evidence": list(self.evidence),
        }


def _visible(acl: str, tokens: Collection[str] | None) -> bool:
    return tokens is None or bool(set(acl.split()) & set(tokens))


def entity_view(
    store: RegistryStore, entity_id: str, *, acl_tokens: Collection[str] | None, detail: bool = True
) -> EntityView:
    """The entity, or NotFoundError when it does not exist or none of its documents is visible."""
    row = store.db.execute("SELECT type, name FROM entities WHERE entity_id = ?", (entity_id,)).fetchone()
    if not row:
        raise NotFoundError(f"no entity {entity_id!r}")
    rows = store.db.execute(
        "SELECT m.source, m.doc_id, m.surface, m.acl, m.key, m.from_text FROM mentions m JOIN nodes n "
        "ON n.type = m.type AND n.key = m.key WHERE n.entity_id = ? ORDER BY m.id", (entity_id,)
    ).fetchall()
    seen = [r for r in rows if _visible(r[3], acl_tokens)]
    if not seen and acl_tokens is not None:
        raise NotFoundError(f"no entity {entity_id!r}")
    counts: dict[str, int] = {}
    for r in seen:  # record fields outweigh free-text hits, as for the canonical name
        counts[r[2]] = counts.get(r[2], 0) + (1 if r[5] else RECORD_WEIGHT)
    name = row[1] if row[1] in counts or acl_tokens is None else max(counts, key=lambda s: (counts[s], -list(counts).index(s)))
    visible_keys = {r[4] for r in seen}
    return EntityView(
        entity_id, row[0], name, tuple(counts), len({r[1] for r in seen}),
        tuple(MentionView(r[0], r[1], r[2]) for r in seen) if detail else (),
        _evidence(store, entity_id, visible_keys, acl_tokens) if detail else (),
    )


def _evidence(store: RegistryStore, entity_id: str, keys: set[str], tokens: Collection[str] | None) -> tuple[dict, ...]:
    rows = store.db.execute(
        "SELECT key_a, key_b, weight, detail, origin FROM evidence WHERE entity_id = ?", (entity_id,)
    ).fetchall()
    return tuple(
        {"a": a, "b": b, "weight": round(w, 3), "origin": o, "detail": json.loads(d)}
        for a, b, w, d, o in rows if tokens is None or (a in keys and b in keys)
    )


def list_entities(
    store: RegistryStore, *, query: str = "", acl_tokens: Collection[str] | None, limit: int = 50
) -> list[EntityView]:
    """Entities whose visible aliases contain ``query`` (case-insensitive), most-mentioned first."""
    from entity_resolution.normalize import fold

    needle = fold(query.strip())
    rows = store.db.execute(
        "SELECT n.entity_id, m.surface, m.acl FROM mentions m JOIN nodes n ON n.type = m.type AND n.key = m.key "
        "WHERE n.entity_id IS NOT NULL"
    ).fetchall()
    hits: dict[str, int] = {}
    for entity_id, surface, acl in rows:
        if _visible(acl, acl_tokens) and (not needle or needle in fold(surface)):
            hits[entity_id] = hits.get(entity_id, 0) + 1
    ranked = sorted(hits, key=lambda e: (-hits[e], e))[:limit]
    return [entity_view(store, e, acl_tokens=acl_tokens, detail=False) for e in ranked]
