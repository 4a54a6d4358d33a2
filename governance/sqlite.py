"""One way to open the governance SQLite files: WAL (the API writes while `stitch` commands read)."""

from __future__ import annotations

import sqlite3
from pathlib import Path


def open_db(path: Path | str, schema: str) -> sqlite3.Connection:
    """A connection usable from the API's threads (callers hold their own lock), schema applied."""
    if str(path) != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.executescript(schema)
    return db
