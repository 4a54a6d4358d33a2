"""SQLite ledger of ingested documents: fingerprints and chunk ids, for incremental, idempotent sync.

A document's row is written only after its chunks are durable in the store, so a run killed at
any point is repaired by the next run (which re-upserts the same deterministic ids and deletes
whatever else the document had).
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class LedgerEntry:
    """What the ledger knows of one document."""

    doc_id: str
    source: str
    fingerprint: str
    chunk_ids: tuple[str, ...]
    invisible: bool
    acl: tuple[str, ...] | None = None  # the tokens its chunks carry (None: written before the ledger kept them)


class Ledger:
    """Documents ingested per source (one SQLite file in the data directory)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS documents (doc_id TEXT PRIMARY KEY, source TEXT NOT NULL, "
            "fingerprint TEXT NOT NULL, chunk_ids TEXT NOT NULL, invisible INTEGER NOT NULL, "
            "indexed_at REAL NOT NULL)"
        )
        self._db.execute("CREATE INDEX IF NOT EXISTS documents_source ON documents(source)")
        if "acl" not in {r[1] for r in self._db.execute("PRAGMA table_info(documents)")}:
            self._db.execute("ALTER TABLE documents ADD COLUMN acl TEXT")  # JSON list of tokens
        # Documents whose chunks were being written when the process stopped (see ingest.pipeline).
        self._db.execute("CREATE TABLE IF NOT EXISTS pending (doc_id TEXT PRIMARY KEY, source TEXT NOT NULL)")
        # Which manifest owns each source, and every change of owner (takeovers are explicit and kept).
        self._db.execute("CREATE TABLE IF NOT EXISTS source_owners (source TEXT PRIMARY KEY, owner TEXT NOT NULL, "
                         "since REAL NOT NULL)")
        self._db.execute("CREATE TABLE IF NOT EXISTS source_owner_changes (at REAL NOT NULL, source TEXT NOT NULL, "
                         "previous TEXT, owner TEXT NOT NULL, how TEXT NOT NULL)")
        self._lock = threading.Lock()

    def get(self, doc_id: str) -> LedgerEntry | None:
        """The entry of one document, if indexed."""
        with self._lock:
            row = self._db.execute(
                "SELECT doc_id, source, fingerprint, chunk_ids, invisible, acl FROM documents WHERE doc_id=?",
                (doc_id,),
            ).fetchone()
        return _entry(row) if row else None

    def for_source(self, source: str) -> dict[str, LedgerEntry]:
        """Every indexed document of a source."""
        with self._lock:
            rows = self._db.execute(
                "SELECT doc_id, source, fingerprint, chunk_ids, invisible, acl FROM documents WHERE source=?",
                (source,),
            ).fetchall()
        return {row[0]: _entry(row) for row in rows}

    def record(self, entry: LedgerEntry) -> None:
        """Remember a document whose chunks are durable in the store."""
        with self._lock:
            self._db.execute(f"INSERT OR REPLACE INTO documents {_COLUMNS} VALUES (?, ?, ?, ?, ?, ?, ?)", _row(entry))

    def record_many(self, entries: list[LedgerEntry]) -> None:
        """Remember documents whose chunks are durable, and end their pending marks, atomically."""
        rows = [_row(e) for e in entries]
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany(f"INSERT OR REPLACE INTO documents {_COLUMNS} VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
                self._db.executemany("DELETE FROM pending WHERE doc_id=?", [(e.doc_id,) for e in entries])
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def set_acl(self, doc_id: str, acl: tuple[str, ...]) -> None:
        """The document's chunks now carry ``acl`` (applied by payload update, content not re-read)."""
        with self._lock:
            self._db.execute("UPDATE documents SET acl=?, invisible=? WHERE doc_id=?",
                             (json.dumps(list(acl)), int(not acl), doc_id))

    def mark_pending(self, docs: list[tuple[str, str]]) -> None:
        """(doc_id, source) pairs whose chunks are about to be written."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.executemany("INSERT OR REPLACE INTO pending VALUES (?, ?)", docs)
            self._db.execute("COMMIT")

    def pending(self, source: str) -> set[str]:
        """Documents of a source whose last write never completed."""
        with self._lock:
            rows = self._db.execute("SELECT doc_id FROM pending WHERE source=?", (source,)).fetchall()
        return {row[0] for row in rows}

    def forget(self, doc_id: str) -> None:
        """Drop a document deleted from the store."""
        with self._lock:
            self._db.execute("DELETE FROM documents WHERE doc_id=?", (doc_id,))
            self._db.execute("DELETE FROM pending WHERE doc_id=?", (doc_id,))

    def chunk_ids(self) -> set[str]:
        """Every chunk id the ledger says is indexed (consistency checks)."""
        with self._lock:
            rows = self._db.execute("SELECT chunk_ids FROM documents").fetchall()
        return {cid for (ids,) in rows for cid in json.loads(ids)}

    def source_owner(self, source: str) -> str | None:
        """The manifest that owns ``source`` (None: never synced, or synced before owners were kept)."""
        with self._lock:
            row = self._db.execute("SELECT owner FROM source_owners WHERE source=?", (source,)).fetchone()
        return row[0] if row else None

    def set_source_owner(self, source: str, owner: str, *, how: str) -> None:
        """Record ``owner`` for ``source`` (``how``: created | adopted | taken over) with its history."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            previous = self._db.execute("SELECT owner FROM source_owners WHERE source=?", (source,)).fetchone()
            self._db.execute("INSERT OR REPLACE INTO source_owners VALUES (?, ?, ?)", (source, owner, time.time()))
            self._db.execute("INSERT INTO source_owner_changes VALUES (?, ?, ?, ?, ?)",
                             (time.time(), source, previous[0] if previous else None, owner, how))
            self._db.execute("COMMIT")

    def release_source(self, source: str) -> None:
        """The source name is free again (``stitch sources remove``); the history keeps the release."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            previous = self._db.execute("SELECT owner FROM source_owners WHERE source=?", (source,)).fetchone()
            self._db.execute("DELETE FROM source_owners WHERE source=?", (source,))
            if previous:
                self._db.execute("INSERT INTO source_owner_changes VALUES (?, ?, ?, ?, ?)",
                                 (time.time(), source, previous[0], "", "removed"))
            self._db.execute("COMMIT")

    def sources(self) -> dict[str, tuple[int, str | None]]:
        """Every source with indexed documents or an owner: (documents, owning manifest)."""
        with self._lock:
            counts = dict(self._db.execute("SELECT source, COUNT(*) FROM documents GROUP BY source").fetchall())
            owners = dict(self._db.execute("SELECT source, owner FROM source_owners").fetchall())
        return {s: (counts.get(s, 0), owners.get(s)) for s in sorted({*counts, *owners})}

    def source_owner_changes(self, source: str) -> list[tuple[str | None, str, str]]:
        """(previous, owner, how) for every change of a source's owner, oldest first."""
        with self._lock:
            rows = self._db.execute("SELECT previous, owner, how FROM source_owner_changes WHERE source=? "
                                    "ORDER BY rowid", (source,)).fetchall()
        return [tuple(r) for r in rows]

    def forget_all(self, source: str) -> None:
        """Drop every document of a source (``--full`` rebuild)."""
        with self._lock:
            self._db.execute("DELETE FROM documents WHERE source=?", (source,))

    def indexed_at(self, doc_ids: list[str]) -> dict[str, float]:
        """When each document's current version entered the index (epoch seconds; absent ids omitted)."""
        if not doc_ids:
            return {}
        marks = ",".join("?" * len(doc_ids))
        with self._lock:
            rows = self._db.execute(f"SELECT doc_id, indexed_at FROM documents WHERE doc_id IN ({marks})", doc_ids)
            return {doc_id: float(at) for doc_id, at in rows.fetchall()}

    def source_summaries(self) -> list[dict]:
        """Per source: documents, invisible documents, chunks and the last time a document was indexed."""
        with self._lock:
            rows = self._db.execute(
                "SELECT source, COUNT(*), SUM(invisible), SUM(json_array_length(chunk_ids)), MAX(indexed_at) "
                "FROM documents GROUP BY source ORDER BY source"
            ).fetchall()
        return [{"source": r[0], "documents": r[1], "invisible": r[2] or 0, "chunks": r[3] or 0, "last_indexed": r[4]}
                for r in rows]

    def count(self) -> int:
        """Number of documents indexed."""
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM documents").fetchone()[0])

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._db.close()


_COLUMNS = "(doc_id, source, fingerprint, chunk_ids, invisible, indexed_at, acl)"


def _row(e: LedgerEntry) -> tuple:
    acl = None if e.acl is None else json.dumps(list(e.acl))
    return (e.doc_id, e.source, e.fingerprint, json.dumps(list(e.chunk_ids)), int(e.invisible), time.time(), acl)


def _entry(row: tuple) -> LedgerEntry:
    acl = None if row[5] is None else tuple(json.loads(row[5]))
    return LedgerEntry(row[0], row[1], row[2], tuple(json.loads(row[3])), bool(row[4]), acl)
