"""What the README and docs/ say a user can do, done as they say it: remove a source (and what happens to
its chunks, entities, ledger rows and audit trail), and what each key scope may call."""

from __future__ import annotations

import json
import re

import pytest

from core.config import Settings
from core.errors import SyncRefusedError
from core.models import Principal, SearchFilters

CRM_ROWS = [{"id": "1", "name": "Zorblax Industries", "notes": "Zorblax Industries renewed their plan."},
            {"id": "2", "name": "Quuxco Ltd", "notes": "Quuxco Ltd asked about refunds."}]
CRM = ("source: crm\nkind: records\npath: crm.jsonl\nid_field: id\ntitle_field: name\ntext_fields: [notes]\n"
       "entity_fields:\n  organization: [name]\nacl:\n  default: [sales]\n")
WIKI = "source: wiki\nkind: files\npath: wiki\nacl:\n  default: [sales]\n"


@pytest.fixture()
def two_sources(tmp_path, encoder, monkeypatch):
    """A records source naming two organisations and a files source, synced the way `stitch ingest` does."""
    import api.services

    monkeypatch.setattr(api.services, "load_encoder", lambda _settings: encoder)  # the session's model
    (tmp_path / "wiki").mkdir()
    (tmp_path / "wiki" / "handbook.md").write_text("# Handbook\n\nRefunds for Zorblax Industries are issued within 30 days.\n")
    (tmp_path / "crm.jsonl").write_text("".join(json.dumps(r) + "\n" for r in CRM_ROWS))
    (tmp_path / "crm.yaml").write_text(CRM)
    (tmp_path / "wiki.yaml").write_text(WIKI)
    settings = Settings(data_dir=tmp_path / "data")
    from api.commands import run_ingest

    report = run_ingest(settings, [tmp_path / "crm.yaml", tmp_path / "wiki.yaml"], full=False, show_progress=False)
    assert report.added == 3
    yield settings, tmp_path
    from core.store.factory import close_store

    close_store(settings)


def _state(settings: Settings) -> dict:
    from api import reads
    from api.services import Services

    services = Services(settings)
    names = [e["name"] for e in reads.entities_answer(services, Principal("", ("sales",)), query="", limit=50)
             ["entities"]]
    return {"crm_docs": set(services.ledger.for_source("crm")), "names": names,
            "crm_chunks": services.store.count(filters=SearchFilters(("crm",))),
            "wiki_chunks": services.store.count(filters=SearchFilters(("wiki",)))}


def test_removing_a_source_as_the_readme_says(two_sources):
    """README "Source ownership and the delete guard": point the manifest at an empty file (records) or
    folder (files) and pass --allow-mass-delete."""
    from api.commands import run_ingest
    from governance.audit_review import verify_trail

    settings, folder = two_sources
    before = _state(settings)
    assert before["crm_docs"] == {"crm:1", "crm:2"} and before["crm_chunks"] == 2
    assert {"Zorblax Industries", "Quuxco Ltd"} <= set(before["names"])
    (folder / "crm.jsonl").write_text("")
    with pytest.raises(SyncRefusedError, match="would delete 2 of the 2 documents"):
        run_ingest(settings, [folder / "crm.yaml"], full=False, show_progress=False)
    assert _state(settings) == before  # refused: nothing changed
    report = run_ingest(settings, [folder / "crm.yaml"], full=False, show_progress=False, allow_mass_delete=True)
    assert report.deleted == 2
    after = _state(settings)
    assert after["crm_docs"] == set() and after["crm_chunks"] == 0  # ledger rows and chunks gone
    assert "Quuxco Ltd" not in after["names"]  # a name only the removed source mentioned is gone
    assert "Zorblax Industries" in after["names"]  # the wiki still mentions this one
    assert after["wiki_chunks"] == before["wiki_chunks"]  # other sources untouched
    records = [json.loads(line) for line in settings.audit_log_path.read_text().splitlines()]
    ingests = [r for r in records if r["event"] == "ingest"]
    assert [(r["sources"], r["added"], r["deleted"]) for r in ingests] == [(["crm", "wiki"], 3, 0), (["crm"], 0, 2)]
    assert verify_trail(settings.audit_log_path).ok  # history is kept, not rewritten
    (folder / "other.yaml").write_text(CRM)  # the source name stays owned by its manifest
    with pytest.raises(SyncRefusedError, match="belongs to another manifest"):
        run_ingest(settings, [folder / "other.yaml"], full=False, show_progress=False)


