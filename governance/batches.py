"""One background writer for what requests hand off (audit records, pack records): the request pays an
append under an uncontended lock, and the writer wakes once per batch, not once per record.

Each batch is one write call: one lock, fsync and head write for the audit trail, one transaction for
the pack store. Per record that cost is what made a request's recording ~0.5 ms of CPU each for the
two stores at one client (`bench/audit.py`-style loop, 100 records/s, linger 0.05 s: 0.42-0.47 ms; the
fsync and the head file's rename dominate a batch), so the writer lingers ``LINGER`` after the first
record of a batch for others to join. ``flush`` cuts the wait short and returns once everything handed
over before it is written; ``close`` writes what is left and stops (a later ``submit`` starts again).
"""

from __future__ import annotations

import atexit
import logging
import threading
from collections import deque
from collections.abc import Callable

LINGER = 0.2  # seconds; a crash loses at most this much more than it did before, nothing a flush covers
MAX_BATCH = 500


class BatchWriter:
    """Calls ``write(batch)`` on its own thread with the items ``submit`` was given, in order."""

    def __init__(self, write: Callable[[list], None], *, name: str, linger: float = LINGER,
                 max_batch: int = MAX_BATCH, max_pending: int | None = None) -> None:
        self._write, self._name, self._linger, self._max_batch = write, name, linger, max_batch
        self._max_pending = max_pending
        self._lock = threading.Lock()
        self._work = threading.Condition(self._lock)  # the writer waits here for a first item
        self._written = threading.Condition(self._lock)  # flushers wait here
        self._hurry = threading.Event()  # set: write now, do not linger
        self._pending: deque = deque()
        self._submitted = self._done = 0
        self._stopping = False
        self._waiting = False  # the writer is waiting for work (only then does a submit wake it)
        self._thread: threading.Thread | None = None
        self._exit_hook = False

    def submit(self, item: object) -> None:
        """Hand ``item`` to the writer (returns at once). Past ``max_pending`` waiting items the caller
        writes its own item, so a stalled writer slows requests down rather than growing memory."""
        with self._lock:
            if self._max_pending is None or len(self._pending) < self._max_pending:
                self._pending.append(item)
                self._submitted += 1
                self._start()
                if self._waiting:
                    self._work.notify()
                return
        self._write_logged([item])

    def flush(self) -> None:
        """Wait until every item submitted before this call is written."""
        with self._lock:
            target = self._submitted
            if self._done >= target:
                return
            self._hurry.set()
            while self._done < target and self._thread is not None:
                self._written.wait()

    def close(self) -> None:
        """Write what is pending and stop the thread."""
        with self._lock:
            thread, self._stopping = self._thread, True
            self._work.notify()
        self._hurry.set()
        if thread is not None:
            thread.join()

    def _start(self) -> None:
        """Start the writer thread if it is not running (the caller holds the lock)."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._stopping = False
        if not self._exit_hook:  # a process that ends without flushing still writes what it handed over
            atexit.register(self.flush)
            self._exit_hook = True
        self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
        self._thread.start()

    def _next_batch(self) -> list | None:
        """The next batch, after lingering for company; None once stopping with nothing left."""
        with self._lock:
            while not self._pending and not self._stopping:
                self._waiting = True
                self._work.wait()
                self._waiting = False
            if not self._pending:
                self._thread = None
                self._written.notify_all()
                return None
            crowded = self._stopping or len(self._pending) >= self._max_batch
        if not crowded:
            self._hurry.wait(self._linger)
        self._hurry.clear()  # a flush after this point sets it again; one before it is served by this batch
        with self._lock:
            return [self._pending.popleft() for _ in range(min(self._max_batch, len(self._pending)))]

    def _run(self) -> None:
        while (batch := self._next_batch()) is not None:
            self._write_logged(batch)
            with self._lock:
                self._done += len(batch)
                self._written.notify_all()

    def _write_logged(self, batch: list) -> None:
        try:
            self._write(batch)
        except Exception:  # noqa: BLE001 - the writer must outlive one bad batch (disk full…)
            logging.getLogger("stitch.governance").exception("%s: could not write %d record(s)", self._name, len(batch))
