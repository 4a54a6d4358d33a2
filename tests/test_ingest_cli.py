"""`stitch ingest` as a steward sees it: JSON report, exit codes 0/1/2, progress bar."""

from __future__ import annotations

import io
import json

import pytest
from typer.testing import CliRunner

from api.cli import app as cli
from core.config import get_settings
from ingest.progress import TerminalProgress


@pytest.fixture()
def runner(tmp_path, monkeypatch, encoder):
    monkeypatch.setenv("STITCH_DATA_DIR", str(tmp_path / "data"))
    get_settings.cache_clear()
    yield CliRunner()
    from core.store.factory import close_store

    close_store(get_settings())
    get_settings.cache_clear()


def _manifest(tmp_path, rows):
    (tmp_path / "rows.jsonl").write_text(rows)
    path = tmp_path / "crm.yaml"
    path.write_text("source: crm\nkind: records\npath: rows.jsonl\nid_field: id\ntext_fields: [text]\n"
                    "acl: {default: [sales], field: roles}\n")
    return str(path)


def test_exit_codes_and_json_report(runner, tmp_path):
    good = _manifest(tmp_path, '{"id": "1", "text": "Acme renewal"}\n{"id": "2", "text": "Hidden", "roles": "exec"}\n')
    result = runner.invoke(cli, ["ingest", good, "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert {k: report[k] for k in ("added", "updated", "unchanged", "deleted", "failed", "exit_code")} == \
        {"added": 2, "updated": 0, "unchanged": 0, "deleted": 0, "failed": 0, "exit_code": 0}

    bad_row = _manifest(tmp_path, '{"id": "1", "text": "Acme renewal"}\n{"id": "2", "text": "Hidden"}\n{"text": "x"}\n')
    result = runner.invoke(cli, ["ingest", bad_row, "--json"])
    report = json.loads(result.stdout)
    assert result.exit_code == 1 and report["failed"] == 1 and report["unchanged"] == 1 and report["updated"] == 1
    assert report["errors"] == [{"source": "crm", "item": "rows.jsonl:row 3", "reason": "missing id field 'id'"}]

    (tmp_path / "broken.yaml").write_text("source: crm\nkind: records\npath: rows.jsonl\n")
    result = runner.invoke(cli, ["ingest", str(tmp_path / "broken.yaml")])
    assert result.exit_code == 2 and "id_field" in result.output


def test_progress_bar_shows_documents_of_total_and_chunks():
    stream = io.StringIO()
    bar = TerminalProgress(stream)
    bar("total", 3)
    for _ in range(3):
        bar("chunks", 2)
        bar("document", 1)
    bar.close()
    out = stream.getvalue()
    assert "3/3" in out and "chunks=6" in out and "doc/s" in out
