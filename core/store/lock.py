"""One process at a time opens an embedded store: an OS file lock held for the store's lifetime.

qdrant-edge does not stop a second process from loading a live shard, and loading rewrites the
shard's journals under the holder's feet (its next flush fails "Tracker journal … is shorter than
expected"). The lock is taken BEFORE the shard is touched; the OS drops it when the holder exits,
even on SIGKILL, so a stale lock cannot outlive its process.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from filelock import FileLock, Timeout

from core.errors import StoreError


def lock_path_for(store_path: Path) -> Path:
    """The lock file beside (not inside) the shard directory, so the engine never sees it."""
    return store_path.parent / f"{store_path.name}.lock"


def acquire_store_lock(
    store_path: Path, *, timeout: float, on_wait: Callable[[str], None] | None = None
) -> FileLock:
    """Hold the store's lock, waiting at most ``timeout`` seconds (saying so through ``on_wait``)."""
    path = lock_path_for(store_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # thread_local=False: the store may be closed from another thread than the one that opened it.
    lock = FileLock(str(path), thread_local=False, preserve_lock_file=True)
    try:
        lock.acquire(timeout=0)
        return lock
    except Timeout:
        pass
    if timeout > 0 and on_wait is not None:
        on_wait(f"the embedded store at {store_path} is in use by another Stitch process; "
                f"waiting up to {timeout:g} s for it")
    try:
        lock.acquire(timeout=timeout)
    except Timeout:
        raise StoreError(
            f"the embedded store at {store_path} is in use by another Stitch process "
            f"(a running `stitch serve` or `stitch ingest`?); waited {timeout:g} s. Nothing was changed: "
            "let it finish, or send the work to the running server (POST /v1/ingest/jobs)"
        ) from None
    return lock
