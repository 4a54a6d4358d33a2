"""One process's store, read by other processes of the same server (``stitch serve --workers N``).

The embedded shard may be opened by one process only, and qdrant-edge holds the GIL while it searches
(docs/serving.md "Request concurrency"), so one process gets about one core of request work. Worker
processes therefore reach the primary's store through ``StoreHost``: a Unix socket (0600, in the data dir)
speaking ``multiprocessing.connection``, where every connection first passes the HMAC challenge of a
random key the primary handed its workers (nothing is unpickled before that). Only the read methods of
``VectorStore`` are served, and each takes the caller's ACL tokens as before: the filter is still applied
inside the engine query, by the one process that owns it. Writes stay with the primary (ingest jobs
run there), so ``RemoteStore`` refuses them.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Collection, Mapping
from multiprocessing import AuthenticationError as ChallengeFailed
from multiprocessing.connection import Client, Connection, Listener, answer_challenge, deliver_challenge
from pathlib import Path

from core import errors
from core.errors import StitchError, StoreError
from core.models import Hit, SearchFilters
from core.store.protocol import HybridQuery, VectorStore

log = logging.getLogger("stitch.store")

# What a worker may ask: the reads, each ACL-filtered inside the engine (VectorStore's docstrings).
READS = frozenset({"search", "fetch_chunks", "fetch_neighbours", "dense_vectors", "dense_scores", "document_chunks",
                   "count", "ready"})


class StoreHost:
    """Serves ``store``'s reads on ``path`` to clients that know ``authkey``; one thread per connection."""

    def __init__(self, store: VectorStore, path: Path, authkey: bytes) -> None:
        self.store, self.path, self._authkey = store, path, authkey
        path.unlink(missing_ok=True)
        old = os.umask(0o177)  # the socket is created 0600: only this user may even try the challenge
        try:
            self._listener = Listener(str(path), family="AF_UNIX")
        finally:
            os.umask(old)
        self._closed = False
        threading.Thread(target=self._accept, name="store-host", daemon=True).start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                conn = self._listener.accept()
            except OSError:
                return  # closed
            threading.Thread(target=self._serve, args=(conn,), name="store-host-conn", daemon=True).start()

    def _serve(self, conn: Connection) -> None:
        try:  # the challenge runs here, not in the accept loop, so a silent client blocks only itself
            deliver_challenge(conn, self._authkey)
            answer_challenge(conn, self._authkey)
        except (OSError, EOFError, ChallengeFailed) as exc:
            log.warning("store host: a client failed the challenge (%s)", type(exc).__name__)
            conn.close()
            return
        with conn:
            while True:
                try:
                    method, args, kwargs = conn.recv()
                except (EOFError, OSError):
                    return
                conn.send(self._call(method, args, kwargs))

    def _call(self, method: str, args: tuple, kwargs: dict) -> tuple:
        if method not in READS:
            return ("error", "StoreError", f"the store host serves reads only, not {method!r}")
        try:
            return ("ok", getattr(self.store, method)(*args, **kwargs))
        except StitchError as exc:
            return ("error", type(exc).__name__, str(exc))
        except Exception:  # noqa: BLE001 - the engine raises plain exceptions; the worker gets a StoreError
            log.exception("store host: %s failed", method)
            return ("error", "StoreError", f"the store failed during {method}")

    def close(self) -> None:
        self._closed = True
        self._listener.close()
        self.path.unlink(missing_ok=True)


class RemoteStore:
    """``VectorStore`` reads answered by a ``StoreHost`` (one connection per calling thread)."""

    def __init__(self, path: Path, authkey: bytes) -> None:
        self.path, self._authkey = path, authkey
        self._local = threading.local()

    def _connection(self) -> Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            try:
                conn = Client(str(self.path), family="AF_UNIX", authkey=self._authkey)
            except (OSError, EOFError) as exc:
                raise StoreError(f"the serving process's store is unreachable ({type(exc).__name__})") from None
            self._local.conn = conn
        return conn

    def _call(self, method: str, *args: object, **kwargs: object):  # noqa: ANN202
        conn = self._connection()
        try:
            conn.send((method, args, kwargs))
            reply = conn.recv()
        except (OSError, EOFError) as exc:
            self._local.conn = None
            raise StoreError(f"the serving process's store stopped answering ({type(exc).__name__})") from None
        if reply[0] == "ok":
            return reply[1]
        _, name, message = reply
        kind = getattr(errors, name, StoreError)
        raise (kind if isinstance(kind, type) and issubclass(kind, StitchError) else StoreError)(message)

    # -- reads (VectorStore) --
    def search(self, query: HybridQuery, *, acl_tokens: Collection[str], filters: SearchFilters | None = None) -> list[Hit]:
        return self._call("search", query, acl_tokens=tuple(acl_tokens), filters=filters)

    def fetch_chunks(self, doc_id: str, indexes: Collection[int], *, acl_tokens: Collection[str]) -> list[Hit]:
        return self._call("fetch_chunks", doc_id, tuple(indexes), acl_tokens=tuple(acl_tokens))

    def fetch_neighbours(self, wanted: Mapping[str, Collection[int]], *, acl_tokens: Collection[str]) -> list[Hit]:
        return self._call("fetch_neighbours", {d: tuple(i) for d, i in wanted.items()}, acl_tokens=tuple(acl_tokens))

    def dense_vectors(self, point_ids: Collection[str], *, acl_tokens: Collection[str]) -> dict[str, tuple[float, ...]]:
        return self._call("dense_vectors", tuple(point_ids), acl_tokens=tuple(acl_tokens))

    def dense_scores(
        self, vector: tuple[float, ...], point_ids: Collection[str], *, acl_tokens: Collection[str]
    ) -> dict[str, float]:
        return self._call("dense_scores", tuple(vector), tuple(point_ids), acl_tokens=tuple(acl_tokens))

    def document_chunks(self, doc_id: str, *, acl_tokens: Collection[str] | None, limit: int = 10_000) -> list[Hit]:
        tokens = None if acl_tokens is None else tuple(acl_tokens)
        return self._call("document_chunks", doc_id, acl_tokens=tokens, limit=limit)

    def count(self, *, acl_tokens: Collection[str] | None = None, filters: SearchFilters | None = None) -> int:
        tokens = None if acl_tokens is None else tuple(acl_tokens)
        return self._call("count", acl_tokens=tokens, filters=filters)

    def ready(self) -> bool:
        try:
            return bool(self._call("ready"))
        except StoreError:
            return False

    # -- writes stay with the process that owns the store --
    def _refuse(self, *_: object, **__: object) -> None:
        raise StoreError("a worker process does not write to the store; ingest runs in the serving process")

    ensure_collection = upsert = delete_document = set_document_payload = flush = optimize = _refuse

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
