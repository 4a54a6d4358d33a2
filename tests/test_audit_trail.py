"""The tamper-evident audit trail (issue 14): a chain that catches edited, deleted, reordered and cut
records, across rotated files and several writing processes; ``stitch audit verify/export``."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
import threading

import pytest
from typer.testing import CliRunner

from api.cli import app as cli
from core.config import get_settings
from governance.audit import AuditTrail, chain_files
from governance.audit_review import verify_trail
from tests.conftest import ROOT


def _trail(tmp_path, n=10, **kwargs) -> AuditTrail:
    trail = AuditTrail(tmp_path / "audit.jsonl", **kwargs)
    for i in range(n):
        trail.append([{"time": f"2026-12-01T10:{i:02d}:00+00:00", "event": "request",
                       "principal_id": "alice" if i % 2 else "bob", "status": 200, "doc_ids": [f"wiki:{i}.md"]}])
    return trail


def _lines(trail):
    return trail.path.read_text().splitlines(keepends=True)


def test_an_untouched_trail_verifies(tmp_path):
    result = verify_trail(_trail(tmp_path).path)
    assert result.ok and result.records == 10


def test_an_edited_record_is_caught_where_it_is(tmp_path):
    trail = _trail(tmp_path)
    lines = _lines(trail)
    lines[4] = lines[4].replace('"status":200', '"status":403')
    trail.path.write_text("".join(lines))
    broken = verify_trail(trail.path).broken
    assert broken.line == 5 and broken.seq == 5 and "edited" in broken.reason


def test_a_deleted_record_is_caught(tmp_path):
    trail = _trail(tmp_path)
    lines = _lines(trail)
    del lines[3]
    trail.path.write_text("".join(lines))
    broken = verify_trail(trail.path).broken
    assert broken.line == 4 and "4..4 are missing" in broken.reason


def test_reordered_records_are_caught(tmp_path):
    trail = _trail(tmp_path)
    lines = _lines(trail)
    lines[2], lines[6] = lines[6], lines[2]
    trail.path.write_text("".join(lines))
    broken = verify_trail(trail.path).broken
    assert broken.line == 3


def test_a_cut_tail_is_caught_by_the_head(tmp_path):
    trail = _trail(tmp_path)
    trail.path.write_text("".join(_lines(trail)[:-2]))
    broken = verify_trail(trail.path).broken
    assert broken and "cut from the end" in broken.reason and broken.seq == 9


def test_a_half_written_line_is_caught(tmp_path):
    trail = _trail(tmp_path)
    text = trail.path.read_text()
    trail.path.write_text(text[: len(text) - 30])
    assert verify_trail(trail.path).broken.line == 10


def test_rotation_keeps_the_chain_and_a_removed_file_is_caught(tmp_path):
    trail = _trail(tmp_path, n=40, rotate_bytes=1024)
    files = chain_files(trail.path)
    assert len(files) >= 3 and files[-1] == trail.path
    result = verify_trail(trail.path)
    assert result.ok and result.records == 40
    files[1].unlink()
    broken = verify_trail(trail.path).broken
    assert broken and "missing" in broken.reason and broken.file == files[2].name


def test_several_processes_append_to_one_chain(tmp_path):
    script = ("import sys; from pathlib import Path; from governance.audit import AuditTrail; "
              "t = AuditTrail(Path(sys.argv[1])); "
              "[t.append([{'event': 'request', 'n': i}]) for i in range(60)]")
    writers = [subprocess.Popen([sys.executable, "-c", script, str(tmp_path / "audit.jsonl")], cwd=ROOT)
               for _ in range(3)]
    assert all(w.wait(timeout=120) == 0 for w in writers)
    result = verify_trail(tmp_path / "audit.jsonl")
    assert result.ok and result.records == 180


def test_recording_never_waits_for_the_disk(tmp_path):
    trail = AuditTrail(tmp_path / "audit.jsonl")
    disk = threading.Event()
    real_append = trail.append
    trail.append = lambda records: (disk.wait(), real_append(records))[1]  # a stalled disk
    caller = threading.Thread(target=lambda: [trail.record({"event": "request", "n": i}) for i in range(50)])
    caller.start()
    caller.join(timeout=30)
    assert not caller.is_alive()  # every record() returned while nothing could be written
    assert not trail.path.exists()
    disk.set()
    trail.flush()
    assert verify_trail(trail.path).records == 50


def test_a_line_separator_in_a_value_does_not_split_a_record(tmp_path):
    trail = AuditTrail(tmp_path / "audit.jsonl")
    trail.append([{"principal_id": "eve\u2028\x85\r", "event": "request"}, {"event": "request"}])
    assert len(trail.path.read_text().splitlines()) == 2 and verify_trail(trail.path).ok


def test_a_log_from_before_the_chain_is_moved_aside(tmp_path):
    (tmp_path / "audit.jsonl").write_text('{"request_id": "old", "status": 200}\n')
    _trail(tmp_path, n=2)
    assert verify_trail(tmp_path / "audit.jsonl").ok
    assert list(tmp_path.glob("audit.unchained-*.jsonl"))


@pytest.fixture()
def runner(tmp_path, monkeypatch):
    monkeypatch.setenv("STITCH_DATA_DIR", str(tmp_path / "data"))
    get_settings.cache_clear()
    yield CliRunner()
    get_settings.cache_clear()


def test_cli_verify_export_and_steward_actions(runner, tmp_path):
    trail = _trail(tmp_path / "data")
    created = runner.invoke(cli, ["keys", "create", "--scope", "context", "--role", "sales", "--name", "bot"])
    assert created.exit_code == 0, created.output
    key_id = created.stdout.strip().split("_")[1]
    ok = runner.invoke(cli, ["audit", "verify", "--json"])
    assert ok.exit_code == 0 and json.loads(ok.stdout)["records"] == 11
    exported = runner.invoke(cli, ["audit", "export", "--format", "jsonl"])
    last = json.loads(exported.stdout.splitlines()[-1])
    assert last["event"] == "key_create" and last["key_id"] == key_id and last["actor"].startswith("cli:")
    rows = list(csv.DictReader(io.StringIO(runner.invoke(cli, [
        "audit", "export", "--format", "csv", "--principal", "alice",
        "--since", "2026-12-01T10:02", "--until", "2026-12-01T10:08"]).stdout)))
    assert [r["seq"] for r in rows] == ["4", "6", "8"] and json.loads(rows[0]["doc_ids"]) == ["wiki:3.md"]
    bad = runner.invoke(cli, ["audit", "export", "--since", "yesterday"])
    assert bad.exit_code == 2 and "--since" in bad.output
    lines = _lines(trail)
    trail.path.write_text("".join(lines[:3] + lines[4:]))
    broken = runner.invoke(cli, ["audit", "verify"])
    assert broken.exit_code == 1 and "line 4" in broken.output and "missing" in broken.output


def test_ephemeral_keys_are_audited_when_minted(tmp_path):
    """The `local-cli` key of `stitch serve` and the demo key never reach the keys file; minting them
    must still leave a key_create record (ids and grants, never the secret)."""
    from api.keys import KeyStore
    from api.serving import announce
    from core.config import Settings
    from governance.audit import trail_for

    settings = Settings(data_dir=tmp_path / "data")
    announce(settings, "http://127.0.0.1:1", KeyStore(settings.keys_path))
    trail_for(settings).flush()
    records = [json.loads(line) for line in settings.audit_log_path.read_text().splitlines()]
    minted = [r for r in records if r["event"] == "key_create"]
    assert len(minted) == 1 and minted[0]["name"] == "local-cli" and minted[0]["ephemeral"] is True
    # context for `stitch query`, admin for `stitch tune` (POST /v1/tune); only the data-dir owner can read it
    assert minted[0]["scopes"] == ["context", "admin"] and minted[0]["actor"] == "serve"
    secret = (settings.data_dir / "local_api_key").read_text().strip()
    assert secret not in settings.audit_log_path.read_text()
    assert verify_trail(settings.audit_log_path).ok
