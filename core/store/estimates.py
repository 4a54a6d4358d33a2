"""The engine's estimates of how many points a filter leaves, kept for a few seconds per filter.

``SearchPlan`` picks each dense prefetch's search (exact scoring, the engine's beam, the wide beam) from
two estimates: the points the prefetch's filter leaves and the collection's size (``HybridQuery.dense_search``).
Asking for them on every prefetch cost two engine calls per dense prefetch — up to six per ``/v1/context``
(fused query with an entity prefetch, relevance query), and against a Qdrant server each is a network round
trip. A principal's filter leaves the same share from one request to the next, so the answer is kept.

What a stale estimate can cost is bounded: it only chooses how a prefetch searches, never what it may
return — the ACL filter is still inside every engine query. Writes made by this process forget every
estimate at once (``forget``); writes by another process (a Qdrant server shared by replicas) are seen
within ``ttl`` seconds.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager

TTL_SECONDS = 5.0
MAX_FILTERS = 4096  # distinct filters kept (principals × narrowing); the least recently used go first


class VisibleEstimates:
    """``get(key, count)``: ``count()``'s last answer for ``key`` while it is younger than ``ttl`` seconds
    and no write was made since (``forget``); thread-safe, bounded to ``size`` keys."""

    def __init__(self, *, ttl: float = TTL_SECONDS, size: int = MAX_FILTERS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl, self.size, self._clock = ttl, size, clock
        self._known: OrderedDict[Hashable, tuple[float, int]] = OrderedDict()
        self._lock = threading.Lock()
        self._generation = 0

    def get(self, key: Hashable, count: Callable[[], int]) -> int:
        now = self._clock()
        with self._lock:
            known = self._known.get(key)
            if known is not None and now - known[0] < self.ttl:
                self._known.move_to_end(key)
                return known[1]
            generation = self._generation
        value = count()  # outside the lock: two threads may both ask the engine, never wait on each other
        with self._lock:
            if generation == self._generation:  # a write since we asked: do not keep a pre-write answer
                self._known[key] = (now, value)
                self._known.move_to_end(key)
                while len(self._known) > self.size:
                    self._known.popitem(last=False)
        return value

    @contextmanager
    def writing(self) -> Iterator[None]:
        """Around a write to the collection: every estimate is forgotten once it returns or fails (a failed
        write may still have changed some points)."""
        try:
            yield
        finally:
            self.forget()

    def forget(self) -> None:
        """Drop every estimate (this process wrote to the collection)."""
        with self._lock:
            self._known.clear()
            self._generation += 1
