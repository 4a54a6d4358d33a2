"""Run a function over items in a background thread, a bounded number ahead of the consumer.

Partitioning and chunking are mostly Python (they hold the GIL) while the encoder spends its time
in torch / onnxruntime kernels (which release it), so preparing the next documents in a thread
while the main thread encodes overlaps the two.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")

_DONE = object()


class Outcome(Generic[T, R]):
    """The result of ``fn(item)`` or the exception it raised."""

    __slots__ = ("item", "result", "error")

    def __init__(self, item: T, result: R | None, error: BaseException | None) -> None:
        self.item, self.result, self.error = item, result, error


def prefetch_map(fn: Callable[[T], R], items: Iterable[T], *, ahead: int = 16) -> Iterator[Outcome[T, R]]:
    """``fn`` over ``items`` in order, computed in one worker thread up to ``ahead`` items early."""
    results: queue.Queue = queue.Queue(maxsize=max(1, ahead))
    stop = threading.Event()

    def work() -> None:
        try:
            for item in items:
                if stop.is_set():
                    return
                try:
                    outcome = Outcome(item, fn(item), None)
                except Exception as exc:  # noqa: BLE001 - handed to the consumer, which reports it
                    outcome = Outcome(item, None, exc)
                _put(outcome)
        finally:
            _put(_DONE)

    def _put(value: object) -> None:
        while not stop.is_set():
            try:
                results.put(value, timeout=0.1)
                return
            except queue.Full:
                continue

    worker = threading.Thread(target=work, name="ingest-prefetch", daemon=True)
    worker.start()
    try:
        while True:
            value = results.get()
            if value is _DONE:
                return
            yield value
    finally:
        stop.set()
        worker.join(timeout=5)
