"""The entity registry in SQLite: mentions (with their documents' ACL tokens), nodes, entities, evidence, overrides."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable
from pathlib import Path

from entity_resolution.blocking import block_keys
from entity_resolution.records import Mention, Node
from entity_resolution.settings import DEFAULT_SETTINGS, ResolutionSettings

_SCHEMA = """
CREATE TABLE IF NOT EXISTS mentions (
    id INTEGER PRIMARY KEY AUTOINCREMENT, doc_id TEXT NOT NULL, source TEXT NOT NULL, type TEXT NOT NULL,
    surface TEXT NOT NULL, key TEXT NOT NULL, acl TEXT NOT NULL, attributes TEXT NOT NULL DEFAULT '[]',
    from_text INTEGER NOT NULL DEFAULT 0,
    UNIQUE (doc_id, type, surface));
CREATE INDEX IF NOT EXISTS mentions_by_key ON mentions (type, key);
CREATE TABLE IF NOT EXISTS nodes (
    type TEXT NOT NULL, key TEXT NOT NULL, seq INTEGER NOT NULL, entity_id TEXT,
    PRIMARY KEY (type, key));
CREATE INDEX IF NOT EXISTS nodes_by_entity ON nodes (entity_id);
CREATE TABLE IF NOT EXISTS blocks (block TEXT NOT NULL, type TEXT NOT NULL, key TEXT NOT NULL,
    PRIMARY KEY (block, type, key));
CREATE TABLE IF NOT EXISTS entities (entity_id TEXT PRIMARY KEY, type TEXT NOT NULL, name TEXT NOT NULL,
    canonical_key TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS evidence (entity_id TEXT NOT NULL, key_a TEXT NOT NULL, key_b TEXT NOT NULL,
    weight REAL NOT NULL, detail TEXT NOT NULL, origin TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS evidence_by_entity ON evidence (entity_id);
CREATE TABLE IF NOT EXISTS overrides (id INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL,
    type TEXT NOT NULL, key_a TEXT NOT NULL, key_b TEXT NOT NULL, note TEXT NOT NULL DEFAULT '');
"""


class RegistryStore:
    """Low-level storage; resolution logic lives in ``entity_resolution.steward`` and ``linker``."""

    def __init__(self, path: Path | str, settings: ResolutionSettings = DEFAULT_SETTINGS) -> None:
        if str(path) != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.settings = settings
        self.lock = threading.RLock()
        self.db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.executescript(_SCHEMA)

    def close(self) -> None:
        self.db.close()

    # -- writes -----------------------------------------------------------------------------------------
    def replace_document_mentions(self, doc_id: str, mentions: Iterable[Mention]) -> list[tuple[str, str]]:
        """Replace what ``doc_id`` mentions; returns the (type, key) nodes that did not exist before."""
        new_nodes: list[tuple[str, str]] = []
        with self.lock, self.db:
            self.db.execute("BEGIN")
            self.db.execute("DELETE FROM mentions WHERE doc_id = ?", (doc_id,))
            for m in mentions:
                key = m.key
                if not key:
                    continue
                self.db.execute(
                    "INSERT OR IGNORE INTO mentions (doc_id, source, type, surface, key, acl, attributes, from_text) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (doc_id, m.source, m.type, m.surface, key, " ".join(sorted(m.acl)), json.dumps(m.attributes),
                     int(m.from_text)),
                )
                if self._add_node(m.type, key):
                    new_nodes.append((m.type, key))
        return new_nodes

    def _add_node(self, entity_type: str, key: str) -> bool:
        seq = self.db.execute("SELECT COALESCE(MAX(seq), -1) + 1 FROM nodes").fetchone()[0]
        inserted = self.db.execute(
            "INSERT OR IGNORE INTO nodes (type, key, seq) VALUES (?, ?, ?)", (entity_type, key, seq)
        ).rowcount
        if inserted:
            self.db.executemany(
                "INSERT OR IGNORE INTO blocks (block, type, key) VALUES (?, ?, ?)",
                [(b, entity_type, key) for b in block_keys(entity_type, key, self.settings.blocking_keys)],
            )
        return bool(inserted)

    def add_override(self, kind: str, entity_type: str, key_a: str, key_b: str, note: str = "") -> None:
        with self.lock, self.db:
            self.db.execute(
                "INSERT INTO overrides (kind, type, key_a, key_b, note) VALUES (?, ?, ?, ?, ?)",
                (kind, entity_type, key_a, key_b, note),
            )

    # -- reads ------------------------------------------------------------------------------------------
    def load_nodes(self, where: str = "", params: tuple = ()) -> list[Node]:
        """Nodes (with surfaces and attributes from their mentions), in first-seen order."""
        rows = self.db.execute(f"SELECT type, key, seq FROM nodes {where} ORDER BY seq", params).fetchall()
        nodes = {(t, k): Node(t, k, seq) for t, k, seq in rows}
        if not nodes:
            return []
        for t, k, surface, attributes, from_text in self._mentions_of(list(nodes)):
            node = nodes[(t, k)]
            node.count(surface, from_text=bool(from_text))
            for name, value in json.loads(attributes):
                node.attributes.setdefault(name, set()).add(value)
        return list(nodes.values())

    def _mentions_of(self, keys: list[tuple[str, str]]) -> list[tuple]:
        if len(keys) > 500:
            return self.db.execute("SELECT type, key, surface, attributes, from_text FROM mentions ORDER BY id").fetchall()
        out: list[tuple] = []
        for t, k in keys:
            out.extend(self.db.execute(
                "SELECT type, key, surface, attributes, from_text FROM mentions WHERE type = ? AND key = ? ORDER BY id", (t, k)
            ).fetchall())
        wanted = set(keys)
        return [r for r in out if (r[0], r[1]) in wanted]

    def candidate_keys(self, entity_type: str, key: str) -> set[str]:
        """Keys sharing a (not oversized) block with ``key``."""
        found: set[str] = set()
        for block in block_keys(entity_type, key, self.settings.blocking_keys):
            rows = self.db.execute(
                "SELECT key FROM blocks WHERE block = ? LIMIT ?", (block, self.settings.max_block_size + 1)
            ).fetchall()
            if len(rows) <= self.settings.max_block_size:
                found.update(r[0] for r in rows)
        found.discard(key)
        return found

    def overrides(self) -> list[tuple[str, str, str, str]]:
        return self.db.execute("SELECT kind, type, key_a, key_b FROM overrides ORDER BY id").fetchall()

    def entity_of(self, entity_type: str, key: str) -> str | None:
        row = self.db.execute("SELECT entity_id FROM nodes WHERE type = ? AND key = ?", (entity_type, key)).fetchone()
        return row[0] if row else None

    def keys_of(self, entity_id: str) -> list[tuple[str, str]]:
        return self.db.execute(
            "SELECT type, key FROM nodes WHERE entity_id = ? ORDER BY seq", (entity_id,)
        ).fetchall()
