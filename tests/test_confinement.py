"""Ingest confinement for every manifest (CLI included): symbolic links never lead outside a source."""

from __future__ import annotations

import json

import pytest

from ingest.manifest import load_manifest
from ingest.sources import SourceFailure, iter_source_items
from tests.test_ingest_pipeline import env  # noqa: F401 - the fixture: a real embedded store and ledger


def _wiki(env, files):
    root = env.dir / "wiki"
    root.mkdir(exist_ok=True)
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    manifest = env.dir / "wiki.yaml"
    manifest.write_text("source: wiki\nkind: files\npath: wiki\nacl: {default: [staff]}\n")
    return root, manifest


def test_symlinks_out_of_a_files_tree_are_not_followed(env):
    secret = env.dir / "outside" / "secret.md"
    secret.parent.mkdir()
    secret.write_text("# Secret\n\nzebracanary payroll numbers.\n")
    root, manifest = _wiki(env, {"a.md": "# A\n\nalpha page.\n", "sub/link.md": "# Link\n\nharmless.\n"})
    (root / "inside.md").symlink_to(root / "a.md")  # a link inside the tree is fine
    (root / "folder").symlink_to(secret.parent, target_is_directory=True)
    assert env.ingest(manifest).added == 3
    (root / "sub" / "link.md").unlink()
    (root / "sub" / "link.md").symlink_to(secret)
    report = env.ingest(manifest)
    assert [(e.item, e.reason) for e in report.errors] == [
        ("sub/link.md", "symbolic link to a file outside the source folder: not read")]
    assert report.deleted == 1  # the version indexed before the link was planted is gone
    assert env.keyword_hits("zebracanary") == [] and env.keyword_hits("harmless") == []
    items = [i for i in iter_source_items(load_manifest(manifest)) if not isinstance(i, SourceFailure)]
    assert sorted(i.doc_id for i in items) == ["wiki:a.md", "wiki:inside.md"]


def test_records_folder_does_not_follow_links_out(env):
    outside = env.dir / "outside.jsonl"
    outside.write_text('{"id": "x", "title": "t", "text": "zebracanary"}\n')
    (env.dir / "rows").mkdir()
    (env.dir / "rows" / "a.jsonl").write_text('{"id": "1", "title": "t", "text": "fine"}\n')
    (env.dir / "rows" / "b.jsonl").symlink_to(outside)
    (env.dir / "m.yaml").write_text("source: crm\nkind: records\npath: rows\nid_field: id\ntext_fields: [text]\n")
    items = list(iter_source_items(load_manifest(env.dir / "m.yaml")))
    assert [i.doc_id for i in items if not isinstance(i, SourceFailure)] == ["crm:1"]
    assert [(f.label, f.reason) for f in items if isinstance(f, SourceFailure)] == [
        ("b.jsonl", "symbolic link to a file outside the source folder: not read")]


# --- source ownership and the delete guard (library level, as the CLI runs it) -------------------------------

def test_a_source_is_owned_by_its_manifest_and_takeover_is_explicit(env):
    from core.errors import SyncRefusedError
    from ingest.pipeline import IngestContext, ingest_manifests

    root, manifest = _wiki(env, {"a.md": "# A\n\nalpha.\n", "b.md": "# B\n\nbeta.\n"})
    env.ingest(manifest)
    other = env.dir / "elsewhere" / "wiki.yaml"
    other.parent.mkdir()
    other.write_text("source: wiki\nkind: files\npath: ../wiki\nacl: {public: true}\n")
    with pytest.raises(SyncRefusedError) as err:
        env.ingest(other)
    assert "belongs to another manifest" in str(err.value) and "--take-over" in str(err.value)
    assert all("public" not in h.payload["acl"] for h in env.store.document_chunks("wiki:a.md", acl_tokens=None))
    ctx = IngestContext(env.settings, env.encoder, env.store, env.ledger)
    report = ingest_manifests([load_manifest(other)], ctx, take_over=True)
    assert report.takeovers == [{"source": "wiki", "from": str(manifest.resolve()), "to": str(other.resolve())}]
    assert [how for _, _, how in env.ledger.source_owner_changes("wiki")] == ["created", "taken over"]
    with pytest.raises(SyncRefusedError):
        env.ingest(manifest)  # the first manifest no longer owns it


