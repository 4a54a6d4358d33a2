"""Console sessions: a steward logs in with an API key (sent once, in a POST body); the browser then holds
only a random session id in an HttpOnly, SameSite=Strict cookie. The key never lands in a URL, a cookie or
a log, and a key revoked in the keys file ends its sessions at the next request."""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from dataclasses import dataclass

from api.keys import ApiKey, KeyStore
from core.errors import AuthenticationError, PermissionDeniedError

COOKIE = "stitch_console"
CONSOLE_SCOPES = ("ingest", "entities:write", "context", "admin")
_TTL_SECONDS = 8 * 3600


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


class ConsoleSessions:
    """Server-side sessions (in memory: a restart logs everyone out, which is the safe direction)."""

    def __init__(self, keys: KeyStore) -> None:
        self._keys = keys
        self._sessions: dict[str, tuple[str, str, float]] = {}  # session id -> (key id, csrf, expires)
        self._lock = threading.Lock()

    def login(self, presented: str) -> str:
        """A new session id for a valid key with at least one console scope (401/403 otherwise)."""
        key = self._keys.authenticate(presented.strip())
        if not any(s in key.scopes for s in CONSOLE_SCOPES):
            raise PermissionDeniedError("this API key has no scope the console uses")
        session_id = secrets.token_urlsafe(32)
        with self._lock:
            self._sessions[session_id] = (key.key_id, secrets.token_urlsafe(24), time.time() + _TTL_SECONDS)
        return session_id

    def steward(self, session_id: str | None) -> Steward:
        """The steward behind a session cookie; AuthenticationError when absent, expired or revoked."""
        with self._lock:
            entry = self._sessions.get(session_id or "")
        if entry is None or entry[2] < time.time():
            raise AuthenticationError("not logged in")
        key = next((k for k in self._keys.list() if k.key_id == entry[0]), None)
        if key is None:
            self.logout(session_id)
            raise AuthenticationError("the key of this session was revoked")
        return Steward(key, entry[1])

    def check_csrf(self, steward: Steward, token: str) -> None:
        if not hmac.compare_digest(steward.csrf, token or ""):
            raise PermissionDeniedError("stale form: reload the page and try again")

    def logout(self, session_id: str | None) -> None:
        with self._lock:
            self._sessions.pop(session_id or "", None)
