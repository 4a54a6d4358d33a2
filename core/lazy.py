"""A per-instance cached attribute without ``functools.cached_property``'s lock.

On Python 3.11, ``functools.cached_property`` takes one RLock per *attribute*, shared by every instance
of the class (removed in 3.12, python/cpython#87634). Request threads computing ``StitchedSpan.tokens``
for unrelated requests therefore queued behind one another while tiktoken ran: at 50 concurrent clients
a third of the server's samples waited on that lock (py-spy, docs/serving.md "Request concurrency").
A subclass of the standard descriptor rather than a dependency: the fix is the eight lines below.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any


class cached_attribute(cached_property):  # noqa: N801 - used like the decorator it replaces
    """Like ``functools.cached_property`` (writes the instance ``__dict__``, so it works on frozen
    dataclasses), but lock-free: for pure functions of an immutable instance, two threads racing on
    the first access both compute the same value and one write wins."""

    def __get__(self, instance: Any, owner: type | None = None) -> Any:
        if instance is None:
            return self
        cache = instance.__dict__
        try:
            return cache[self.attrname]
        except KeyError:
            value = cache[self.attrname] = self.func(instance)
            return value
