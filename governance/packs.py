"""What each context request returned, kept so it can be explained and replayed by ``request_id``.

A record holds ids, content hashes, the ACL tokens the request was filtered by and the tokens that
made each passage visible — never document text. The query text is kept (feedback turns requests
into evaluation data) and is shown only to keys with the ``audit`` scope.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Collection
from dataclasses import asdict, dataclass
from pathlib import Path

import orjson

from core import payload as P
from core.errors import NotFoundError
from core.store.protocol import VectorStore
from governance.batches import BatchWriter
from governance.sqlite import open_db

_SCHEMA = """
CREATE TABLE IF NOT EXISTS packs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, request_id TEXT NOT NULL, created_at REAL NOT NULL,
    key_id TEXT NOT NULL, principal_id TEXT NOT NULL, body TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS packs_by_request ON packs (request_id);
CREATE INDEX IF NOT EXISTS packs_by_time ON packs (created_at);
"""


@dataclass(frozen=True)
class PassageRecord:
    """One returned passage: which chunks, their content hashes, and why the principal could see it."""

    citation: int
    doc_id: str
    chunk_ids: tuple[str, ...]
    content_hashes: tuple[str, ...]
    visible_via: tuple[str, ...]
    acl_origin: str = ""


@dataclass(frozen=True)
class PackRecord:
    """One context request as returned."""

    request_id: str
    created_at: float
    key_id: str
    principal_id: str
    roles: tuple[str, ...]
    acl_tokens: tuple[str, ...]
    query: str
    model: str
    passages: tuple[PassageRecord, ...]

    @classmethod
    def from_dict(cls, data: dict) -> "PackRecord":
        passages = tuple(
            PassageRecord(p["citation"], p["doc_id"], tuple(p["chunk_ids"]), tuple(p["content_hashes"]),
                          tuple(p["visible_via"]), p.get("acl_origin", ""))
            for p in data["passages"]
        )
        return cls(data["request_id"], data["created_at"], data["key_id"], data["principal_id"],
                   tuple(data["roles"]), tuple(data["acl_tokens"]), data["query"], data["model"], passages)


class PackStore:
    """SQLite table of pack records (WAL: the API writes, ``stitch`` commands read).

    ``record`` never waits for the disk: a writer thread commits handed-over records in batches (one
    transaction each, governance.batches), so the request path pays an append. Reads first wait for
    what was handed over to be committed."""

    def __init__(self, path: Path | str) -> None:
        self._lock = threading.Lock()
        self._db = open_db(path, _SCHEMA)
        self._db.execute("PRAGMA synchronous=NORMAL")  # WAL stays consistent; a crash may lose the last batch
        self._writer = BatchWriter(self._write, name="stitch-pack-writer", max_pending=10_000)

    def record(self, pack: PackRecord) -> None:
        """Keep one request's record. Callers may choose request ids (X-Request-ID), so a repeated id
        adds a record rather than replacing one: nothing a caller sends can erase what was returned."""
        self._writer.submit(pack)  # frozen: the writer thread serialises it, off the request path

    def _write(self, packs: list[PackRecord]) -> None:
        # orjson writes dataclasses (tuples as lists) as json.dumps(asdict(...)) would, several times faster.
        rows = [(p.request_id, p.created_at, p.key_id, p.principal_id, orjson.dumps(p).decode("utf-8")) for p in packs]
        with self._lock, self._db:
            self._db.execute("BEGIN")
            self._db.executemany(
                "INSERT INTO packs (request_id, created_at, key_id, principal_id, body) VALUES (?, ?, ?, ?, ?)", rows
            )

    def flush(self) -> None:
        """Wait until every handed-over record is committed."""
        self._writer.flush()

    def get(self, request_id: str) -> PackRecord:
        """The latest record of ``request_id`` (NotFoundError if unknown)."""
        self.flush()
        with self._lock:
            row = self._db.execute(
                "SELECT body FROM packs WHERE request_id = ? ORDER BY seq DESC LIMIT 1", (request_id,)
            ).fetchone()
        if row is None:
            raise NotFoundError("no context request with that id")
        return PackRecord.from_dict(json.loads(row[0]))

    def forget_before(self, cutoff: float) -> int:
        """Drop records older than ``cutoff`` (epoch seconds); returns how many (retention)."""
        self.flush()
        with self._lock:
            return self._db.execute("DELETE FROM packs WHERE created_at < ?", (cutoff,)).rowcount

    def close(self) -> None:
        """Commit what is queued, stop the writer, close the file."""
        self._writer.close()
        self._db.close()


def visible_via(acl: Collection[str], tokens: Collection[str]) -> tuple[str, ...]:
    """The principal's tokens that matched the chunk's ACL — only those, never the rest of the ACL."""
    return tuple(sorted(set(acl) & set(tokens)))


@dataclass(frozen=True)
class PassageReplay:
    """A returned passage checked against the index today."""

    citation: int
    doc_id: str
    same: bool  # every chunk still stored with the same content hash
    still_visible: bool  # the same principal tokens still see the document
    changed_chunks: tuple[str, ...]  # chunk ids gone or with another content hash


def replay(record: PackRecord, store: VectorStore) -> tuple[PassageReplay, ...]:
    """Re-check each passage of ``record``: ACL inside the store query with the record's tokens."""
    out = []
    for passage in record.passages:
        visible = {h.point_id: h.payload.get(P.CONTENT_HASH, "")
                   for h in store.document_chunks(passage.doc_id, acl_tokens=record.acl_tokens)}
        stored = visible or {h.point_id: h.payload.get(P.CONTENT_HASH, "")
                             for h in store.document_chunks(passage.doc_id, acl_tokens=None)}
        changed = tuple(cid for cid, digest in zip(passage.chunk_ids, passage.content_hashes)
                        if stored.get(cid) != digest)
        out.append(PassageReplay(passage.citation, passage.doc_id, not changed, bool(visible), changed))
    return tuple(out)


def now() -> float:
    """Record time (epoch seconds)."""
    return time.time()


def record_for(pack, *, key_id: str, principal_id: str, roles: tuple[str, ...], query: str) -> PackRecord:  # noqa: ANN001
    """The record of a ``core.models.ContextPack`` as returned to one principal."""
    passages = tuple(
        PassageRecord(p.citation, p.doc_id, tuple(p.chunk_ids), tuple(p.content_hashes), tuple(p.visible_via),
                      p.acl_origin)
        for p in pack.passages
    )
    return PackRecord(pack.request_id, now(), key_id, principal_id, tuple(roles), tuple(pack.acl_tokens),
                      query, pack.model, passages)


def replay_report(packs: PackStore, store: VectorStore, request_id: str) -> dict:
    """The JSON an auditor sees for ``request_id``: the record (no document text) beside its replay."""
    record = packs.get(request_id)
    checks = {r.citation: r for r in replay(record, store)}
    body = asdict(record)
    for passage in body["passages"]:
        check = checks[passage["citation"]]
        passage.update(same=check.same, still_visible=check.still_visible, changed_chunks=list(check.changed_chunks))
    body["unchanged"] = all(c.same and c.still_visible for c in checks.values())
    return body