def _routes(routes):  # noqa: ANN001, ANN202 - FastAPI keeps included routers as wrappers
    for route in routes:
        if type(route).__name__ == "_IncludedRouter":
            yield from _routes(route.original_router.routes)
        else:
            yield route


def _scopes_of(dependant) -> set[str]:  # noqa: ANN001
    found = set()
    for dependency in dependant.dependencies:
        found |= {dependency.call.scope} if getattr(dependency.call, "scope", None) else set()
        found |= _scopes_of(dependency)
    return found


def _readme_scope_table() -> dict[str, set[str]]:
    from tests.conftest import ROOT

    text = (ROOT / "README.md").read_text(encoding="utf-8")
    table = text[text.index("| scope | may call | console pages |"):].split("\n\n")[0]
    rows = {}
    for line in table.splitlines()[2:]:
        scope, calls = line.split("|")[1:3]
        rows[scope.strip().strip("`")] = set(re.findall(r"`((?:GET|POST) /[^`]*)`", calls))
    return rows


def test_the_readme_scope_table_is_what_guards_each_route(tmp_path):
    """Every route that needs a scope is in that scope's README row, every row names only routes that
    scope guards, every scope has a row — and a key holding every other scope is refused (403)."""
    from fastapi.routing import APIRoute
    from fastapi.testclient import TestClient

    from api.app import create_app
    from api.keys import SCOPES, KeyStore

    table = _readme_scope_table()
    assert set(table) == set(SCOPES), "README 'Keys, scopes and roles': one row per scope in api/keys.py SCOPES"
    app = create_app(Settings(data_dir=tmp_path))
    guarded = {}
    for route in _routes(app.routes):
        if isinstance(route, APIRoute) and not route.path.startswith("/console"):  # console: its own table
            for scope in _scopes_of(route.dependant):
                for method in route.methods:
                    guarded[f"{method} {route.path.replace(':path}', '}')}"] = scope
    guarded["POST /mcp"] = "context"  # McpAuthGate (tests/test_mcp.py refuses an ingest-only key)
    documented = {call: scope for scope, calls in table.items() for call in calls}  # admin's row: admin-only routes
    assert documented == guarded, ("the README scope table drifted from the routes: add the route to its "
                                   "scope's row (or remove a row entry the code no longer has)")
    keys = KeyStore(tmp_path / "api_keys.json")
    client = TestClient(app, raise_server_exceptions=False)
    for call, scope in guarded.items():
        method, path = call.split(" ", 1)
        others = tuple(s for s in SCOPES if s not in (scope, "admin"))
        key = keys.create(scopes=others, roles=("*",), principals=("*",))
        url = re.sub(r"\{[^}]+\}", "x", path)
        response = client.request(method, url, headers={"Authorization": f"Bearer {key}"}, json={})
        assert response.status_code == 403 and scope in response.json()["error"]["message"], (call, response.text)


def test_updated_after_never_matches_a_document_without_a_date(two_sources):
    """docs/ingest.md "Dates": records without updated_field have no date; files fall back to their mtime."""
    from datetime import datetime, timezone

    from api.services import Services

    settings, _ = two_sources
    store = Services(settings).store
    since = SearchFilters(updated_after=datetime(2000, 1, 1, tzinfo=timezone.utc))
    assert store.count(filters=since) == store.count(filters=SearchFilters(("wiki",))) > 0
    assert store.count(filters=SearchFilters(("crm",), updated_after=since.updated_after)) == 0
