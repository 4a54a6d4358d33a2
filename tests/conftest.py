"""Shared fixtures: the packaged model (loaded once), both real Qdrant engines, scratch settings."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

os.environ.setdefault("UNSTRUCTURED_DISABLE_NOTICE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"


@pytest.fixture(scope="session")
def encoder():
    """The packaged all-MiniLM-L6-v2 on the default backend (ONNX int8, what users run), loaded once
    per test session; tests/test_onnx_encoder.py checks it against torch."""
    from core.config import Settings
    from core.encoder import load_encoder

    return load_encoder(Settings(data_dir=Path("/nonexistent-unused")))


@pytest.fixture()
def settings(tmp_path):
    """Settings with a scratch data directory and no environment influence."""
    from core.config import Settings

    return Settings(data_dir=tmp_path / "data")


@pytest.fixture()
def edge_store(tmp_path):
    from core.store.edge import EdgeStore

    store = EdgeStore(tmp_path / "edge")
    yield store
    store.close()


@pytest.fixture()
def memory_store():
    from qdrant_client import QdrantClient

    from core.store.server import ServerStore

    store = ServerStore(QdrantClient(":memory:"), "test")
    yield store
    store.close()


@pytest.fixture(params=["edge", "server"])
def any_store(request, tmp_path):
    """Each congruence test runs on the embedded engine and on qdrant-client."""
    if request.param == "edge":
        from core.store.edge import EdgeStore

        store = EdgeStore(tmp_path / "edge")
    else:
        from qdrant_client import QdrantClient

        from core.store.server import ServerStore

        store = ServerStore(QdrantClient(":memory:"), "test")
    yield store
    store.close()


@pytest.fixture(scope="session")
def wiki_index(tmp_path_factory, encoder):
    """The fixture wiki ingested once into an embedded store (shared, read-only for tests)."""
    from api.services import Services
    from core.config import Settings
    from ingest.manifest import load_manifest
    from ingest.pipeline import ingest_manifests

    data_dir = tmp_path_factory.mktemp("wiki-index")
    settings = Settings(data_dir=data_dir)
    services = Services(settings)
    report = ingest_manifests([load_manifest(FIXTURES / "manifests" / "wiki.yaml")], services.ingest_context())
    yield services, report
    services.store.close()
    shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def stitch_server(tmp_path_factory):
    """A real ``stitch serve`` subprocess with the fixture wiki ingested over HTTP (MCP, client, console tests),
    run with two worker processes (api.workers), so every test using it also checks that the API is the same
    whichever process answers (test_api_server's server runs as one process).

    Yields url, an admin-free key (scopes context + ingest + entities:write, any role), env and data dir.
    """
    import json
    import signal
    import subprocess
    import sys

    from api.keys import KeyStore
    from tests.test_api_server import _free_port, _ingest_over_http, _wait_ready

    data = tmp_path_factory.mktemp("stitch-server")
    env = {**os.environ, "STITCH_DATA_DIR": str(data), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "STITCH_INGEST_ROOTS": json.dumps([str(FIXTURES)]), "STITCH_SERVE_WORKERS": "2"}
    key = KeyStore(data / "api_keys.json").create(scopes=("context", "ingest", "entities:write"), roles=("*",),
                                                     principals=("*",))
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    stitch = str(Path(sys.executable).parent / "stitch")
    process = subprocess.Popen([stitch, "serve", "--port", str(port)], env=env, cwd=ROOT,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        _wait_ready(url, process)
        _ingest_over_http(url, key)
        yield {"url": url, "key": key, "env": env, "data": data}
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
