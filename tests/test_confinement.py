"""Ingest confinement for every manifest (CLI included): symbolic links never lead outside a source."""

from __future__ import annotations

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
