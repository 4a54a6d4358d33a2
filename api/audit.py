"""The audit log: one JSON line per API request (who asked, for whom, what came back) and never
the key, the query text or document text."""

from __future__ import annotations

import hashlib
import json
import threading
from pathlib import Path

from fastapi import Request


def query_hash(text: str) -> str:
    """sha256 of the query text: lets an auditor match repeats without storing what was asked."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def note(request: Request, **fields: object) -> None:
    """Attach audit fields to the current request; the edge middleware writes them when it ends."""
    current = getattr(request.state, "audit", None) or {}
    request.state.audit = {**current, **fields}


class AuditLog:
    """Append-only JSON lines file, safe to write from concurrent requests."""

    def __init__(self, path: Path) -> None:
        self._path = Path(path)
        self._lock = threading.Lock()

    @property
    def path(self) -> Path:
        return self._path

    def write(self, record: dict) -> None:
        """Append one record."""
        line = json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n"
        with self._lock:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            with self._path.open("a", encoding="utf-8") as handle:
                handle.write(line)
