"""What a reader may see of the registry: names, aliases, mentions and documents only through visible documents.

``acl_tokens=None`` is the steward's view (CLI, everything); any token set filters every field.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from dataclasses import dataclass

from core.errors import NotFoundError
from entity_resolution.records import RECORD_WEIGHT
from entity_resolution.normalize import fold
from entity_resolution.people import display_name
from entity_resolution.registry import RegistryStore, visible_clause


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


def entity_view(
    store: RegistryStore, entity_id: str, *, acl_tokens: Collection[str] | None, detail: bool = True
) -> EntityView:
    """The entity, or NotFoundError when it does not exist or none of its documents is visible."""
    row = store.db.execute("SELECT type, name FROM entities WHERE entity_id = ?", (entity_id,)).fetchone()
    if not row:
        raise NotFoundError(f"no entity {entity_id!r}")
    clause, params = visible_clause(acl_tokens)
    seen = store.db.execute(
        "SELECT m.source, m.doc_id, m.surface, m.key, m.from_text FROM nodes n JOIN mentions m "
        f"ON m.type = n.type AND m.key = n.key WHERE n.entity_id = ? AND {clause} ORDER BY m.id", (entity_id, *params)
    ).fetchall()
    if not seen:
        raise NotFoundError(f"no entity {entity_id!r}")
    counts: dict[str, int] = {}
    for r in seen:  # record fields outweigh free-text hits, as for the canonical name
        counts[r[2]] = counts.get(r[2], 0) + (1 if r[4] else RECORD_WEIGHT)
    if acl_tokens is None or (row[1] in counts and row[0] != "person"):
        name = row[1]
    elif row[0] == "person":  # the display name derived from visible surfaces only
        name = display_name(counts)
    else:
        name = max(counts, key=lambda s: (counts[s], -list(counts).index(s)))
    visible_keys = {r[3] for r in seen}
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
    """Entities whose visible aliases contain ``query`` (case-insensitive), most-mentioned first.

    Visibility and the alias match are SQL conditions: only the top ``limit`` entities reach Python."""
    clause, params = visible_clause(acl_tokens)
    needle = fold(query.strip())
    rows = store.db.execute(
        "SELECT n.entity_id, COUNT(*) AS hits FROM mentions m JOIN nodes n ON n.type = m.type AND n.key = m.key "
        f"WHERE n.entity_id IS NOT NULL AND {clause} AND instr(m.surface_fold, ?) > 0 "
        "GROUP BY n.entity_id ORDER BY hits DESC, n.entity_id LIMIT ?", (*params, needle, limit)
    ).fetchall()
    return [entity_view(store, e, acl_tokens=acl_tokens, detail=False) for e, _ in rows]
