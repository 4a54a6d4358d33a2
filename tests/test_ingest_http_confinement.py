"""What an ``ingest`` key may do over HTTP: only what lies under the configured ingest roots, no file
contents or server paths in any answer, sources owned by their manifest, jobs visible to their submitter."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.keys import KeyStore
from api.services import Services
from core.config import Settings
from tests.test_api_http import _auth, _is_error, _wait

SHADOW = "root:$6$saltsalt$ZmFrZWhhc2g:19700:0:99999:7:::\ndaemon:*:19700:0:99999:7:::\n"


def _client(tmp_path, encoder, roots):
    settings = Settings(data_dir=tmp_path / "data", ingest_roots=roots)
    services = Services(settings)
    services.__dict__["encoder"] = encoder
    keys = KeyStore(settings.keys_path)
    made = {name: keys.create(scopes=scopes, roles=("*",)) for name, scopes in
            (("a", ("ingest",)), ("b", ("ingest",)), ("admin", ("admin",)))}
    return TestClient(create_app(settings, services=services)), made, services


@pytest.fixture()
def confined(tmp_path, encoder):
    exports = tmp_path / "exports"
    (exports / "wiki").mkdir(parents=True)
    (exports / "wiki" / "a.md").write_text("# A\n\nalpha page.\n")
    (exports / "wiki" / "b.md").write_text("# B\n\nbeta page.\n")
    (exports / "wiki.yaml").write_text("source: wiki\nkind: files\npath: wiki\nacl: {default: [staff]}\n")
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "shadow").write_text(SHADOW)
    (tmp_path / "outside" / "m.yaml").write_text("source: x\nkind: files\npath: .\nacl: {public: true}\n")
    client, keys, services = _client(tmp_path, encoder, (exports,))
    with client:
        yield client, keys, tmp_path, exports
    services.store.close()


def _post(client, key, body):
    return client.post("/v1/ingest/jobs", headers=_auth(key), json=body)


def _clean(message, tmp_path):
    assert str(tmp_path) not in message and "root:" not in message and "saltsalt" not in message
    return message


def test_no_ingest_roots_means_no_http_ingest(tmp_path, encoder):
    (tmp_path / "w").mkdir()
    client, keys, services = _client(tmp_path, encoder, ())
    with client:
        for body in ({"manifests": [str(tmp_path / "m.yaml")]},
                     {"manifest": {"source": "w", "kind": "files", "path": str(tmp_path / "w")}}):
            error = _is_error(_post(client, keys["a"], body), 403, "forbidden")
            assert "no ingest roots are configured" in _clean(error["message"], tmp_path)
    services.store.close()


def test_paths_outside_the_roots_are_refused_without_contents_or_paths(confined):
    client, keys, tmp_path, exports = confined
    for raw in ("/etc/shadow", str(tmp_path / "outside" / "shadow"), str(tmp_path / "outside" / "m.yaml"),
                "../outside/m.yaml", str(tmp_path / "data" / "api_keys.json")):
        error = _is_error(_post(client, keys["a"], {"manifests": [raw]}), 403, "forbidden")
        assert _clean(error["message"], tmp_path) == "manifests[0]: outside the configured ingest roots"
    (exports / "shadow.yaml").write_text(SHADOW)  # inside a root: read, but never quoted back
    (exports / "notes.txt").write_text(SHADOW)
    for raw in ("shadow.yaml", "notes.txt"):
        _clean(_is_error(_post(client, keys["a"], {"manifests": [raw]}), 400, "invalid_manifest")["message"], tmp_path)
    (exports / "keys.yaml").write_text("'root:$6$saltsalt': 1\nsource: x\nkind: files\npath: wiki\n")
    error = _is_error(_post(client, keys["a"], {"manifests": ["keys.yaml"]}), 400, "invalid_manifest")
    assert _clean(error["message"], tmp_path) == "keys.yaml: an unknown key (not shown)"


def test_inline_and_file_manifests_are_confined_and_validated_alike(confined):
    client, keys, tmp_path, exports = confined
    for path in ("/etc", str(tmp_path / "outside"), "../outside", str(tmp_path / "data"), str(tmp_path)):
        body = {"manifest": {"source": "x", "kind": "files", "path": path, "acl": {"public": True}}}
        error = _is_error(_post(client, keys["a"], body), 400, "invalid_manifest")
        assert _clean(error["message"], tmp_path).endswith("is outside the configured ingest roots")
    (exports / "escape.yaml").write_text("source: x\nkind: files\npath: ../outside\n")
    error = _is_error(_post(client, keys["a"], {"manifests": ["escape.yaml"]}), 400, "invalid_manifest")
    assert error["message"] == "escape.yaml: key 'path': '../outside' is outside the configured ingest roots"
    inline = _post(client, keys["a"], {"manifest": {"source": "x", "kind": "files", "path": "wiki",
                                                    "acl": {"default": "sales"}}})
    (exports / "same.yaml").write_text("source: x\nkind: files\npath: wiki\nacl: {default: sales}\n")
    from_file = _post(client, keys["a"], {"manifests": ["same.yaml"]})
    wording = "key 'acl.default': must be a list of roles, e.g. [sales], got 'sales'"
    assert _is_error(inline, 400)["message"] == f"inline manifest: {wording}"
    assert _is_error(from_file, 400)["message"] == f"same.yaml: {wording}"


def test_jobs_are_visible_to_their_submitter_and_admins_only(confined):
    client, keys, tmp_path, _ = confined
    job_id = _post(client, keys["a"], {"manifests": ["wiki.yaml"]}).json()["job_id"]
    done = _wait(client, keys["a"], job_id)
    assert done["status"] == "succeeded" and done["report"]["added"] == 2
    _is_error(client.get(f"/v1/ingest/jobs/{job_id}", headers=_auth(keys["b"])), 404, "not_found")
    assert client.get(f"/v1/ingest/jobs/{job_id}", headers=_auth(keys["admin"])).status_code == 200
    assert str(tmp_path) not in json.dumps(done)


def test_reusing_a_source_name_needs_an_audited_takeover(confined):
    client, keys, tmp_path, exports = confined
    assert _wait(client, keys["a"], _post(client, keys["a"], {"manifests": ["wiki.yaml"]}).json()["job_id"])[
        "status"] == "succeeded"
    hijack = {"manifest": {"source": "wiki", "kind": "files", "path": "wiki", "acl": {"public": True}}}
    refused = _wait(client, keys["b"], _post(client, keys["b"], hijack).json()["job_id"])
    assert refused["status"] == "failed" and "take_over" in refused["error"]
    _clean(refused["error"], tmp_path)
    (exports / "wiki" / "a.md").unlink()
    (exports / "wiki" / "b.md").unlink()
    emptied = _wait(client, keys["a"], _post(client, keys["a"], {"manifests": ["wiki.yaml"]}).json()["job_id"])
    assert emptied["status"] == "failed" and "allow_mass_delete" in emptied["error"]
    taken = _post(client, keys["b"], {**hijack, "take_over": True, "allow_mass_delete": True})
    report = _wait(client, keys["b"], taken.json()["job_id"])["report"]
    assert report["takeovers"] == [{"source": "wiki", "from": "wiki.yaml", "to": "inline:wiki"}]
    assert report["deleted"] == 2
    client.app.state.audit.flush()  # the request records are queued to a writer that lingers for company
    audit = [json.loads(line) for line in (tmp_path / "data" / "audit.jsonl").read_text().splitlines()]
    assert any(r.get("take_over") and r.get("job_id") == taken.json()["job_id"] for r in audit)


def test_a_link_swapped_after_submission_is_caught_when_the_job_runs(tmp_path):
    from api.jobs import Confinement
    from core.errors import PermissionDeniedError
    from ingest.manifest import load_manifest

    (tmp_path / "root" / "data").mkdir(parents=True)
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "root" / "m.yaml").write_text("source: x\nkind: files\npath: link\n")
    (tmp_path / "root" / "link").symlink_to(tmp_path / "root" / "data")
    confinement = Confinement((tmp_path / "root",))
    manifests = [load_manifest(tmp_path / "root" / "m.yaml", ingest_roots=confinement.roots)]
    confinement.recheck(manifests)
    (tmp_path / "root" / "link").unlink()
    (tmp_path / "root" / "link").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(PermissionDeniedError):
        confinement.recheck(manifests)
