"""Pick the store the settings describe: embedded edge (default) or a Qdrant server via URL."""

from __future__ import annotations

import threading
from collections.abc import Callable

from core.config import Settings
from core.errors import StoreError
from core.store.protocol import HnswGraph, VectorStore

_OPEN: dict[str, VectorStore] = {}
_LOCK = threading.Lock()


def open_store(settings: Settings, *, on_wait: Callable[[str], None] | None = None) -> VectorStore:
    """The process-wide store for these settings (an edge shard is opened by one process at a time:
    another holder makes this wait ``settings.store_lock_timeout`` seconds, told via ``on_wait``)."""
    key = settings.qdrant_url or str(settings.qdrant_path.resolve())
    key = f"{key}#{settings.collection}"
    with _LOCK:
        if key not in _OPEN:
            _OPEN[key] = _build(settings, on_wait)
        return _OPEN[key]


def close_store(settings: Settings) -> None:
    """Close and forget the process-wide store for these settings."""
    key = f"{settings.qdrant_url or str(settings.qdrant_path.resolve())}#{settings.collection}"
    with _LOCK:
        store = _OPEN.pop(key, None)
    if store is not None:
        store.close()


def _build(settings: Settings, on_wait: Callable[[str], None] | None) -> VectorStore:
    graph = HnswGraph(m=settings.hnsw_m, ef_construct=settings.hnsw_ef_construct)
    if settings.qdrant_url:
        from qdrant_client import QdrantClient

        from core.store.server import ServerStore

        client = QdrantClient(url=settings.qdrant_url, api_key=settings.qdrant_api_key, timeout=30)
        return ServerStore(
            client,
            settings.collection,
            shard_number=settings.shard_number,
            replication_factor=settings.replication_factor,
            graph=graph,
        )
    from core.store.edge import EdgeStore

    try:
        return EdgeStore(settings.qdrant_path, lock_timeout=settings.store_lock_timeout, on_wait=on_wait,
                         graph=graph)
    except StoreError:
        raise
    except Exception as exc:  # noqa: BLE001 - qdrant_edge raises plain exceptions
        if "WouldBlock" in str(exc):
            raise StoreError(
                f"the embedded store at {settings.qdrant_path} is in use by another process "
                "(a running `stitch serve`?); stop it, or send the work to its HTTP API"
            ) from exc
        raise StoreError(f"cannot open the embedded store at {settings.qdrant_path}: {exc}") from exc
