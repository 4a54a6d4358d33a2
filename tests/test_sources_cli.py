"""`stitch sources list/remove`: a steward removes a source for good — its chunks, ledger rows and the
entity names only it gave — and frees the name, audited."""

from __future__ import annotations

import json

from api.cli import app as cli
from core.config import get_settings
from tests.test_ingest_cli import runner  # noqa: F401 - the fixture: CLI against a scratch data dir


def _manifest(tmp_path, name, source, rows):
    (tmp_path / f"{name}.jsonl").write_text(rows)
    path = tmp_path / f"{name}.yaml"
    path.write_text(f"source: {source}\nkind: records\npath: {name}.jsonl\nid_field: id\ntext_fields: [text]\n"
                    "acl: {default: [sales]}\nentity_fields: {organization: [company]}\n")
    return str(path)


def _json(result):
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_remove_a_source_everywhere_and_free_its_name(runner, tmp_path):
    crm = _manifest(tmp_path, "crm", "crm", '{"id": "1", "text": "Zanzibar Freight renewal", "company": "Zanzibar Freight Ltd"}\n'
                                           '{"id": "2", "text": "Umbrella quote", "company": "Umbrella Corporation"}\n')
    wiki = _manifest(tmp_path, "wiki", "wiki", '{"id": "w", "text": "Umbrella onboarding", "company": "Umbrella Corporation"}\n')
    assert _json(runner.invoke(cli, ["ingest", crm, wiki, "--json"]))["added"] == 3
    assert [(r["source"], r["documents"]) for r in _json(runner.invoke(cli, ["sources", "list", "--json"]))] == [
        ("crm", 2), ("wiki", 1)]

    refused = runner.invoke(cli, ["sources", "remove", "crm"], input="n\n")
    assert refused.exit_code == 1
    assert len(_json(runner.invoke(cli, ["sources", "list", "--json"]))) == 2

    report = _json(runner.invoke(cli, ["sources", "remove", "crm", "--yes", "--json"]))
    assert report["deleted"] == 2 and report["sources"] == ["crm"]
    assert [r["source"] for r in _json(runner.invoke(cli, ["sources", "list", "--json"]))] == ["wiki"]
    names = json.dumps(_json(runner.invoke(cli, ["entities", "list", "--json"])))
    assert "Zanzibar" not in names and "Umbrella" in names  # the name only crm gave is gone
    query = runner.invoke(cli, ["query", "Zanzibar Freight renewal", "--role", "sales", "--json"])
    assert "Zanzibar" not in query.stdout

    other = _manifest(tmp_path, "crm2", "crm", '{"id": "9", "text": "new system", "company": "Initech"}\n')
    assert _json(runner.invoke(cli, ["ingest", other, "--json"]))["added"] == 1  # no --take-over needed

    records = [json.loads(line) for line in get_settings().audit_log_path.read_text().splitlines()]
    assert any(r["event"] == "source_remove" and r["source"] == "crm" and r["deleted"] == 2 for r in records)


def test_an_unknown_source_is_a_clear_error(runner):
    result = runner.invoke(cli, ["sources", "remove", "nope", "--yes"])
    assert result.exit_code == 2 and "'nope'" in result.output and "nothing is indexed" in result.output


def test_removing_a_source_never_loads_the_model(runner, tmp_path, monkeypatch):
    crm = _manifest(tmp_path, "crm", "crm", '{"id": "1", "text": "Zanzibar Freight renewal", "company": "Zanzibar"}\n')
    assert _json(runner.invoke(cli, ["ingest", crm, "--json"]))["added"] == 1

    def no_model(settings):  # noqa: ANN001, ANN202
        raise AssertionError("stitch sources remove loaded the encoder")

    monkeypatch.setattr("api.services.load_encoder", no_model)
    monkeypatch.setattr("core.encoder.load_encoder", no_model)
    report = _json(runner.invoke(cli, ["sources", "remove", "crm", "--yes", "--json"]))
    assert report["deleted"] == 1 and report["sources"] == ["crm"]
    assert _json(runner.invoke(cli, ["sources", "list", "--json"])) == []
