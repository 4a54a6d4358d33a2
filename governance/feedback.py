"""Expert feedback on what a context request returned: passages marked relevant / not relevant /
wrong entity, and documents that should have been there. Stored with the key and principal."""

from __future__ import annotations

import json
import threading
import time
from collections import defaultdict
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

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
CREATE TABLE IF NOT EXISTS corrections (
    feedback_id INTEGER PRIMARY KEY, status TEXT NOT NULL, updated_at REAL NOT NULL, detail TEXT NOT NULL);
"""
# What a 'wrong_entity' label became in the registry: applied (a steward split/move), skipped (why), reverted.
CORRECTION_STATES = ("applied", "skipped", "reverted")


@dataclass(frozen=True)
class Label:
    """One judgement on one document of a request (``missing``: it should have been returned)."""

    doc_id: str
    label: str
    entity_id: str = ""
    correct_entity_id: str = ""  # wrong_entity: the entity the passage is really about, if the expert knows


@dataclass(frozen=True)
class Correction:
    """A 'wrong entity' label as a steward request: move the document's names out of ``entity_id``."""

    feedback_id: int
    request_id: str
    doc_id: str
    entity_id: str
    correct_entity_id: str
    key_id: str
    principal_id: str
    status: str = "pending"
    detail: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"feedback_id": self.feedback_id, "request_id": self.request_id, "doc_id": self.doc_id,
                "entity_id": self.entity_id, "correct_entity_id": self.correct_entity_id,
                "status": self.status, **self.detail}


class EntityNames(Protocol):
    """What the registry answers for checking entity labels (implemented over entity_resolution's store)."""

    def names(self, doc_id: str, entity_id: str) -> bool:
        """The document mentions a name of the entity."""

    def visible(self, entity_id: str, acl_tokens: Collection[str]) -> bool:
        """Some document visible to the tokens mentions a name of the entity."""


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
        if item.correct_entity_id and (item.label != "wrong_entity" or item.correct_entity_id == item.entity_id):
            raise InputError("labels: correct_entity_id goes with 'wrong_entity' and must differ from entity_id")


def check_entities(entities: EntityNames, labels: Sequence[Label], acl_tokens: Collection[str]) -> None:
    """Nobody touches an entity through a document they cannot see: the (visible) labelled document must
    name the wrong entity, and the right one must be visible to the labeller. One message for every miss."""
    for item in labels:
        if item.label != "wrong_entity":
            continue
        if not entities.names(item.doc_id, item.entity_id) or (
                item.correct_entity_id and not entities.visible(item.correct_entity_id, acl_tokens)):
            raise NotFoundError("labels: no such entity named by that document")


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
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(feedback)")}
        if "correct_entity_id" not in columns:  # tables written before corrections named the right entity
            self._db.execute("ALTER TABLE feedback ADD COLUMN correct_entity_id TEXT NOT NULL DEFAULT ''")

    def add(self, record: PackRecord, labels: Sequence[Label], *, key_id: str, note: str = "") -> int:
        """Store labels on ``record``'s request; returns how many."""
        rows = [(record.request_id, time.time(), key_id, record.principal_id, item.doc_id, item.label,
                 item.entity_id, item.correct_entity_id, note) for item in labels]
        with self._lock, self._db:
            self._db.execute("BEGIN")
            self._db.executemany(
                "INSERT INTO feedback (request_id, created_at, key_id, principal_id, doc_id, label, entity_id, "
                "correct_entity_id, note) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
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

    def entity_corrections(self, *, status: str | None = None) -> list[Correction]:
        """Every 'wrong entity' label with what became of it (``pending`` until ``stitch tune fit``)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT f.id, f.request_id, f.doc_id, f.entity_id, f.correct_entity_id, f.key_id, f.principal_id, "
                "COALESCE(c.status, 'pending'), COALESCE(c.detail, '{}') FROM feedback f "
                "LEFT JOIN corrections c ON c.feedback_id = f.id WHERE f.label = 'wrong_entity' ORDER BY f.id"
            ).fetchall()
        found = [Correction(*row[:8], detail=json.loads(row[8])) for row in rows]
        return [c for c in found if status is None or c.status == status]

    def correction(self, feedback_id: int) -> Correction:
        found = [c for c in self.entity_corrections() if c.feedback_id == feedback_id]
        if not found:
            raise NotFoundError(f"no entity correction {feedback_id}")
        return found[0]

    def settle(self, feedback_id: int, status: str, detail: dict) -> None:
        """Record what a correction became (ids and counts in ``detail``)."""
        if status not in CORRECTION_STATES:
            raise ValueError(status)
        with self._lock, self._db:
            self._db.execute("INSERT OR REPLACE INTO corrections (feedback_id, status, updated_at, detail) "
                             "VALUES (?, ?, ?, ?)", (feedback_id, status, time.time(), json.dumps(detail, sort_keys=True)))

    def close(self) -> None:
        self._db.close()


def submit_feedback(
    packs, feedback: FeedbackStore, store: VectorStore, *, request_id: str, principal_id: str,  # noqa: ANN001
    acl_tokens: Collection[str], labels: Sequence[Label], key_id: str, note: str = "",
    entities: EntityNames | None = None,
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
    if entities is not None:
        check_entities(entities, labels, acl_tokens)
    elif any(item.label == "wrong_entity" for item in labels):
        raise InputError("labels: 'wrong_entity' needs the entity registry to check the entity")
    return feedback.add(record, labels, key_id=key_id, note=note)
