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
    assert not good and "array of objects" in bad["x.json"]
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


def test_role_lists_in_a_field_are_split_and_checked(tmp_path):
    rows = [{"id": "1", "text": "a", "visible_to": "sales, exec"},
            {"id": "2", "text": "b", "visible_to": "sales exec"},
            {"id": "3", "text": "c", "visible_to": ["finance", "exec public"]},
            {"id": "4", "text": "d", "visible_to": []},
            {"id": "5", "text": "e", "visible_to": " ; "}]
    good, bad = _items(tmp_path, "r.jsonl", "\n".join(json.dumps(r) for r in rows) + "\n")
    assert good["crm:1"].load().acl == ("role:exec", "role:sales")  # two roles, not "sales, exec"
    assert set(bad) == {"r.jsonl:row 2", "r.jsonl:row 3"}
    assert "field 'visible_to': invalid role 'sales exec'" in bad["r.jsonl:row 2"]
    assert "invalid role 'exec public'" in bad["r.jsonl:row 3"]
    for empty in ("crm:4", "crm:5"):  # an explicit empty field means acl.default, as the README says
        assert good[empty].load().acl == ("role:sales",) and good[empty].acl_defaulted


def test_unterminated_csv_quote_is_an_error_naming_the_line(tmp_path):
    body = 'id,text\n1,"fine"\n2,"never closed\n3,swallowed\n4,also swallowed\n'
    good, bad = _items(tmp_path, "q.csv", body)
    assert set(good) == {"crm:1"}
    assert list(bad) == ["q.csv:line 3"] and "never closed" in bad["q.csv:line 3"]


def test_utf8_error_names_the_line_not_row_0(tmp_path):
    (tmp_path / "latin.csv").write_bytes("id,text\n1,ok\n2,caf\xe9\n".encode("latin-1"))
    (tmp_path / "m.yaml").write_text(MANIFEST.format(path="latin.csv"))
    [failure] = list(iter_source_items(load_manifest(tmp_path / "m.yaml")))
    assert failure.label == "latin.csv:line 3" and "not UTF-8" in failure.reason


def test_jsonl_in_a_files_tree_names_the_bad_line(tmp_path):
    from ingest.partition import partition_file

    from core.errors import InputError
    import pytest

    path = tmp_path / "events.jsonl"
    path.write_text('{"a": 1}\n{"b": 2}\n\n{"c": \n')
    with pytest.raises(InputError) as err:
        partition_file(path)
    assert str(err.value).startswith("line 4: invalid JSON")
    path = tmp_path / "t.csv"
    path.write_text('a,b\n1,"open\n2,3\n')
    with pytest.raises(InputError) as err:
        partition_file(path)
    assert str(err.value).startswith("line 2: a quoted field is never closed")
