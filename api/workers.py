"""``stitch serve`` with several processes (``Settings.serve_workers``): one primary, N API workers.

One process gets about one core of request work (qdrant-edge holds the GIL while it searches, the rest of a
request is Python; docs/serving.md "Request concurrency"). So the primary keeps everything that must have
one owner — the embedded store, ingest jobs, MCP sessions, the console, key and steward routes — and serves
them on a private Unix socket, while N worker processes accept the public port (one listening socket,
inherited) and answer the hot reads themselves: ``POST /v1/context`` and ``POST /v1/search``, with their own
model, limiter, audit writer and pack writer, reading the primary's store through ``core.store.remote``.
Every other request a worker receives is forwarded to the primary unchanged (same request id; the primary
authenticates and audits it), so the API is the same whichever process answers.

What workers share with the primary through the data dir is already multi-process safe: the audit chain
(appended under an OS lock), the SQLite registry, ledger and pack store (WAL), the keys file (re-read on
change), the audit secret. Keys held in memory only (the CLI's local key, the demo key) are handed to the
workers at spawn. A worker exits when its primary does; the primary restarts a worker that dies.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import secrets
import signal
import socket
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from api.keys import ApiKey
from core.config import Settings, share_metrics_across_processes, shared_metrics_dir

log = logging.getLogger("stitch.api")


@dataclass(frozen=True)
class WorkerLinks:
    """What a worker needs to reach its primary (passed at spawn, never written to disk)."""

    primary_http: str  # the primary's private Unix socket (forwarded requests)
    store: str  # the StoreHost socket
    authkey: bytes
    held_keys: tuple[ApiKey, ...]
    primary_pid: int  # not os.getppid() in the worker: the primary may die before the worker asks


def _worker_main(settings: Settings, sock: socket.socket, links: WorkerLinks, ready) -> None:  # noqa: ANN001
    """A worker process: the hot read routes on the inherited public socket, the rest forwarded."""
    import uvicorn

    from api.services import Services
    from api.worker_app import create_worker_app
    from core.store.remote import RemoteStore

    os.setsid()  # out of the terminal's process group: Ctrl-C reaches the primary, which stops its workers
    _exit_with_parent(links.primary_pid)
    services = Services(settings)
    services.store = RemoteStore(Path(links.store), links.authkey)
    app = create_worker_app(settings, services, links, on_ready=ready.set)
    config = uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=10, access_log=settings.access_log,
                            http="auto", loop="auto")
    uvicorn.Server(config).run(sockets=[sock])


def _exit_with_parent(parent: int) -> None:
    """Stop gracefully (SIGTERM to self) once the primary is gone, even if it was SIGKILLed."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


class WorkerPool:
    """The primary's N worker processes on one public socket: started, watched, restarted, stopped."""

    def __init__(self, settings: Settings, count: int, sock: socket.socket, links: WorkerLinks, *,
                 start_timeout: float = 180.0) -> None:
        self.settings, self.count, self.sock, self.links = settings, count, sock, links
        self.start_timeout = start_timeout
        self._context = multiprocessing.get_context("spawn")  # a fresh interpreter: no forked threads or locks
        self._workers: list = []
        self._stopping = threading.Event()
        self._restarts: list[float] = []

    def _spawn(self):  # noqa: ANN202 - (process, ready event)
        ready = self._context.Event()
        process = self._context.Process(target=_worker_main, args=(self.settings, self.sock, self.links, ready),
                                        name="stitch-worker", daemon=True)
        process.start()
        return process, ready

    def start(self) -> None:
        """Spawn the workers and wait until each answers (its model loaded); raise if one cannot start."""
        from core.errors import StitchError

        self._workers = [self._spawn() for _ in range(self.count)]
        deadline = time.monotonic() + self.start_timeout
        for process, ready in self._workers:
            while not ready.wait(0.2):
                if not process.is_alive() or time.monotonic() > deadline:
                    self.stop()
                    raise StitchError(f"a serve worker did not start (exit code {process.exitcode})")
        threading.Thread(target=self._watch, name="worker-watch", daemon=True).start()

    def _watch(self) -> None:
        while not self._stopping.wait(1.0):
            for i, (process, _) in enumerate(self._workers):
                if process.is_alive() or self._stopping.is_set():
                    continue
                now = time.monotonic()
                self._restarts = [t for t in self._restarts if now - t < 60] + [now]
                if len(self._restarts) > 3 * self.count:
                    log.error("serve workers keep dying (exit code %s); not restarting", process.exitcode)
                    return
                log.warning("serve worker %s exited (code %s); starting another", process.pid, process.exitcode)
                _forget_metrics_of(process.pid)
                self._workers[i] = self._spawn()

    def pids(self) -> list[int]:
        return [p.pid for p, _ in self._workers]

    def stop(self) -> None:
        self._stopping.set()
        for process, _ in self._workers:
            if process.is_alive():
                process.terminate()  # SIGTERM: uvicorn finishes the requests it has
        for process, _ in self._workers:
            process.join(15)
            if process.is_alive():
                process.kill()
                process.join(5)


