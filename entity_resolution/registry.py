"""The entity registry in SQLite: mentions (with their documents' ACL tokens), nodes, entities, evidence, overrides."""

from __future__ import annotations

import json
import secrets
import sqlite3
import threading
from collections.abc import Collection, Iterable
from pathlib import Path

from entity_resolution.blocking import block_keys
from entity_resolution.normalize import fold
from entity_resolution.records import Mention, Node
from entity_resolution.settings import DEFAULT_SETTINGS, ResolutionSettings

_SCHEMA = """
CREATE TABLE IF NOT EXISTS mentions (
    id INTEGER PRIMARY KEY AUTOINCREMENT, doc_id TEXT NOT NULL, source TEXT NOT NULL, type TEXT NOT NULL,
    surface TEXT NOT NULL, key TEXT NOT NULL, attributes TEXT NOT NULL DEFAULT '[]',
    from_text INTEGER NOT NULL DEFAULT 0, surface_fold TEXT NOT NULL DEFAULT '',
    UNIQUE (doc_id, type, surface));
CREATE INDEX IF NOT EXISTS mentions_by_key ON mentions (type, key);
CREATE INDEX IF NOT EXISTS mentions_by_doc ON mentions (doc_id);
CREATE TABLE IF NOT EXISTS doc_acl (doc_id TEXT NOT NULL, token TEXT NOT NULL, PRIMARY KEY (doc_id, token));
CREATE INDEX IF NOT EXISTS doc_acl_by_token ON doc_acl (token, doc_id);
CREATE TABLE IF NOT EXISTS linked (doc_id TEXT PRIMARY KEY, seq INTEGER NOT NULL, entity_ids TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS nodes (
    type TEXT NOT NULL, key TEXT NOT NULL, seq INTEGER NOT NULL, entity_id TEXT,
    PRIMARY KEY (type, key));
CREATE INDEX IF NOT EXISTS nodes_by_entity ON nodes (entity_id);
CREATE INDEX IF NOT EXISTS nodes_by_seq ON nodes (seq);
CREATE TABLE IF NOT EXISTS blocks (block TEXT NOT NULL, type TEXT NOT NULL, key TEXT NOT NULL,
    PRIMARY KEY (block, type, key));
CREATE INDEX IF NOT EXISTS blocks_by_key ON blocks (type, key);
CREATE TABLE IF NOT EXISTS entities (entity_id TEXT PRIMARY KEY, type TEXT NOT NULL, name TEXT NOT NULL,
    canonical_key TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS evidence (entity_id TEXT NOT NULL, key_a TEXT NOT NULL, key_b TEXT NOT NULL,
    weight REAL NOT NULL, detail TEXT NOT NULL, origin TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS evidence_by_entity ON evidence (entity_id);
CREATE TABLE IF NOT EXISTS overrides (id INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL,
    type TEXT NOT NULL, key_a TEXT NOT NULL, key_b TEXT NOT NULL, note TEXT NOT NULL DEFAULT '');
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""


def new_entity_id() -> str:
    """A random id: it says nothing about the names behind it (a name-derived hash confirms guesses offline)."""
    return f"ent_{secrets.token_hex(8)}"


def visible_clause(tokens: Collection[str] | None, doc_column: str = "m.doc_id") -> tuple[str, tuple]:
    """SQL condition: the row's document carries one of ``tokens`` (``None``: the steward sees all; empty: none)."""
    if tokens is None:
        return "1", ()
    wanted = tuple(sorted(set(tokens)))
    if not wanted:
        return "0", ()
    marks = ",".join("?" * len(wanted))
    # Driven by the token index: only visible documents' mentions are read, never the whole table.
    return f"{doc_column} IN (SELECT a.doc_id FROM doc_acl a WHERE a.token IN ({marks}))", wanted


