"""Chunk entity ids follow the registry: after any change, documents whose ids moved are re-stamped by payload update.

The registry remembers what each document's chunks carry (``linked.entity_ids``); what they should carry is
the entities of the document's mentions. Re-stamping touches only documents where the two differ.
"""

from __future__ import annotations

import json

from core.payload import ENTITY_IDS
from core.store.protocol import VectorStore as ChunkStore
from entity_resolution.registry import RegistryStore

__all__ = ["ChunkStore", "document_entity_ids", "restamp"]


def document_entity_ids(store: RegistryStore, doc_id: str) -> list[str]:
    """The entities a document's mentions belong to now, sorted."""
    rows = store.db.execute(
        "SELECT DISTINCT n.entity_id FROM mentions m JOIN nodes n ON n.type = m.type AND n.key = m.key "
        "WHERE m.doc_id = ? AND n.entity_id IS NOT NULL", (doc_id,)
    ).fetchall()
    return sorted(r[0] for r in rows)


def _wanted(store: RegistryStore) -> dict[str, set[str]]:
    wanted: dict[str, set[str]] = {}
    rows = store.db.execute(
        "SELECT m.doc_id, n.entity_id FROM mentions m JOIN nodes n ON n.type = m.type AND n.key = m.key "
        "WHERE n.entity_id IS NOT NULL"
    )
    for doc_id, entity_id in rows:
        wanted.setdefault(doc_id, set()).add(entity_id)
    return wanted


def restamp(store: RegistryStore, chunks: ChunkStore) -> int:
    """Re-stamp every document whose chunks carry other entity ids than the registry now gives it."""
    with store.lock:
        wanted = _wanted(store)
        stamped = {d: json.loads(ids) for d, ids in store.db.execute("SELECT doc_id, entity_ids FROM linked")}
        stale = [(d, sorted(wanted.get(d, ()))) for d in wanted.keys() | stamped.keys()
                 if sorted(wanted.get(d, ())) != stamped.get(d)]
        for doc_id, ids in stale:
            chunks.set_document_payload(doc_id, {ENTITY_IDS: ids})
        if stale:
            chunks.flush()
        with store.db:
            store.db.execute("BEGIN")
            store.db.executemany(
                "INSERT INTO linked (doc_id, seq, entity_ids) VALUES (?, -1, ?) "
                "ON CONFLICT (doc_id) DO UPDATE SET entity_ids = excluded.entity_ids",
                [(d, json.dumps(ids)) for d, ids in stale],
            )
    return len(stale)
