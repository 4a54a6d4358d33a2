"""Resolution over the registry: incremental linking of new names, full rebuilds, and steward overrides.

Overrides are stored on normalised keys (not entity ids), so they apply again on every rebuild and win:
``merge`` adds must-link rules, ``split`` and ``never_link`` add cannot-link rules.
"""

from __future__ import annotations

import json
from dataclasses import replace

from core.errors import ConfigurationError, NotFoundError
from entity_resolution.cluster import Constraints
from entity_resolution.compare import cluster_weight, score_nodes
from entity_resolution.records import Node
from entity_resolution.registry import RegistryStore, new_entity_id
from entity_resolution.resolve import ResolvedEntity, canonical_name, resolve_nodes
from entity_resolution.stamps import ChunkStore, restamp

MUST, CANNOT, PIN = "must_link", "cannot_link", "pin_id"  # pin: (key, entity id) keeps an id after merge/split


def rebuild(store: RegistryStore, *, chunks: ChunkStore | None = None) -> dict:
    """Re-cluster every node from scratch with the steward rules; returns counts.

    Given the chunk store, chunks whose entity ids changed are re-stamped before this returns."""
    nodes = store.load_nodes()
    index = {(n.type, n.key): i for i, n in enumerate(nodes)}
    must, cannot = [], []
    for kind, entity_type, a, b in store.overrides():
        if kind in (MUST, CANNOT) and (entity_type, a) in index and (entity_type, b) in index:
            (must if kind == MUST else cannot).append((index[(entity_type, a)], index[(entity_type, b)]))
    result = resolve_nodes(nodes, store.settings, constraints=Constraints(tuple(must), tuple(cannot)))
    entities, mapping = _apply_pins(_keep_ids(store, list(result.entities)), store.overrides())
    with store.lock, store.db:
        store.db.execute("BEGIN")
        store.db.execute("DELETE FROM entities")
        store.db.execute("DELETE FROM evidence WHERE origin = 'auto'")
        store.db.executemany(
            "UPDATE nodes SET entity_id = ? WHERE type = ? AND key = ?",
            [(eid, t, k) for (t, k), eid in mapping.items()],
        )
        for entity in entities:
            _write_entity(store, entity)
    restamped = restamp(store, chunks) if chunks is not None else 0
    return {"entities": len(entities), "nodes": len(nodes), "comparisons": result.scored_pairs, "restamped": restamped}


def _keep_ids(store: RegistryStore, entities: list[ResolvedEntity]) -> list[ResolvedEntity]:
    """Each cluster keeps the stored id of its earliest key that still has one free; else a new random id.

    Ids are random (they reveal nothing), so stability across rebuilds comes from the registry, not a hash."""
    taken: set[str] = set()
    out = []
    for entity in entities:
        order = [entity.canonical_key] + [k for k in entity.keys if k != entity.canonical_key]
        previous = (store.entity_of(entity.type, k) for k in order)
        kept = next((e for e in previous if e and e not in taken), None) or new_entity_id()
        taken.add(kept)
        out.append(replace(entity, entity_id=kept))
    return out


def _apply_pins(entities: list[ResolvedEntity], rules: list) -> tuple[list[ResolvedEntity], dict]:
    """Steward pins: the entity holding a pinned key keeps the pinned id; a clash takes a derived id."""
    for kind, entity_type, key, pinned in rules:
        if kind != PIN:
            continue
        holder = next((i for i, e in enumerate(entities) if e.type == entity_type and key in e.keys), None)
        if holder is None or entities[holder].entity_id == pinned:
            continue
        for i, entity in enumerate(entities):
            if entity.entity_id == pinned:
                entities[i] = replace(entity, entity_id=new_entity_id())
        entities[holder] = replace(entities[holder], entity_id=pinned)
    mapping = {(e.type, k): e.entity_id for e in entities for k in e.keys}
    return entities, mapping


def _write_entity(store: RegistryStore, entity: ResolvedEntity) -> None:
    store.db.execute(
        "INSERT OR REPLACE INTO entities (entity_id, type, name, canonical_key) VALUES (?, ?, ?, ?)",
        (entity.entity_id, entity.type, entity.name, entity.canonical_key),
    )
    store.db.executemany(
        "INSERT INTO evidence (entity_id, key_a, key_b, weight, detail, origin) VALUES (?, ?, ?, ?, ?, 'auto')",
        [(entity.entity_id, a, b, s.weight, json.dumps(s.to_dict())) for a, b, s in entity.evidence],
    )


def link_new_nodes(store: RegistryStore, new: list[tuple[str, str]]) -> None:
    """Attach each new (type, key) to the best compatible existing entity, or start a new one."""
    rules = store.overrides()
    for entity_type, key in new:
        node = store.load_nodes("WHERE type = ? AND key = ?", (entity_type, key))[0]
        target = _forced_entity(store, rules, node) or _best_entity(store, rules, node)
        entity_id = target or new_entity_id()
        with store.lock, store.db:
            store.db.execute("UPDATE nodes SET entity_id = ? WHERE type = ? AND key = ?", (entity_id, entity_type, key))
        refresh_entity(store, entity_id)


def _forced_entity(store: RegistryStore, rules: list, node: Node) -> str | None:
    for kind, entity_type, a, b in rules:
        if kind == MUST and entity_type == node.type and node.key in (a, b):
            other = store.entity_of(entity_type, b if node.key == a else a)
            if other:
                return other
    return None


