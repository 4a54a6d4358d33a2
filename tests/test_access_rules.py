"""Access rules: include/exclude/ACL globs anchored at the source root (one semantics for ingest and the
evaluation oracle), role strings validated, explicit empty ACL fields mean the default."""

from __future__ import annotations

import shutil

import pytest

from core.errors import ManifestError
from evaluation.suite import AclOracle
from ingest.manifest import load_manifest
from ingest.sources import SourceFailure, iter_source_items
from tests.conftest import FIXTURES


def _tree(tmp_path, manifest_name, files):
    shutil.copy(FIXTURES / "manifests" / f"{manifest_name}.yaml", tmp_path / "m.yaml")
    root = tmp_path / manifest_name
    for rel in files:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text("Subject: board minutes\n\nThe board met.\n" if rel.endswith(".eml")
                                else "# Notes\n\nSome words.\n")
    return load_manifest(tmp_path / "m.yaml")


def _acl(manifest):
    return {i.doc_id: i.load().acl for i in iter_source_items(manifest) if not isinstance(i, SourceFailure)}


def test_rules_are_anchored_at_the_source_root_for_email(tmp_path):
    manifest = _tree(tmp_path, "email", ["exec/sales/board.eml", "sales/q3.eml", "other/sales/x.eml"])
    acl = _acl(manifest)
    assert acl["email:exec/sales/board.eml"] == ("role:exec",)  # was sales+exec: `sales/**` matched the tail
    assert acl["email:other/sales/x.eml"] == ("role:exec",)  # nested 'sales' is not the sales mailbox
    assert acl["email:sales/q3.eml"] == ("role:exec", "role:sales")
    oracle = AclOracle([manifest])
    assert oracle.visible("email:sales/q3.eml", ("sales",))
    assert not oracle.visible("email:exec/sales/board.eml", ("sales",))
    assert not oracle.visible("email:other/sales/x.eml", ("sales",))


def test_nested_public_folder_is_not_public(tmp_path):
    manifest = _tree(tmp_path, "wiki", ["engineering/public/x.md", "public/y.md", "deep/drafts/z.md"])
    acl = _acl(manifest)
    assert "public" not in acl["wiki:engineering/public/x.md"]
    assert acl["wiki:public/y.md"] == ("public",)
    assert acl["wiki:deep/drafts/z.md"] != ()  # only the top-level drafts/ folder is invisible
    oracle = AclOracle([manifest])
    assert not oracle.visible("wiki:engineering/public/x.md", ("nobody",))
    assert oracle.visible("wiki:public/y.md", ("nobody",))


@pytest.mark.parametrize(
    ("pattern", "path", "expected"),
    [
        ("sales/**", "sales/a.eml", True),
        ("sales/**", "sales/2026/a.eml", True),
        ("sales/**", "exec/sales/a.eml", False),
        ("sales", "sales/a.eml", True),  # a folder covers everything inside
        ("*.md", "a.md", True),
        ("*.md", "x/a.md", False),
        ("**/*.md", "x/y/a.md", True),
        ("**/*.md", "a.md", True),
        ("a/**/b.md", "a/b.md", True),
        ("a/**/b.md", "a/x/y/b.md", True),
        ("/public/**", "public/p.md", True),
        ("q[0-9].md", "q3.md", True),
        ("q[!0-9].md", "q3.md", False),
        ("*", "deep/in/side.md", False),  # a last segment of just '*': direct entries only
        ("sales/*", "sales/x.eml", True),
        ("sales/*", "sales/2026/x.eml", False),
        ("sales/**/*", "sales/2026/x.eml", True),
        ("**/sales/**", "exec/sales/x.eml", True),  # any depth, when asked for
        ("Sales/**", "sales/a.eml", False),
    ],
)
def test_one_documented_semantics_shared_by_ingest_and_oracle(pattern, path, expected):
    from core.pathmatch import glob_matches
    from evaluation.suite import _glob_regex

    assert glob_matches(path, pattern) is expected
    assert bool(_glob_regex(pattern).match(path)) is expected  # independent implementation, same rule


@pytest.mark.parametrize(
    ("glob", "words"),
    [("", "is empty"), ("!x/**", "negation"), ("../x", "'..'"), ("[abc", "unclosed"), (" x", "spaces"),
     ("#x", "comments")],
)
def test_bad_globs_are_rejected_at_load_naming_key_and_value(tmp_path, glob, words):
    (tmp_path / "data").mkdir()
    path = tmp_path / "m.yaml"
    path.write_text(f"source: wiki\nkind: files\npath: data\nacl:\n  rules:\n    - match: {glob!r}\n      roles: [a]\n")
    with pytest.raises(ManifestError) as err:
        load_manifest(path)
    message = str(err.value)
    assert str(path) in message and "acl.rules[0].match" in message and words in message