def test_a_sync_deleting_most_of_a_source_is_refused_without_the_flag(env):
    from core.errors import SyncRefusedError
    from ingest.pipeline import IngestContext, ingest_manifests

    root, manifest = _wiki(env, {f"{i}.md": f"# P{i}\n\npage {i}.\n" for i in range(4)})
    env.ingest(manifest)
    for i in range(3):
        (root / f"{i}.md").unlink()
    with pytest.raises(SyncRefusedError) as err:
        env.ingest(manifest)
    assert "would delete 3 of the 4 documents" in str(err.value) and "--allow-mass-delete" in str(err.value)
    assert env.ledger.get("wiki:0.md") is not None and env.store.document_chunks("wiki:0.md", acl_tokens=None)
    ctx = IngestContext(env.settings, env.encoder, env.store, env.ledger)
    report = ingest_manifests([load_manifest(manifest)], ctx, allow_mass_delete=True)
    assert report.deleted == 3 and env.ledger.get("wiki:0.md") is None


def test_cli_flags_and_exit_code_2(tmp_path, monkeypatch, encoder):
    from typer.testing import CliRunner

    from api.cli import app as cli
    from core.config import get_settings
    from core.store.factory import close_store

    monkeypatch.setenv("STITCH_DATA_DIR", str(tmp_path / "data"))
    get_settings.cache_clear()
    try:
        (tmp_path / "w").mkdir()
        (tmp_path / "w" / "a.md").write_text("# A\n\nalpha.\n")
        (tmp_path / "one.yaml").write_text("source: wiki\nkind: files\npath: w\nacl: {default: [staff]}\n")
        (tmp_path / "two.yaml").write_text("source: wiki\nkind: files\npath: w\nacl: {default: [exec]}\n")
        runner = CliRunner()
        assert runner.invoke(cli, ["ingest", str(tmp_path / "one.yaml"), "--json"]).exit_code == 0
        refused = runner.invoke(cli, ["ingest", str(tmp_path / "two.yaml")])
        assert refused.exit_code == 2 and "--take-over" in refused.output
        taken = runner.invoke(cli, ["ingest", str(tmp_path / "two.yaml"), "--take-over", "--json"])
        assert taken.exit_code == 0 and json.loads(taken.stdout)["takeovers"][0]["source"] == "wiki"
        (tmp_path / "w" / "a.md").unlink()
        assert runner.invoke(cli, ["ingest", str(tmp_path / "two.yaml")]).exit_code == 2
        allowed = runner.invoke(cli, ["ingest", str(tmp_path / "two.yaml"), "--allow-mass-delete", "--json"])
        assert allowed.exit_code == 0 and json.loads(allowed.stdout)["deleted"] == 1
    finally:
        close_store(get_settings())
        get_settings.cache_clear()


def test_an_unreadable_acl_field_fails_closed_for_an_indexed_record(env):
    rows = env.dir / "acl.jsonl"
    manifest = env.dir / "acl.yaml"
    manifest.write_text("source: crm\nkind: records\npath: acl.jsonl\nid_field: id\ntext_fields: [text]\n"
                        "acl: {default: [staff], field: visible_to}\n")
    rows.write_text('{"id": "1", "text": "okapi pricing", "visible_to": "staff"}\n'
                        '{"id": "2", "text": "other", "visible_to": "staff"}\n')
    env.ingest(manifest)
    assert env.keyword_hits("okapi")
    rows.write_text('{"id": "1", "text": "okapi pricing", "visible_to": "staff exec"}\n'
                    '{"id": "2", "text": "other", "visible_to": "staff"}\n')
    report = env.ingest(manifest)
    assert report.failed == 1 and "invalid role 'staff exec'" in report.errors[0].reason
    assert env.keyword_hits("okapi") == []  # not left readable under its old ACL