def _best_entity(store: RegistryStore, rules: list, node: Node) -> str | None:
    settings = store.settings
    forbidden = {b if a == node.key else a for kind, t, a, b in rules if kind == CANNOT and t == node.type and node.key in (a, b)}
    best: tuple[float, str] | None = None
    for key in store.candidate_keys(node.type, node.key):
        entity_id = store.entity_of(node.type, key)
        if not entity_id:
            continue
        other = store.load_nodes("WHERE type = ? AND key = ?", (node.type, key))[0]
        weight = score_nodes(node, other, settings).weight
        if weight >= settings.match_weight and (best is None or weight > best[0]):
            if _fits(store, node, entity_id, forbidden):
                best = (weight, entity_id)
    return best[1] if best else None


def _fits(store: RegistryStore, node: Node, entity_id: str, forbidden: set[str]) -> bool:
    """Anti-chaining: the new node must not contradict any member of the entity."""
    members = store.load_nodes("WHERE entity_id = ?", (entity_id,))
    if any(m.key in forbidden for m in members) or len(members) > 50:
        return False
    return all(cluster_weight(node, m, store.settings) >= store.settings.cluster_min_weight for m in members)


def refresh_entity(store: RegistryStore, entity_id: str) -> None:
    """Recompute an entity's canonical key and name from its member nodes (earliest key wins)."""
    members = store.load_nodes("WHERE entity_id = ?", (entity_id,))
    if not members:
        with store.lock, store.db:
            store.db.execute("DELETE FROM entities WHERE entity_id = ?", (entity_id,))
        return
    surfaces: dict[str, int] = {}
    for member in members:
        for surface, count in member.surfaces.items():
            surfaces[surface] = surfaces.get(surface, 0) + count
    with store.lock, store.db:
        store.db.execute(
            "INSERT OR REPLACE INTO entities (entity_id, type, name, canonical_key) VALUES (?, ?, ?, ?)",
            (entity_id, members[0].type, canonical_name(surfaces, members[0].type) if surfaces else members[0].key, members[0].key),
        )


def merge_entities(
    store: RegistryStore, entity_id: str, other_id: str, *, note: str = "", chunks: ChunkStore | None = None
) -> str:
    """Steward merge: the two entities become one on this and every later run; returns the surviving id."""
    a, b = _canonical(store, entity_id), _canonical(store, other_id)
    if a[0] != b[0]:
        raise ConfigurationError(f"cannot merge a {a[0]} with a {b[0]}")
    store.add_override(MUST, a[0], a[1], b[1], note)
    store.add_override(PIN, a[0], a[1], entity_id, note)
    _drop_conflicting_cannot_links(store, a[0], {k for _, k in store.keys_of(entity_id)}, {k for _, k in store.keys_of(other_id)})
    rebuild(store, chunks=chunks)
    return store.entity_of(a[0], a[1]) or entity_id


def _drop_conflicting_cannot_links(store: RegistryStore, entity_type: str, left: set[str], right: set[str]) -> None:
    with store.lock, store.db:
        for key_a in left:
            for key_b in right:
                store.db.execute(
                    "DELETE FROM overrides WHERE kind = ? AND type = ? AND ((key_a = ? AND key_b = ?) OR (key_a = ? AND key_b = ?))",
                    (CANNOT, entity_type, key_a, key_b, key_b, key_a),
                )


def split_entity(
    store: RegistryStore, entity_id: str, surfaces: list[str], *, note: str = "", chunks: ChunkStore | None = None
) -> str:
    """Steward split: the named aliases leave the entity for good; returns the new entity's id."""
    keys = store.keys_of(entity_id)
    if not keys:
        raise NotFoundError(f"no entity {entity_id!r}")
    entity_type = keys[0][0]
    from entity_resolution.records import mention_key

    moving = {mention_key(entity_type, s) for s in surfaces} & {k for _, k in keys}
    staying = [k for _, k in keys if k not in moving]
    if not moving or not staying:
        raise ConfigurationError(
            "split needs at least one alias to move and one to stay; aliases with the same normalised form "
            f"({', '.join(sorted(moving)) or 'none matched'}) move together"
        )
    with store.lock, store.db:
        store.db.execute("DELETE FROM overrides WHERE kind = ? AND type = ? AND (key_a IN ({q}) OR key_b IN ({q}))".format(
            q=",".join("?" * len(moving))), (MUST, entity_type, *moving, *moving))
    for a in moving:
        for b in staying:
            store.add_override(CANNOT, entity_type, a, b, note)
    store.add_override(PIN, entity_type, staying[0], entity_id, note)
    ordered = sorted(moving)
    for a, b in zip(ordered, ordered[1:]):
        store.add_override(MUST, entity_type, a, b, note)
    rebuild(store, chunks=chunks)
    return store.entity_of(entity_type, ordered[0]) or ""


def never_link(
    store: RegistryStore, entity_id: str, other_id: str, *, note: str = "", chunks: ChunkStore | None = None
) -> None:
    """Steward rule: these two entities must never be merged automatically."""
    entity_type, _ = _canonical(store, entity_id)
    _canonical(store, other_id)
    for _, key_a in store.keys_of(entity_id):
        for _, key_b in store.keys_of(other_id):
            store.add_override(CANNOT, entity_type, key_a, key_b, note)
    rebuild(store, chunks=chunks)


def _canonical(store: RegistryStore, entity_id: str) -> tuple[str, str]:
    row = store.db.execute("SELECT type, canonical_key FROM entities WHERE entity_id = ?", (entity_id,)).fetchone()
    if not row:
        raise NotFoundError(f"no entity {entity_id!r}")
    return row[0], row[1]
