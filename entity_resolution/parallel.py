"""Per-name Python work of a big batch split across the machine's cores.

Normalising a name, deriving its blocking keys and choosing a canonical spelling are pure Python, so threads
would take turns on the GIL. A batch of ``PARALLEL_MIN_ITEMS`` or more is cut into one slice per core: this
process computes the first, and each other slice goes to a fresh interpreter running ``serve``
(pickled in through stdin, the results pickled back through stdout). Not ``multiprocessing``: a fork would
copy other threads' held locks (resolution also runs inside the API process, for steward merge/split), and
spawn/forkserver re-import the caller's main module, which breaks any script that calls the resolver at
module level. Small batches (ingest's incremental linking, tests) never start a process. The result is
always the list ``fn(items)`` would return, in the same order; a worker that fails is redone here.
"""

from __future__ import annotations

import logging
import pickle
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

from core.config import available_cores as cores  # the name tests stub to force workers

T = TypeVar("T")
R = TypeVar("R")

log = logging.getLogger(__name__)

# Below this many items a worker's start (≈ 0.3 s: an interpreter importing numpy and rapidfuzz) costs more
# than it saves.
PARALLEL_MIN_ITEMS = 50_000
_PROJECT = str(Path(__file__).resolve().parent.parent)  # where the worker imports entity_resolution from
_WORKER = f"import sys; sys.path.insert(0, {_PROJECT!r}); from entity_resolution.parallel import serve; serve()"


def map_slices(fn: Callable[[Sequence[T]], list[R]], items: Sequence[T], *, min_items: int | None = None) -> list[R]:
    """``fn(items)``, computed slice by slice on every core when there are at least ``min_items`` items.

    ``fn`` must be a module-level function (or a ``functools.partial`` of one) mapping a slice to one
    result per item, with picklable arguments and results."""
    workers = cores()
    threshold = PARALLEL_MIN_ITEMS if min_items is None else min_items
    if workers < 2 or len(items) < max(threshold, 2):
        return list(fn(items))
    size = -(-len(items) // workers)
    slices = [items[start:start + size] for start in range(0, len(items), size)]
    remote = [_Worker(fn, part) for part in slices[1:]]
    out = list(fn(slices[0]))  # this process's share, while the workers start and compute theirs
    for worker, part in zip(remote, slices[1:]):
        out.extend(worker.result(fn, part))
    return out


class _Worker:
    """One slice computed by a child interpreter; a thread feeds its stdin and drains its stdout."""

    def __init__(self, fn: Callable, part: Sequence) -> None:
        payload = pickle.dumps((fn, part), protocol=pickle.HIGHEST_PROTOCOL)
        self._proc = subprocess.Popen([sys.executable, "-c", _WORKER], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self._output: bytes = b""
        self._thread = threading.Thread(target=self._talk, args=(payload,), daemon=True)
        self._thread.start()

    def _talk(self, payload: bytes) -> None:
        self._output, _ = self._proc.communicate(payload)  # I/O releases the GIL: the caller computes meanwhile

    def result(self, fn: Callable, part: Sequence) -> list:
        self._thread.join()
        if self._proc.returncode == 0:
            try:
                return pickle.loads(self._output)
            except (pickle.UnpicklingError, EOFError) as exc:
                log.warning("entity-resolution worker sent an unreadable result (%s); computing its slice here", exc)
        else:
            log.warning("entity-resolution worker exited with %s; computing its slice here", self._proc.returncode)
        return list(fn(part))


def serve() -> None:
    """A worker's life: one pickled (fn, slice) from stdin, its results pickled to stdout."""
    fn, part = pickle.load(sys.stdin.buffer)
    sys.stdout.buffer.write(pickle.dumps(list(fn(part)), protocol=pickle.HIGHEST_PROTOCOL))
    sys.stdout.buffer.flush()
