"""The steward console in a real browser (Debian's chromium driven by Playwright) against a real
``stitch serve``: log in, review and merge two entities, see the change through the API; a key without the
scopes sees nothing. ``STITCH_CONSOLE_SCREENSHOTS=1`` also writes docs/img/console-*.png for the README."""

from __future__ import annotations

import os
import re
import shutil
import time

import httpx
import pytest

from tests.conftest import FIXTURES, ROOT

CHROMIUM = "/usr/bin/chromium"
IMAGES = ROOT / "docs" / "img"
pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not shutil.which(CHROMIUM), reason="needs Debian's chromium (.ci/run installs it)")]


def _ingest(url: str, key: str, manifest: str) -> None:
    auth = {"Authorization": f"Bearer {key}"}
    job = httpx.post(f"{url}/v1/ingest/jobs", json={"manifests": [manifest]}, headers=auth, timeout=30).json()
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        state = httpx.get(f"{url}/v1/ingest/jobs/{job['job_id']}", headers=auth, timeout=30).json()
        if state["status"] not in ("queued", "running"):
            assert state["status"] == "succeeded", state
            return
        time.sleep(0.3)
    raise AssertionError("crm ingest never finished")


@pytest.fixture(scope="module")
def console(stitch_server):
    from playwright.sync_api import sync_playwright

    from api.keys import KeyStore

    url, key = stitch_server["url"], stitch_server["key"]
    keys = KeyStore(stitch_server["data"] / "api_keys.json")
    made = {
        "steward": keys.create(scopes=("entities:write", "ingest", "context"), roles=("*",), principals=("*",), name="steward"),
        "sales": keys.create(scopes=("context",), roles=("sales",), name="sales-bot"),
        "admin": keys.create(scopes=("admin",), roles=("*",), name="admin"),
    }
    # Record fields give the registry its names; the steward's own job shows on its sources page.
    _ingest(url, made["steward"], str(FIXTURES / "manifests" / "crm.yaml"))
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM,
                                    args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        yield browser, url, made, key
        browser.close()


def _login(browser, url: str, key: str):
    page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    page.goto(f"{url}/console")
    assert page.url.endswith("/console/login")
    page.fill("#key", key)
    page.click("#login")
    assert key not in page.url
    return page


def _shot(page, name: str, *, full_page: bool = True) -> None:
    if os.environ.get("STITCH_CONSOLE_SCREENSHOTS"):
        IMAGES.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(IMAGES / f"console-{name}.png"), full_page=full_page)


def test_steward_reviews_and_merges_two_entities_and_the_api_sees_it(console):
    browser, url, keys, api_key = console
    page = _login(browser, url, keys["steward"])
    cookie = next(c for c in page.context.cookies() if c["name"] == "stitch_console")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and keys["steward"] not in cookie["value"]
    page.goto(f"{url}/console/sources")
    sources = page.inner_text("#sources")
    assert "crm" in sources and "wiki" in sources and "crm.yaml" in sources
    _shot(page, "sources")
    page.goto(f"{url}/console/jobs")
    _shot(page, "jobs")
    page.goto(f"{url}/console/entities")
    page.fill("#q", "acme")  # Acme Corporation and its subsidiary: same type, two entities
    page.click("#search")
    ids = re.findall(r"/console/entities/(ent_[0-9a-z]+)", page.content())
    assert len(ids) >= 2, page.content()
    keep, other = ids[0], ids[1]
    auth = {"Authorization": f"Bearer {api_key}"}
    params = {"principal_id": "steward", "role": ["exec", "sales"]}
    before = {i: set(httpx.get(f"{url}/v1/entities/{i}", headers=auth, params=params).json()["aliases"])
              for i in (keep, other)}
    page.check(f"input.keep[value='{keep}']")
    page.check(f"input.other[value='{other}']")
    _shot(page, "entities")
    page.click("#merge")
    assert page.url.endswith(f"/console/entities/{keep}")
    shown = set(page.locator("#aliases .alias").all_inner_texts())
    assert before[keep] | before[other] <= shown
    _shot(page, "entity")
    merged = httpx.get(f"{url}/v1/entities/{keep}", headers=auth, params=params).json()
    assert before[keep] | before[other] <= set(merged["aliases"])
    page.goto(f"{url}/console/quality")
    page.fill("#query", "How do refunds work for enterprise customers?")
    page.fill("#roles", "sales")
    page.click("#ask")
    assert "role:sales" in page.inner_text("#filtered-for") and "[1]" in page.inner_text("#pack")
    _shot(page, "quality", full_page=False)
    page.locator("select.label").first.select_option("relevant")  # expert feedback on the pack (POST /v1/feedback's path)
    page.click("#send-feedback")
    assert "Stored 1 label" in page.inner_text("#feedback-stored")


def test_a_key_without_the_scopes_sees_nothing(console):
    browser, url, keys, _ = console
    page = _login(browser, url, keys["sales"])
    for path in ("entities?q=acme", "sources", "jobs", "audit"):
        page.goto(f"{url}/console/{path}")
        assert page.locator("#forbidden").count() == 1, path
        text = page.inner_text("main")
        assert "Acme" not in text and "crm" not in text and "job_" not in text
    page.goto(f"{url}/console/entities/ent_0000000000000000")
    assert page.locator("#forbidden").count() == 1
    stranger = browser.new_context().new_page()
    stranger.goto(f"{url}/console/login")
    stranger.fill("#key", "stk_nope_nope")
    stranger.click("#login")
    assert "unknown API key" in stranger.inner_text("#login-error")
    stranger.goto(f"{url}/console/entities")
    assert stranger.url.endswith("/console/login")
    assert httpx.get(f"{url}/console/sources", follow_redirects=False).status_code == 303


def test_admin_sees_the_audit_without_query_text(console):
    browser, url, keys, _ = console
    page = _login(browser, url, keys["admin"])
    page.goto(f"{url}/console/audit")
    table = page.inner_text("#audit")
    assert "/v1/context" in table or "/mcp" in table or "/v1/ingest" in table
    assert "refunds" not in table.lower()
    _shot(page, "audit", full_page=False)
