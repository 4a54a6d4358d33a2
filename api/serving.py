"""``stitch serve`` announces itself so other commands can reach it: the embedded store is locked by
the serving process, so ``stitch query`` forwards to the server (``data_dir/server.json`` + a local
context-scoped key in a 0600 file).

The local key is minted per serve process and held only in that process's memory (and the 0600 file),
never in the keys file: once the process is gone — stopped or SIGKILLed — no server accepts it."""

from __future__ import annotations

import json
import os
from pathlib import Path

from api.keys import ApiKey, KeyStore, mint_key
from core.config import Settings
from core.errors import StitchError, StoreError

LOCAL_KEY_NAME = "local-cli"


def _server_file(settings: Settings) -> Path:
    return settings.data_dir / "server.json"


def _key_file(settings: Settings) -> Path:
    return settings.data_dir / "local_api_key"


def announce(settings: Settings, url: str, keys: KeyStore) -> None:
    """Write server.json and a fresh local key that only ``keys`` (this process's store) accepts."""
    hold_local_key(settings, keys)
    write_server_file(settings, url)


def hold_local_key(settings: Settings, keys: KeyStore) -> ApiKey:
    """Mint the local key, hold it in ``keys`` and write its secret to the 0600 key file.

    The CLI user already owns the data dir, so the local key may assert any role and id (``stitch query
    --user/--role``) and has the admin scope (``stitch tune fit`` runs inside the server); local keys that
    older versions wrote to the keys file are revoked.
    """
    keys.revoke_named(LOCAL_KEY_NAME)
    plaintext, key = mint_key(scopes=("context", "admin"), roles=("*",), principals=("*",), name=LOCAL_KEY_NAME)
    keys.hold(key)
    audit_key_mint(settings, key)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    key_file = _key_file(settings)
    key_file.unlink(missing_ok=True)
    fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(plaintext)
    return key


def write_server_file(settings: Settings, url: str) -> None:
    """server.json: where ``stitch query`` finds this server (written once it answers)."""
    _server_file(settings).write_text(json.dumps({"url": url, "pid": os.getpid()}), encoding="utf-8")


def audit_key_mint(settings: Settings, key: ApiKey) -> None:
    """Ephemeral keys (``local-cli``, ``demo``) never reach the keys file, but minting one is a key
    creation like ``stitch keys create``: the audit trail records it (ids and grants, never the secret)."""
    from governance.audit import audit_event

    audit_event(settings, "key_create", actor="serve", key_id=key.key_id, name=key.name, ephemeral=True,
                scopes=list(key.scopes), roles=list(key.roles), principals=list(key.principals))


def withdraw(settings: Settings) -> None:
    """Remove server.json and the local key file (on shutdown; the key itself dies with the process)."""
    _server_file(settings).unlink(missing_ok=True)
    _key_file(settings).unlink(missing_ok=True)


def running_server(settings: Settings) -> tuple[str, str] | None:
    """(url, local key) of a live ``stitch serve`` on this data dir, if any."""
    try:
        info = json.loads(_server_file(settings).read_text(encoding="utf-8"))
        key = _key_file(settings).read_text(encoding="utf-8").strip()
        os.kill(int(info["pid"]), 0)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return str(info["url"]), key


def forward_context(settings: Settings, body: dict) -> dict:
    """POST /v1/context to the running server; raises StoreError if none runs."""
    return forward_post(settings, "/v1/context", body)


def forward_post(settings: Settings, path: str, body: dict, *, timeout: float = 60) -> dict:
    """POST ``body`` to ``path`` on the running server with the local key; raises StoreError if none runs."""
    import httpx

    server = running_server(settings)
    if server is None:
        raise StoreError(f"the embedded store at {settings.qdrant_path} is locked and no `stitch serve` answers")
    url, key = server
    try:
        response = httpx.post(f"{url}{path}", json=body, headers={"Authorization": f"Bearer {key}"}, timeout=timeout)
    except httpx.HTTPError as exc:
        raise StoreError(f"the running server at {url} did not answer: {exc}") from exc
    if response.status_code != 200:
        try:
            message = response.json()["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = response.text[:500]
        raise StitchError(f"server at {url} answered {response.status_code}: {message}")
    return response.json()
