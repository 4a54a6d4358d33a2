"""Blocking library calls of request handlers (retrieval), off the event loop through a limiter of
their own (``Settings.request_threads``), not AnyIO's pool that every sync dependency and route shares.

The size was measured, not guessed (bench/api.py, 50 clients, 2 cores near idle): one thread per core
did 91-94 requests/s and 11.7 ms of server CPU per request, 40 threads 70-76 and 14.6-15.5 ms. More
threads only take turns at the GIL (qdrant-edge holds it while it searches; docs/serving.md "Request
concurrency"), and batching their encodings does not win that back. What the limiter adds is the bound on waiting
(``Settings.request_queue_max``): past it a request is refused at once with 503 and a Retry-After of
the expected wait, rather than queueing without limit."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from functools import partial
from typing import TypeVar

import anyio.to_thread
from anyio import CapacityLimiter
from fastapi import Request

from core.config import Settings, available_cores
from core.errors import OverloadedError

T = TypeVar("T")


class Offload:
    """One app's limiter (created lazily inside the running loop, which AnyIO binds it to)."""

    def __init__(self, threads: int, *, max_waiting: int) -> None:
        self.threads, self.max_waiting = threads, max_waiting
        self._limiter: CapacityLimiter | None = None
        self._mean_seconds = 0.01  # a running mean of one call, for Retry-After

    @classmethod
    def from_settings(cls, settings: Settings, *, per_core: int = 1) -> Offload:
        """``request_threads``, or ``per_core`` threads per core when it is 0 (the default)."""
        return cls(settings.request_threads or per_core * available_cores(), max_waiting=settings.request_queue_max)

    async def run(self, func: Callable[..., T], *args: object, **kwargs: object) -> T:
        if self._limiter is None:
            self._limiter = CapacityLimiter(self.threads)
        if self._limiter.available_tokens == 0 and self._limiter.statistics().tasks_waiting >= self.max_waiting:
            raise OverloadedError("too many requests waiting for a request thread", retry_after=self.retry_after())
        return await anyio.to_thread.run_sync(partial(self._timed, func, *args, **kwargs), limiter=self._limiter)

    def _timed(self, func: Callable[..., T], *args: object, **kwargs: object) -> T:
        started = time.perf_counter()
        try:
            return func(*args, **kwargs)
        finally:  # a race between two threads here only blurs an estimate
            self._mean_seconds += 0.05 * (time.perf_counter() - started - self._mean_seconds)

    def retry_after(self) -> int:
        """Seconds until the requests waiting now have been served, at least 1."""
        waiting = self._limiter.statistics().tasks_waiting if self._limiter else 0
        return max(1, math.ceil(waiting * self._mean_seconds / self.threads))


async def offload(request: Request, func: Callable[..., T], *args: object, **kwargs: object) -> T:
    """Run ``func(*args, **kwargs)`` in a request thread of the app serving ``request``."""
    return await request.app.state.offload.run(func, *args, **kwargs)
