"""Console sessions: a steward logs in with an API key (sent once, in a POST body); the browser then holds
only a random session id in an HttpOnly, SameSite=Strict cookie. The key never lands in a URL, a cookie or
a log, and a key revoked in the keys file ends its sessions at the next request.

Sessions are stored server-side in SQLite in the data directory (``console_sessions.sqlite3``), keyed by
the sha256 of the session id: a restart does not log stewards out, replicas sharing the data directory
share the sessions, and someone who reads the file learns no cookie that would let them in.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import sqlite3
import time
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

from api.keys import ApiKey, KeyStore
from core.errors import AuthenticationError, PermissionDeniedError

COOKIE = "stitch_console"
CONSOLE_SCOPES = ("ingest", "entities:write", "context", "admin")
_SCHEMA = """CREATE TABLE IF NOT EXISTS sessions (
    id_hash TEXT PRIMARY KEY, key_id TEXT NOT NULL, csrf TEXT NOT NULL, expires REAL NOT NULL)"""


@dataclass(frozen=True)
class Steward:
    """Who is using the console: the key (re-read on every request) and the session's CSRF token."""

    key: ApiKey
    csrf: str

    def may(self, scope: str) -> bool:
        return scope in self.key.scopes or "admin" in self.key.scopes

    def require(self, scope: str) -> None:
        self.key.require_scope(scope)

    @property
    def acl_tokens(self) -> tuple[str, ...] | None:
        """What the steward may see of documents: every role the key may assert (None = any role)."""
        if "*" in self.key.roles:
            return None
        return ("public", *(f"role:{r}" for r in self.key.roles))


def _id_hash(session_id: str) -> str:
    # The id is 256 random bits, so a plain hash cannot be reversed or guessed: no secret needed.
    return hashlib.sha256(session_id.encode("utf-8")).hexdigest()


class ConsoleSessions:
    """Server-side sessions in a SQLite file (WAL: several processes may share it)."""

    def __init__(self, keys: KeyStore, path: Path, *, ttl_seconds: int,
                 clock: Callable[[], float] = time.time) -> None:
        self._keys, self._path, self.ttl_seconds, self._clock = keys, path, ttl_seconds, clock
        path.parent.mkdir(parents=True, exist_ok=True)
        with closing(self._connect()) as db, db:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute(_SCHEMA)
        path.chmod(0o600)

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self._path, timeout=10)

    def login(self, presented: str) -> str:
        """A new session id for a valid key with at least one console scope (401/403 otherwise)."""
        key = self._keys.authenticate(presented.strip())
        if not any(s in key.scopes for s in CONSOLE_SCOPES):
            raise PermissionDeniedError("this API key has no scope the console uses")
        session_id, now = secrets.token_urlsafe(32), self._clock()
        with closing(self._connect()) as db, db:
            db.execute("DELETE FROM sessions WHERE expires < ?", (now,))  # expired ones go at every login
            db.execute("INSERT INTO sessions VALUES (?, ?, ?, ?)",
                       (_id_hash(session_id), key.key_id, secrets.token_urlsafe(24), now + self.ttl_seconds))
        return session_id

    def steward(self, session_id: str | None) -> Steward:
        """The steward behind a session cookie; AuthenticationError when absent, expired or revoked."""
        if not session_id:
            raise AuthenticationError("not logged in")
        with closing(self._connect()) as db:
            row = db.execute("SELECT key_id, csrf, expires FROM sessions WHERE id_hash = ?",
                             (_id_hash(session_id),)).fetchone()
        if row is None or row[2] < self._clock():
            raise AuthenticationError("not logged in")
        key = next((k for k in self._keys.list() if k.key_id == row[0]), None)
        if key is None:
            self.logout(session_id)
            raise AuthenticationError("the key of this session was revoked")
        return Steward(key, row[1])

    def check_csrf(self, steward: Steward, token: str) -> None:
        if not hmac.compare_digest(steward.csrf, token or ""):
            raise PermissionDeniedError("stale form: reload the page and try again")

    def logout(self, session_id: str | None) -> None:
        with closing(self._connect()) as db, db:
            db.execute("DELETE FROM sessions WHERE id_hash = ?", (_id_hash(session_id or ""),))