class RegistryStore:
    """Low-level storage; resolution logic lives in ``entity_resolution.steward`` and ``linker``.

    A document's ACL is stored once per document, as one row per token (``doc_acl``): never a joined string.
    """

    def __init__(self, path: Path | str, settings: ResolutionSettings = DEFAULT_SETTINGS) -> None:
        if str(path) != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.settings = settings
        self.lock = threading.RLock()
        self.db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self._migrate()
        self.db.executescript(_SCHEMA)

    def _migrate(self) -> None:
        """Registries written before ACLs were tokens: drop the joined-string column. Their documents stay
        invisible (fail closed) until the next ingest run re-applies each document's ACL from the ledger."""
        columns = {r[1] for r in self.db.execute("PRAGMA table_info(mentions)")}
        if "acl" in columns:
            self.db.execute("ALTER TABLE mentions DROP COLUMN acl")
        if columns and "surface_fold" not in columns:
            self.db.execute("ALTER TABLE mentions ADD COLUMN surface_fold TEXT NOT NULL DEFAULT ''")
            rows = self.db.execute("SELECT id, surface FROM mentions").fetchall()
            self.db.executemany("UPDATE mentions SET surface_fold = ? WHERE id = ?", [(fold(s), i) for i, s in rows])

    def close(self) -> None:
        self.db.close()

    # -- writes -----------------------------------------------------------------------------------------
    def replace_document_mentions(
        self, doc_id: str, mentions: Iterable[Mention], acl: Collection[str], *, text_only: bool = False
    ) -> tuple[list[tuple[str, str]], set[str]]:
        """Replace what ``doc_id`` mentions (only its free-text mentions when ``text_only``) and its ACL.

        Returns the (type, key) nodes that did not exist before, and the entities that lost a node or a surface.
        """
        new_nodes: list[tuple[str, str]] = []
        with self.lock, self.db:
            self.db.execute("BEGIN")
            old = self._keys_of_doc(doc_id)
            self.db.execute("DELETE FROM mentions WHERE doc_id = ?" + (" AND from_text = 1" if text_only else ""), (doc_id,))
            for m in mentions:
                key = m.key
                if not key:
                    continue
                self.db.execute(
                    "INSERT OR IGNORE INTO mentions (doc_id, source, type, surface, key, attributes, from_text, "
                    "surface_fold) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (doc_id, m.source, m.type, m.surface, key, json.dumps(m.attributes), int(m.from_text), fold(m.surface)),
                )
                if self._add_node(m.type, key):
                    new_nodes.append((m.type, key))
            self._write_acl(doc_id, acl)
            touched = self._entities_of_keys(old) | self._prune(old)
        return new_nodes, touched

    def set_document_acl(self, doc_id: str, acl: Collection[str]) -> None:
        """A document's ACL changed: every name it contributes is now visible only to the new tokens."""
        with self.lock, self.db:
            self.db.execute("BEGIN")
            self._write_acl(doc_id, acl)

    def forget_document(self, doc_id: str) -> set[str]:
        """A deleted document: its mentions, ACL, link state and now-orphaned names go; returns touched entities."""
        with self.lock, self.db:
            self.db.execute("BEGIN")
            old = self._keys_of_doc(doc_id)
            self.db.execute("DELETE FROM mentions WHERE doc_id = ?", (doc_id,))
            self.db.execute("DELETE FROM doc_acl WHERE doc_id = ?", (doc_id,))
            self.db.execute("DELETE FROM linked WHERE doc_id = ?", (doc_id,))
            touched = self._entities_of_keys(old) | self._prune(old)
        return touched

    def record_link(self, doc_id: str, entity_ids: Collection[str]) -> None:
        """What the document's chunks carry now, and the newest name known when it was read."""
        with self.lock:
            self.record_links([(doc_id, self.max_seq(), entity_ids)])

    def record_links(self, links: Iterable[tuple[str, int, Collection[str]]]) -> None:
        """``record_link`` for many documents in one transaction: (doc_id, newest name known, entity ids)."""
        with self.lock, self.db:
            self.db.execute("BEGIN")
            self.db.executemany("INSERT OR REPLACE INTO linked (doc_id, seq, entity_ids) VALUES (?, ?, ?)",
                                [(d, seq, json.dumps(sorted(ids))) for d, seq, ids in links])

    def _write_acl(self, doc_id: str, acl: Collection[str]) -> None:
        self.db.execute("DELETE FROM doc_acl WHERE doc_id = ?", (doc_id,))
        self.db.executemany("INSERT OR IGNORE INTO doc_acl (doc_id, token) VALUES (?, ?)",
                            [(doc_id, t) for t in sorted(set(acl)) if t])

    def _keys_of_doc(self, doc_id: str) -> set[tuple[str, str]]:
        return set(self.db.execute("SELECT type, key FROM mentions WHERE doc_id = ?", (doc_id,)).fetchall())

    def _entities_of_keys(self, keys: Iterable[tuple[str, str]]) -> set[str]:
        return {e for t, k in keys if (e := self.entity_of(t, k))}

    def _prune(self, keys: Iterable[tuple[str, str]]) -> set[str]:
        """Names no document mentions any more leave the registry (nodes, blocks, evidence naming them)."""
        touched: set[str] = set()
        for t, k in keys:
            if self.db.execute("SELECT 1 FROM mentions WHERE type = ? AND key = ? LIMIT 1", (t, k)).fetchone():
                continue
            entity_id = self.entity_of(t, k)
            touched.update([entity_id] if entity_id else [])
            self.db.execute("DELETE FROM nodes WHERE type = ? AND key = ?", (t, k))
            self.db.execute("DELETE FROM blocks WHERE type = ? AND key = ?", (t, k))
            self.db.execute("DELETE FROM evidence WHERE entity_id = ? AND (key_a = ? OR key_b = ?)", (entity_id, k, k))
            self.db.execute("INSERT INTO meta (name, value) VALUES ('removed', 1) "
                            "ON CONFLICT (name) DO UPDATE SET value = value + 1")
        return touched

    def _add_node(self, entity_type: str, key: str) -> bool:
        seq = self.max_seq() + 1
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

    def max_seq(self) -> int:
        return self.db.execute("SELECT COALESCE(MAX(seq), -1) FROM nodes").fetchone()[0]

    def removals(self) -> int:
        """How many names have left the registry (a reader's cached gazetteer is rebuilt when this moves)."""
        row = self.db.execute("SELECT value FROM meta WHERE name = 'removed'").fetchone()
        return int(row[0]) if row else 0

    def key_visible(self, entity_type: str, key: str, tokens: Collection[str] | None) -> bool:
        """Some document visible to ``tokens`` mentions this name."""
        clause, params = visible_clause(tokens)
        return self.db.execute(
            f"SELECT 1 FROM mentions m WHERE m.type = ? AND m.key = ? AND {clause} LIMIT 1", (entity_type, key, *params)
        ).fetchone() is not None

    def keys_of(self, entity_id: str) -> list[tuple[str, str]]:
        return self.db.execute(
            "SELECT type, key FROM nodes WHERE entity_id = ? ORDER BY seq", (entity_id,)
        ).fetchall()