def _forget_metrics_of(pid: int) -> None:
    """A dead worker's live gauges stop counting (its counters stay: they are history)."""
    if shared_metrics_dir():
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)


def bind_public(host: str, port: int) -> socket.socket:
    """The listening socket every worker accepts on (bound once, by the primary)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def serve_with_workers(settings: Settings, host: str, port: int, count: int, *, held: Sequence[ApiKey] = ()) -> None:
    """Run the primary (private socket) and ``count`` workers on ``host:port`` until stopped (SIGINT/SIGTERM)."""
    import shutil
    import tempfile

    import uvicorn

    from api.app import create_app
    from api.serving import hold_local_key, withdraw, write_server_file
    from core.store.remote import StoreHost

    rundir = Path(tempfile.mkdtemp(prefix="stitch-serve-"))  # 0700; short, as AF_UNIX paths must be
    (rundir / "metrics").mkdir()
    share_metrics_across_processes(rundir / "metrics")  # before prometheus_client is first imported
    public = bind_public(host, port)
    url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{public.getsockname()[1]}"
    private = _bind_private(rundir / "http.sock")
    authkey = secrets.token_bytes(32)
    running: dict = {}

    def ready() -> None:  # the primary's store is open and its model loaded: start the workers
        keys = app.state.key_store
        running["host"] = StoreHost(app.state.services.store, rundir / "store.sock", authkey)
        hold_local_key(settings, keys)
        links = WorkerLinks(str(rundir / "http.sock"), str(rundir / "store.sock"), authkey, keys.held(), os.getpid())
        running["pool"] = WorkerPool(settings, count, public, links)
        running["pool"].start()
        write_server_file(settings, url)

    def stop() -> None:
        withdraw(settings)
        if "pool" in running:
            running["pool"].stop()
        if "host" in running:
            running["host"].close()

    try:
        app = create_app(settings, on_ready=ready, on_stop=stop)  # a bad JWKS/PEM file fails here
        for key in held:
            app.state.key_store.hold(key)
        config = uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=10, access_log=settings.access_log,
                                http="auto", loop="auto")
        uvicorn.Server(config).run(sockets=[private])
    finally:
        public.close()
        private.close()
        shutil.rmtree(rundir, ignore_errors=True)


def _bind_private(path: Path) -> socket.socket:
    """The primary's own listening socket, bound before its startup so no forwarded request finds it missing."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(str(path))
    os.chmod(path, 0o600)
    sock.listen(2048)
    return sock


def resolved_workers(settings: Settings) -> int:
    """How many worker processes ``settings`` asks for (0: one per core; 1: no workers, one process)."""
    from core.config import available_cores

    return settings.serve_workers or available_cores()

