"""Manifest validation: clear errors that name the file and the key; nothing is ingested."""

from __future__ import annotations

import pytest

from core.errors import ManifestError
from ingest.manifest import load_manifest


def _write(tmp_path, body, name="m.yaml"):
    (tmp_path / "data").mkdir(exist_ok=True)
    path = tmp_path / name
    path.write_text(body)
    return path


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("source: wiki\nkind: files\npath: data\ncolour: blue\n", "unknown key 'colour'"),
        ("source: wiki\npath: data\n", "missing key 'kind'"),
        ("source: wiki\nkind: files\npath: ../no-such-folder\n", "key 'path': '../no-such-folder' does not exist"),
        ("source: wiki\nkind: files\npath: data\ninclude: ['[abc']\n", "key 'include[0]': glob '[abc' has an unclosed"),
        ("source: wiki\nkind: files\npath: data\nacl: {default: sales}\n",
         "key 'acl.default': must be a list of roles, e.g. [sales], got 'sales'"),
        ("source: wiki\nkind: files\npath: data\nacl: {default: ['sales exec']}\n",
         "key 'acl.default': invalid role 'sales exec'"),
        ("source: wiki\nkind: files\npath: data\nacl: {rules: [{match: 'x/**', roles: ['a,b']}]}\n",
         "key 'acl.rules[0].roles': invalid role 'a,b'"),
        ("source: wiki\nkind: files\npath: data\nacl: {default: ['user:no body']}\n", "invalid principal id"),
        ("source: wiki\nkind: fils\npath: data\n", "key 'kind': must be one of 'records' or 'files', got 'fils'"),
        ("source: wiki\nkind: files\npath: data\nacl: {public: maybe}\n", "key 'acl.public': must be true or false"),
        ("source: wiki\nkind: records\npath: data\n", "needs id_field, text_fields"),
        ("source: Wiki Pages\nkind: files\npath: data\n", "key 'source'"),
        ("source: wiki\nkind: files\npath: data\nacl: {default: [a], rules: [{match: 'x/**'}]}\n", "acl.rules[0].roles"),
        ("- just\n- a list\n", "YAML mapping"),
    ],
)
def test_bad_manifests_name_file_and_key(tmp_path, body, expected):
    path = _write(tmp_path, body)
    with pytest.raises(ManifestError) as err:
        load_manifest(path)
    assert expected in str(err.value)
    assert str(path) in str(err.value)


def test_cli_manifest_may_point_beside_its_folder(tmp_path):
    """The natural layout: manifests/ beside the exports. Confinement is for HTTP callers only."""
    (tmp_path / "contracts").mkdir()
    (tmp_path / "manifests").mkdir()
    path = tmp_path / "manifests" / "contracts.yaml"
    path.write_text("source: contracts\nkind: files\npath: ../contracts\n")
    assert load_manifest(path).root == (tmp_path / "contracts").resolve()
    with pytest.raises(ManifestError) as err:
        load_manifest(path, ingest_roots=(tmp_path / "manifests",), origin="contracts.yaml")
    assert str(err.value) == "contracts.yaml: key 'path': '../contracts' is outside the configured ingest roots"


def test_valid_manifest_resolves_path_relative_to_itself(tmp_path):
    path = _write(tmp_path, "source: wiki\nkind: files\npath: data\nacl: {default: [sales]}\n")
    manifest = load_manifest(path)
    assert manifest.root == (tmp_path / "data").resolve()
    assert manifest.acl.default == ("sales",)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("source: wiki\nkind: files\npath: data\nuri_template: 'https://x/{id}'\n", "key 'uri_template'"),
        ("source: wiki\nkind: files\npath: data\nid_field: id\n", "key 'id_field' applies to kind 'records'"),
        ("source: crm\nkind: records\npath: data/rows.xml\nid_field: id\ntext_fields: [t]\n", ".csv, .json or .jsonl"),
        ("source: crm\nkind: records\npath: data\nid_field: id\ntext_fields: [t]\n"
         "acl: {rules: [{match: 'x', roles: [a]}]}\n", "key 'acl.rules'"),
    ],
)
def test_keys_that_do_not_fit_the_kind_are_rejected(tmp_path, body, expected):
    path = _write(tmp_path, body)
    (tmp_path / "data" / "rows.xml").write_text("<rows/>")
    with pytest.raises(ManifestError) as err:
        load_manifest(path)
    assert expected in str(err.value) and str(path) in str(err.value)


def test_two_manifests_of_one_job_cannot_share_a_source(tmp_path):
    from ingest.manifest import check_distinct_sources

    a = load_manifest(_write(tmp_path, "source: wiki\nkind: files\npath: data\n", "a.yaml"))
    b = load_manifest(_write(tmp_path, "source: wiki\nkind: files\npath: data\n", "b.yaml"))
    with pytest.raises(ManifestError, match="also the source of"):
        check_distinct_sources([a, b])
