"""Records sources (CSV, JSON array, JSONL): malformed rows are reported by row number and skipped."""

from __future__ import annotations

import json

from core.access import acl_tokens_for_roles
from ingest.manifest import load_manifest
from ingest.sources import SourceFailure, SourceItem, iter_source_items

MANIFEST = """source: crm
kind: records
path: {path}
id_field: id
title_field: title
text_fields: [text]
updated_field: updated
entity_fields: {{organization: [company]}}
acl: {{default: [sales], field: visible_to}}
uri_template: "https://crm.example/{{id}}"
"""


def _items(tmp_path, name, body):
    (tmp_path / name).write_text(body)
    (tmp_path / "m.yaml").write_text(MANIFEST.format(path=name))
    items = list(iter_source_items(load_manifest(tmp_path / "m.yaml")))
    good = {i.doc_id: i for i in items if isinstance(i, SourceItem)}
    bad = {f.label: f.reason for f in items if isinstance(f, SourceFailure)}
    return good, bad


def test_csv_rows_land_and_bad_rows_are_reported_by_line(tmp_path):
    body = ("id,title,text,updated,company,visible_to\n"
            "A-1,Acme,Renewal due in March,2026-01-05,Acme Corp,sales;exec\n"
            ",No id,orphan text,,,\n"
            "A-3,Bad date,text,not-a-date,,\n"
            "A-4,Extra,text,2026-01-01,,,surplus\n"
            "A-5,Globex,Pilot running,,Globex,\n")
    good, bad = _items(tmp_path, "accounts.csv", body)
    assert set(good) == {"crm:A-1", "crm:A-5"}
    assert bad == {"accounts.csv:row 3": "missing id field 'id'",
                   "accounts.csv:row 4": "field 'updated': bad date 'not-a-date'",
                   "accounts.csv:row 5": "more values than header columns"}
    doc = good["crm:A-1"].load()
    assert doc.acl == acl_tokens_for_roles(["sales", "exec"])  # per-record ACL field
    assert good["crm:A-5"].load().acl == acl_tokens_for_roles(["sales"])  # default when the field is empty
    assert doc.title == "Acme" and "Renewal due in March" in doc.text
    assert doc.uri == "https://crm.example/A-1" and doc.updated_at.year == 2026
    assert doc.entity_mentions == (("organization", "Acme Corp"),)


def test_json_array_and_jsonl_report_row_numbers(tmp_path):
    rows = [{"id": "T-1", "title": "Ticket", "text": "Printer jam", "visible_to": ["support", "user:bob"]}, "oops",
            {"id": "T-3", "text": "Login issue"}]
    good, bad = _items(tmp_path, "tickets.json", json.dumps(rows))
    assert set(good) == {"crm:T-1", "crm:T-3"} and bad == {"tickets.json:row 2": "not an object"}
    assert "user:bob" in good["crm:T-1"].load().acl

    lines = '{"id": "E-1", "text": "hello"}\n{"id": "E-2", "text": \n\n{"id": "E-4", "text": "bye"}\n'
    good, bad = _items(tmp_path, "events.jsonl", lines)
    assert set(good) == {"crm:E-1", "crm:E-4"}
    assert list(bad) == ["events.jsonl:row 2"] and "invalid JSON" in bad["events.jsonl:row 2"]


def test_whole_file_problems_are_reported_not_raised(tmp_path):
    good, bad = _items(tmp_path, "x.json", '{"id": 1}')
    assert not good and "array of objects" in bad["x.json:row 0"]
    (tmp_path / "latin.csv").write_bytes("id,text\n1,caf\xe9\n".encode("latin-1"))
    (tmp_path / "m.yaml").write_text(MANIFEST.format(path="latin.csv"))
    failures = list(iter_source_items(load_manifest(tmp_path / "m.yaml")))
    assert len(failures) == 1 and "not UTF-8" in failures[0].reason


def test_fingerprint_changes_with_content_and_manifest_but_not_row_order(tmp_path):
    first, _ = _items(tmp_path, "a.jsonl", '{"id": "1", "text": "x"}\n{"id": "2", "text": "y"}\n')
    swapped, _ = _items(tmp_path, "a.jsonl", '{"id": "2", "text": "y"}\n{"id": "1", "text": "x"}\n')
    edited, _ = _items(tmp_path, "a.jsonl", '{"id": "1", "text": "x!"}\n{"id": "2", "text": "y"}\n')
    assert first["crm:1"].fingerprint == swapped["crm:1"].fingerprint
    assert first["crm:1"].fingerprint != edited["crm:1"].fingerprint
    assert first["crm:2"].fingerprint == edited["crm:2"].fingerprint
