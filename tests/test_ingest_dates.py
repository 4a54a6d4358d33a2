"""Documents are dated by their own date (e-mail ``Date:``, PDF/DOCX metadata, record field), not by
the file's mtime; the payload says which (``updated_source``), and mtime is only the fallback."""

from __future__ import annotations

import os
from datetime import date, datetime, timezone

import pytest

from core.payload import UPDATED_SOURCE, chunk_payload
from evaluation import corpus_files as F
from core.models import Chunk
from ingest.manifest import load_manifest
from ingest.sources import iter_source_items

STALE = datetime(2025, 1, 1, tzinfo=timezone.utc)


def _documents(manifest_path):
    items = list(iter_source_items(load_manifest(manifest_path)))
    return {item.doc_id: item.load() for item in items}


@pytest.fixture()
def files_source(tmp_path):
    root = tmp_path / "docs"
    F.write_email(root / "mail" / "a.eml", sender="A <a@x.example>", to="B <b@x.example>", subject="Hello",
                  sent=datetime(2026, 10, 2, 9, 12, tzinfo=timezone.utc), body="Body text.\n", message_id="m1")
    F.write_pdf(root / "c.pdf", "A contract", [[("Term", "The term ends in 2027.")]],
                datetime(2024, 3, 1, 9, tzinfo=timezone.utc), "header line")
    F.write_docx(root / "d.docx", "A letter", [("Body", "Some words here.")], datetime(2023, 5, 5, 8))
    F.write_markdown(root / "notes.md", "Notes", [("Today", "Nothing carries a date here.")])
    for path in root.rglob("*"):
        if path.is_file():
            os.utime(path, (STALE.timestamp(), STALE.timestamp()))
    manifest = tmp_path / "docs.yaml"
    manifest.write_text("source: docs\nkind: files\npath: docs\ninclude: ['**/*']\nacl:\n  default: [sales]\n")
    return manifest


def test_files_are_dated_by_their_own_date_and_say_so(files_source):
    docs = _documents(files_source)
    assert docs["docs:mail/a.eml"].updated_at == datetime(2026, 10, 2, 9, 12, tzinfo=timezone.utc)
    assert docs["docs:mail/a.eml"].updated_source == "email_header"
    assert docs["docs:c.pdf"].updated_at.date() == date(2024, 3, 1)
    assert docs["docs:c.pdf"].updated_source == "pdf_metadata"
    assert docs["docs:d.docx"].updated_at.date() == date(2023, 5, 5)
    assert docs["docs:d.docx"].updated_source == "office_metadata"
    assert docs["docs:notes.md"].updated_at == STALE
    assert docs["docs:notes.md"].updated_source == "mtime"


def test_payload_carries_the_date_source(files_source):
    doc = _documents(files_source)["docs:mail/a.eml"]
    chunk = Chunk("c0", doc.doc_id, 0, doc.text[:5], 0, 5)
    payload = chunk_payload(doc, chunk, chunk_count=1)
    assert payload["updated_at"].startswith("2026-10-02") and payload[UPDATED_SOURCE] == "email_header"


def test_a_bad_date_header_falls_back_to_mtime(tmp_path):
    root = tmp_path / "docs"
    root.mkdir()
    (root / "a.eml").write_bytes(b"From: a@x.example\nSubject: Hi\nDate: not a date at all\n\nHello there.\n")
    os.utime(root / "a.eml", (STALE.timestamp(), STALE.timestamp()))
    (tmp_path / "m.yaml").write_text("source: docs\nkind: files\npath: docs\nacl:\n  default: [sales]\n")
    doc = _documents(tmp_path / "m.yaml")["docs:a.eml"]
    assert (doc.updated_at, doc.updated_source) == (STALE, "mtime")


def test_records_say_the_date_came_from_the_field(tmp_path):
    (tmp_path / "rows.jsonl").write_text('{"id": "1", "t": "hello", "changed": "2026-09-30"}\n{"id": "2", "t": "x"}\n')
    (tmp_path / "m.yaml").write_text("source: crm\nkind: records\npath: rows.jsonl\nid_field: id\n"
                                     "text_fields: [t]\nupdated_field: changed\nacl:\n  default: [sales]\n")
    docs = _documents(tmp_path / "m.yaml")
    assert docs["crm:1"].updated_at.date() == date(2026, 9, 30) and docs["crm:1"].updated_source == "record_field"
    assert docs["crm:2"].updated_at is None and docs["crm:2"].updated_source is None


def test_the_api_says_which_date_each_passage_and_document_carries(files_source, tmp_path, encoder):
    """A caller filtering or citing by ``updated_at`` must see whether it is the document's own date or only
    the file's mtime: ``updated_source`` on every passage of /v1/context and on /v1/documents."""
    from fastapi.testclient import TestClient

    from api.app import create_app
    from api.keys import KeyStore
    from api.services import Services
    from core.config import Settings
    from ingest.pipeline import ingest_manifests

    services = Services(Settings(data_dir=tmp_path / "data"))
    services.__dict__["encoder"] = encoder
    ingest_manifests([load_manifest(files_source)], services.ingest_context())
    key = KeyStore(services.settings.keys_path).create(scopes=("context",), roles=("sales",), principals=("*",))
    auth = {"Authorization": f"Bearer {key}"}
    with TestClient(create_app(services.settings, services=services)) as client:
        body = client.post("/v1/context", headers=auth, json={
            "query": "contract term ends body text letter words notes", "principal": {"id": "a", "roles": ["sales"]},
            "top_k": 10, "max_tokens": 2000}).json()
        sources = {p["doc_id"]: (p["updated_at"][:10], p["updated_source"]) for p in body["passages"]}
        document = client.get("/v1/documents/docs:mail/a.eml", headers=auth,
                              params={"principal_id": "a", "role": "sales"})
    services.store.close()
    assert sources["docs:mail/a.eml"] == ("2026-10-02", "email_header")
    assert sources["docs:c.pdf"] == ("2024-03-01", "pdf_metadata")
    assert sources["docs:notes.md"] == ("2025-01-01", "mtime")
    assert document.status_code == 200, document.text
    assert document.json()["updated_source"] == "email_header"
