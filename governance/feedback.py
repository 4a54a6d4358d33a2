"""Expert feedback on what a context request returned: passages marked relevant / not relevant /
wrong entity, and documents that should have been there. Stored with the key and principal."""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path

from core.errors import InputError, NotFoundError
from core.store.protocol import VectorStore
from governance.sqlite import open_db
from governance.packs import PackRecord

LABELS = ("relevant", "not_relevant", "wrong_entity", "missing")
_SCHEMA = """
CREATE TABLE IF NOT EXISTS feedback (
    id INTEGER PRIMARY KEY AUTOINCREMENT, request_id TEXT NOT NULL, created_at REAL NOT NULL,
    key_id TEXT NOT NULL, principal_id TEXT NOT NULL, doc_id TEXT NOT NULL, label TEXT NOT NULL,
    entity_id TEXT NOT NULL DEFAULT '', note TEXT NOT NULL DEFAULT '');
CREATE INDEX IF NOT EXISTS feedback_by_request ON feedback (request_id);
"""


@dataclass(frozen=True)
class Label:
    """One judgement on one document of a request (``missing``: it should have been returned)."""

    doc_id: str
    label: str
    entity_id: str = ""


@dataclass(frozen=True)
class LabelledRequest:
    """A request's query and principal with the documents experts judged (1 relevant, 0 not)."""

    request_id: str
    query: str
    principal_id: str
    roles: tuple[str, ...]
    judgements: dict[str, int]


def check_labels(labels: Sequence[Label]) -> None:
    """InputError naming the first unknown label value."""
    for item in labels:
        if item.label not in LABELS:
            raise InputError(f"labels: unknown label {item.label[:40]!r}; use one of {', '.join(LABELS)}")
        if item.label == "wrong_entity" and not item.entity_id:
            raise InputError("labels: 'wrong_entity' needs the entity_id that was wrong")


def check_visible(store: VectorStore, labels: Sequence[Label], acl_tokens: Collection[str]) -> None:
    """Nobody labels what they cannot see: every labelled document must be visible (inside the store query)."""
    for doc_id in sorted({item.doc_id for item in labels}):
        if not store.document_chunks(doc_id, acl_tokens=acl_tokens, limit=1):
            raise NotFoundError("document not found")


class FeedbackStore:
    """SQLite table of labels (WAL)."""

    def __init__(self, path: Path | str) -> None:
        self._lock = threading.Lock()
        self._db = open_db(path, _SCHEMA)

    def add(self, record: PackRecord, labels: Sequence[Label], *, key_id: str, note: str = "") -> int:
        """Store labels on ``record``'s request; returns how many."""
        rows = [(record.request_id, time.time(), key_id, record.principal_id, item.doc_id, item.label,
                 item.entity_id, note) for item in labels]
        with self._lock, self._db:
            self._db.execute("BEGIN")
            self._db.executemany(
                "INSERT INTO feedback (request_id, created_at, key_id, principal_id, doc_id, label, entity_id, note) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
        return len(rows)

    def labelled_requests(self, packs) -> list[LabelledRequest]:  # noqa: ANN001 - governance.packs.PackStore
        """Every request with labels, its latest judgement per document (relevant/missing → 1, else 0)."""
        with self._lock:
            rows = self._db.execute("SELECT request_id, doc_id, label FROM feedback ORDER BY id").fetchall()
        judged: dict[str, dict[str, int]] = defaultdict(dict)
        for request_id, doc_id, label in rows:
            judged[request_id][doc_id] = int(label in ("relevant", "missing"))
        out = []
        for request_id, judgements in sorted(judged.items()):
            record = packs.get(request_id)
            out.append(LabelledRequest(request_id, record.query, record.principal_id, record.roles, judgements))
        return out

    def entity_corrections(self) -> list[tuple[str, str, str]]:
        """(request id, doc id, entity id) of every 'wrong entity' label, for steward review."""
        with self._lock:
            return self._db.execute(
                "SELECT request_id, doc_id, entity_id FROM feedback WHERE label = 'wrong_entity' ORDER BY id"
            ).fetchall()

    def close(self) -> None:
        self._db.close()


def submit_feedback(
    packs, feedback: FeedbackStore, store: VectorStore, *, request_id: str, principal_id: str,  # noqa: ANN001
    acl_tokens: Collection[str], labels: Sequence[Label], key_id: str, note: str = "",
) -> int:
    """Labels from the principal a request was made for, on documents that principal can see now.

    Someone else's request and an unknown one give the same NotFoundError."""
    try:
        record = packs.get(request_id)
    except NotFoundError:
        raise NotFoundError("no context request with that id") from None
    if record.principal_id != principal_id:
        raise NotFoundError("no context request with that id")
    check_labels(labels)
    check_visible(store, labels, acl_tokens)
    return feedback.add(record, labels, key_id=key_id, note=note)
