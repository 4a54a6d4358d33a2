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
        self._lock = threading.Lock()

    def get(self, doc_id: str) -> LedgerEntry | None:
        """The entry of one document, if indexed."""
        with self._lock:
            row = self._db.execute(
                "SELECT doc_id, source, fingerprint, chunk_ids, invisible FROM documents WHERE doc_id=?",
                (doc_id,),
            ).fetchone()
        return _entry(row) if row else None

    def for_source(self, source: str) -> dict[str, LedgerEntry]:
        """Every indexed document of a source."""
        with self._lock:
            rows = self._db.execute(
                "SELECT doc_id, source, fingerprint, chunk_ids, invisible FROM documents WHERE source=?",
                (source,),
            ).fetchall()
        return {row[0]: _entry(row) for row in rows}

    def record(self, entry: LedgerEntry) -> None:
        """Remember a document whose chunks are durable in the store."""
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO documents VALUES (?, ?, ?, ?, ?, ?)",
                (entry.doc_id, entry.source, entry.fingerprint, json.dumps(list(entry.chunk_ids)),
                 int(entry.invisible), time.time()),
            )

    def forget(self, doc_id: str) -> None:
        """Drop a document deleted from the store."""
        with self._lock:
            self._db.execute("DELETE FROM documents WHERE doc_id=?", (doc_id,))

    def forget_all(self, source: str) -> None:
        """Drop every document of a source (``--full`` rebuild)."""
        with self._lock:
            self._db.execute("DELETE FROM documents WHERE source=?", (source,))

    def count(self) -> int:
        """Number of documents indexed."""
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM documents").fetchone()[0])

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._db.close()


def _entry(row: tuple) -> LedgerEntry:
    return LedgerEntry(row[0], row[1], row[2], tuple(json.loads(row[3])), bool(row[4]))
