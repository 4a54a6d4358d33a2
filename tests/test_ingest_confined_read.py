"""A file swapped for a link out of its source folder between the listing's check and the read is
not read: the check is made on the open descriptor (ingest/confined.py)."""

from __future__ import annotations

import os

import pytest

import ingest.sources as sources
from core.errors import InputError
from ingest.confined import OutsideSourceError, read_confined
from ingest.manifest import load_manifest
from ingest.sources import SourceFailure, SourceItem, iter_source_items


@pytest.fixture()
def tree(tmp_path):
    secret = tmp_path / "outside" / "secret.md"
    secret.parent.mkdir()
    secret.write_text("# Secret\n\nzebracanary payroll numbers.\n")
    root = tmp_path / "wiki"
    root.mkdir()
    (root / "a.md").write_text("# A\n\nalpha page.\n")
    (tmp_path / "wiki.yaml").write_text("source: wiki\nkind: files\npath: wiki\nacl: {default: [staff]}\n")
    return root, secret, load_manifest(tmp_path / "wiki.yaml")


def _swap(path, target):
    path.unlink()
    path.symlink_to(target)


def test_a_file_swapped_after_listing_is_not_read(tree, monkeypatch):
    root, secret, manifest = tree
    listed = sources._listed

    def listed_then_swapped(*args):  # the listing saw a plain file; then a writer swaps it
        paths = listed(*args)
        _swap(root / "a.md", secret)
        return paths

    monkeypatch.setattr(sources, "_listed", listed_then_swapped)
    monkeypatch.setattr(sources, "_leaves_root", lambda path, root: False)  # the check ran before the swap
    [item] = list(iter_source_items(manifest))
    assert isinstance(item, SourceFailure) and item.outside
    assert "outside the source folder" in item.reason


def test_a_file_swapped_between_fingerprint_and_load_is_not_read(tree):
    root, secret, manifest = tree
    [item] = list(iter_source_items(manifest))
    assert isinstance(item, SourceItem)
    _swap(root / "a.md", secret)
    with pytest.raises(OutsideSourceError):
        item.load()


def test_links_inside_the_folder_and_plain_files_still_read(tree):
    root, _, manifest = tree
    (root / "b.md").symlink_to(root / "a.md")
    docs = [i.load() for i in iter_source_items(manifest)]
    assert [d.doc_id for d in docs] == ["wiki:a.md", "wiki:b.md"] and "alpha page" in docs[1].text


def test_a_fifo_neither_blocks_nor_is_read(tmp_path):
    fifo = tmp_path / "pipe.md"
    os.mkfifo(fifo)
    with pytest.raises(InputError, match="not a regular file"):
        read_confined(fifo, tmp_path, max_bytes=1000)


def test_a_record_file_swapped_for_a_link_is_not_read(tmp_path):
    (tmp_path / "rows").mkdir()
    rows = tmp_path / "rows" / "a.jsonl"
    rows.write_text('{"id": "1", "title": "t", "text": "fine"}\n')
    outside = tmp_path / "outside.jsonl"
    outside.write_text('{"id": "x", "title": "t", "text": "zebracanary"}\n')
    _swap(rows, outside)
    found = list(sources.read_rows(rows, tmp_path / "rows"))
    assert found == [("", None, "symbolic link to a file outside the source folder: not read")]
