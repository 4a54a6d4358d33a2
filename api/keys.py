"""API keys: stored hashed (sha256) in a JSON keys file; each key has scopes, the roles and the
principal ids it may assert (``core.identity`` decides what a request may claim with them).

Keys are ``stk_<key id>_<secret>`` with 256 bits of secret, so a fast hash is enough at rest
(as for GitHub tokens); comparison is constant-time.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from core.errors import AuthenticationError, ConfigurationError, InputError, PermissionDeniedError
from core.identity import ANY, check_key_role, check_principal_pattern

SCOPES = ("context", "ingest", "entities:write", "metrics", "audit", "admin")  # metrics: GET /metrics only; audit: replay
ANY_ROLE = ANY


@dataclass(frozen=True)
class ApiKey:
    """A stored key: its id, the hash of the secret, scopes, and the roles and principal ids it may assert.

    ``principals`` holds exact ids, fnmatch globs (``svc-*``) or ``*`` (any id); empty (the default,
    also for key files written before the field existed) means the key may assert no principal id.
    ``verified_users_only`` keys serve only requests that carry a verified end-user token.
    """

    key_id: str
    hash: str
    scopes: tuple[str, ...]
    roles: tuple[str, ...]
    name: str = ""
    created_at: float = 0.0
    principals: tuple[str, ...] = ()
    verified_users_only: bool = False

    def require_scope(self, scope: str) -> None:
        """Raise 403 unless the key has ``scope`` (``admin`` implies every scope)."""
        if scope not in self.scopes and "admin" not in self.scopes:
            raise PermissionDeniedError(f"this API key lacks the '{scope}' scope")



def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def _from_json(record: dict) -> ApiKey:
    tuples = {f: tuple(record.get(f, ())) for f in ("scopes", "roles", "principals")}
    return ApiKey(**{**record, **tuples})


def mint_key(
    *,
    scopes: tuple[str, ...],
    roles: tuple[str, ...],
    principals: tuple[str, ...] = (),
    verified_users_only: bool = False,
    name: str = "",
) -> tuple[str, ApiKey]:
    """A new key (plaintext, record) after validating scopes, roles and principal patterns; not stored."""
    bad = [s for s in scopes if s not in SCOPES]
    if bad or not scopes:
        raise ConfigurationError(f"unknown scope(s) {bad or '(none given)'}; choose from {', '.join(SCOPES)}")
    try:
        roles = tuple(dict.fromkeys(check_key_role(r, where="API key") for r in roles))
        principals = tuple(dict.fromkeys(check_principal_pattern(p, where="API key") for p in principals))
    except InputError as exc:
        raise ConfigurationError(str(exc)) from exc
    key_id = secrets.token_hex(6)
    plaintext = f"stk_{key_id}_{secrets.token_urlsafe(32).replace('_', '-')}"
    key = ApiKey(key_id, _digest(plaintext), tuple(scopes), roles, name, time.time(), principals, verified_users_only)
    return plaintext, key


class KeyStore:
    """The keys file, re-read when it changes on disk."""

    def __init__(self, path: Path) -> None:
        self._path = Path(path)
        self._mtime: float | None = None
        self._keys: dict[str, ApiKey] = {}
        self._held: dict[str, ApiKey] = {}

    def hold(self, key: ApiKey) -> None:
        """Accept ``key`` in this process only, never writing it: it is gone when the process is."""
        self._held[key.key_id] = key

    def held(self) -> tuple[ApiKey, ...]:
        """The keys held in memory (handed to serve workers at spawn: api.workers)."""
        return tuple(self._held.values())

    def revoke_named(self, name: str) -> int:
        """Remove every stored key called ``name`` (keys older versions persisted); how many there were."""
        stale = [k.key_id for k in self._load().values() if k.name == name]
        for key_id in stale:
            self.revoke(key_id)
        return len(stale)

    def _load(self) -> dict[str, ApiKey]:
        try:
            mtime = self._path.stat().st_mtime
        except FileNotFoundError:
            self._keys, self._mtime = {}, None
            return self._keys
        if mtime != self._mtime:
            try:
                raw = json.loads(self._path.read_text(encoding="utf-8"))
                keys = [_from_json(k) for k in raw["keys"]]
            except (ValueError, KeyError, TypeError) as exc:
                raise ConfigurationError(f"{self._path}: not a valid API keys file: {exc}") from exc
            self._keys, self._mtime = {k.key_id: k for k in keys}, mtime
        return self._keys

    def authenticate(self, presented: str | None) -> ApiKey:
        """The key behind a bearer token, or 401."""
        if not presented:
            raise AuthenticationError("missing API key: send 'Authorization: Bearer <key>'")
        parts = presented.split("_")
        key_id = parts[1] if len(parts) == 3 and parts[0] == "stk" else None
        key = (self._held.get(key_id) or self._load().get(key_id)) if key_id else None
        # Compare against a dummy when the id is unknown so timing does not reveal valid ids.
        expected = key.hash if key else _digest("unknown-key-dummy")
        if not hmac.compare_digest(expected, _digest(presented)) or key is None:
            raise AuthenticationError("unknown API key")
        return key

    def create(
        self,
        *,
        scopes: tuple[str, ...],
        roles: tuple[str, ...],
        principals: tuple[str, ...] = (),
        verified_users_only: bool = False,
        name: str = "",
    ) -> str:
        """Add a key and return its plaintext (shown once, never stored)."""
        plaintext, key = mint_key(
            scopes=scopes, roles=roles, principals=principals, verified_users_only=verified_users_only, name=name
        )
        keys = dict(self._load())
        keys[key.key_id] = key
        self._write(keys)
        return plaintext

    def revoke(self, key_id: str) -> bool:
        """Remove a key; True if it existed."""
        keys = dict(self._load())
        if keys.pop(key_id, None) is None:
            return False
        self._write(keys)
        return True

    def list(self) -> list[ApiKey]:
        """Every key (hashes only)."""
        return list(self._load().values())

    def _write(self, keys: dict[str, ApiKey]) -> None:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        body = json.dumps({"keys": [asdict(k) for k in keys.values()]}, indent=2)
        fd, tmp = tempfile.mkstemp(dir=self._path.parent, prefix=".keys-")
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(body)
        os.chmod(tmp, 0o600)
        os.replace(tmp, self._path)
        self._mtime = None
