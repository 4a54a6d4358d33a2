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
