"""Console sessions outlive the process that created them: stored in the data dir under the hash of the
session id (never the id or the key), with expiry, logout and revocation; a real ``stitch serve`` restart
keeps a steward logged in, and the key appears in no URL and no server output."""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from api.console.session import ConsoleSessions
from api.keys import KeyStore
from core.errors import AuthenticationError
from tests.conftest import ROOT

STITCH = str(Path(sys.executable).parent / "stitch")


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture()
def keys(tmp_path):
    store = KeyStore(tmp_path / "api_keys.json")
    return store, store.create(scopes=("context",), roles=("sales",), name="steward")


def test_a_session_is_seen_by_a_new_process_or_replica_and_stored_only_hashed(tmp_path, keys):
    store, key = keys
    path = tmp_path / "console_sessions.sqlite3"
    session_id = ConsoleSessions(store, path, ttl_seconds=3600).login(key)
    replica = ConsoleSessions(KeyStore(tmp_path / "api_keys.json"), path, ttl_seconds=3600)  # "after a restart"
    assert replica.steward(session_id).key.key_id == key.split("_")[1]
    stored = path.read_bytes() + b"".join(p.read_bytes() for p in tmp_path.glob("console_sessions.sqlite3-*"))
    assert session_id.encode() not in stored and key.encode() not in stored
    assert path.stat().st_mode & 0o077 == 0


def test_sessions_expire_end_on_logout_and_on_revocation(tmp_path, keys):
    store, key = keys
    clock = Clock()
    sessions = ConsoleSessions(store, tmp_path / "s.sqlite3", ttl_seconds=600, clock=clock)
    expiring, leaving = sessions.login(key), sessions.login(key)
    clock.now += 599
    assert sessions.steward(expiring).csrf != sessions.steward(leaving).csrf  # one CSRF token per session
    sessions.logout(leaving)
    with pytest.raises(AuthenticationError):
        sessions.steward(leaving)
    clock.now += 2
    with pytest.raises(AuthenticationError):
        sessions.steward(expiring)
    revoked = sessions.login(key)  # a login sweeps expired sessions out of the file
    with sqlite3.connect(tmp_path / "s.sqlite3") as db:
        assert db.execute("SELECT COUNT(*) FROM sessions").fetchone()[0] == 1
    assert sessions.steward(revoked)
    store.revoke(key.split("_")[1])
    with pytest.raises(AuthenticationError, match="revoked"):
        sessions.steward(revoked)
    with pytest.raises(AuthenticationError):
        sessions.steward(None)


def _serve(env: dict, port: int) -> subprocess.Popen:
    from tests.test_api_server import _wait_ready

    process = subprocess.Popen([STITCH, "serve", "--port", str(port)], env=env, cwd=ROOT, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    try:
        _wait_ready(f"http://127.0.0.1:{port}", process, timeout=300)  # a loaded CI box starts slowly
    except BaseException:
        process.kill()  # never leave a server behind a failed test
        process.communicate(timeout=60)
        raise
    return process


def _stop(process: subprocess.Popen) -> str:
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=60)
    return out + err


@pytest.mark.slow
def test_a_steward_stays_logged_in_across_a_real_restart(tmp_path):
    from tests.test_api_server import _free_port
    env = {**os.environ, "STITCH_DATA_DIR": str(tmp_path / "data"), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    key = KeyStore(tmp_path / "data" / "api_keys.json").create(scopes=("context",), roles=("sales",))
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    output, seen_urls = "", []
    process = _serve(env, port)
    try:
        with httpx.Client(base_url=url, event_hooks={"request": [lambda r: seen_urls.append(str(r.url))]}) as browser:
            assert browser.post("/console/login", data={"key": key}).status_code == 303
            cookie = browser.cookies.get("stitch_console")
            assert cookie and key not in cookie
            assert browser.get("/console/quality").status_code == 200
            output += _stop(process)
            process = _serve(env, port)
            page = browser.get("/console/quality")
            assert page.status_code == 200 and "Log in" not in page.text  # same cookie, new process
            csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
            assert browser.post("/console/logout", data={"csrf": csrf.group(1) if csrf else ""}).status_code == 303
            browser.cookies.set("stitch_console", cookie, path="/console")  # replaying the old cookie
            assert browser.get("/console/quality").headers.get("location") == "/console/login"
    finally:
        output += _stop(process)
    assert not [u for u in seen_urls if key in u]
    assert key not in output and cookie not in output
