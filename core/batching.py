"""Dynamic micro-batching of query encodings: concurrent ``encode_query`` calls become one model call.

One forward pass over 16 short queries costs far less than 16 passes (the model call has a large
fixed cost: reading the weights, allocation, the Python around it), so under concurrency the batcher
turns queueing into throughput. At most one query model call runs at a time. A query that finds it
idle (nothing in the model, nobody queued) is encoded at once on the caller's own thread: no window,
no hand-off to the worker (each thread wake-up costs 50-100 us idle and milliseconds on a busy box).
``submit_query`` (a context request's path) does hand even a lone query to the worker, without the window,
so that the request's entity lookup runs while the model does (ONNX Runtime releases the GIL).
Queries that arrive while a call runs queue up and form the next batch, which the worker runs as soon
as that call ends (after ``window_ms`` more for company, 0 by default). The queue is bounded: when it
is full ``encode_query`` raises ``OverloadedError`` at once (HTTP 503 with Retry-After) instead of
letting latency grow without bound.

Lone and batched queries go to the same model entry point (``encode_queries`` when the encoder has
one: the ONNX query session), so their vectors differ only by what int8's per-batch activation scale
does. Passages (ingest) bypass the queue and go to the wrapped encoder, which takes no lock across a
whole ingest batch, so queries are never stuck behind an ingest job.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from core.encoder import Encoder
from core.errors import OverloadedError


@dataclass
class _Pending:
    text: str
    company: bool = True  # may wait ``window_ms`` for others to join its batch (not when the model was idle)
    done: threading.Event = field(default_factory=threading.Event)
    vector: np.ndarray | None = None
    error: BaseException | None = None


class BatchingEncoder:
    """An ``Encoder`` whose queries are encoded in micro-batches by one worker thread."""

    def __init__(self, inner: Encoder, *, window_ms: float = 0.0, max_batch: int = 32, max_queue: int = 256) -> None:
        self.inner = inner
        self.name, self.dimension, self.max_tokens = inner.name, inner.dimension, inner.max_tokens
        self._window = window_ms / 1000
        self._max_batch = max_batch
        self._max_queue = max_queue
        self._queue: deque[_Pending] = deque()
        self._cond = threading.Condition()
        self._worker: threading.Thread | None = None
        self._seconds_per_batch = 0.01  # running estimate, for Retry-After
        self.batches = 0  # model calls made (read by tests and the benchmark)
        self.queries = 0
        self._busy = False  # a query model call is running (direct or batch)

    @property
    def tokenizer(self):  # noqa: ANN201 - whatever the wrapped encoder exposes
        return getattr(self.inner, "tokenizer", None)

    @property
    def concurrent_token_counting(self) -> bool:
        return getattr(self.inner, "concurrent_token_counting", False)

    @property
    def splits_at_words(self) -> bool:
        return getattr(self.inner, "splits_at_words", False)

    def encode_passages(self, texts: list[str], token_ids: Sequence[Sequence[int] | None] | None = None) -> np.ndarray:
        if token_ids is None:  # an inner encoder that takes no ids is called as it always was
            return self.inner.encode_passages(texts)
        return self.inner.encode_passages(texts, token_ids)

    def count_tokens(self, texts: list[str]) -> list[int]:
        return self.inner.count_tokens(texts)

    @property
    def tokens(self):  # noqa: ANN201 - the wrapped encoder's; AttributeError (getattr's default) without
        return self.inner.tokens

    def encode_query(self, text: str) -> np.ndarray:
        pending = _Pending(text)
        with self._cond:
            alone = not self._busy and not self._queue
            if alone:
                self._busy = True
            else:
                self._enqueue(pending)
        if alone:
            self._encode([pending])
        return self._result(pending)

    def submit_query(self, text: str) -> Callable[[], np.ndarray]:
        """Start encoding ``text`` and return at once; calling the result waits for the vector.

        The model call runs on the batching thread even when the encoder is idle, and ONNX Runtime
        releases the GIL while it runs, so the caller's own Python work in the meantime (a request's
        entity lookup) overlaps the model instead of preceding it. A lone query is still a batch of one:
        the vector ``encode_query`` gives."""
        with self._cond:
            pending = _Pending(text, company=self._busy or bool(self._queue))
            self._enqueue(pending)
        return lambda: self._result(pending)

    def _enqueue(self, pending: _Pending) -> None:
        """Queue ``pending`` for the worker (the caller holds ``_cond``), or refuse at once when full."""
        if len(self._queue) >= self._max_queue:
            raise OverloadedError("too many queries waiting for the encoder", retry_after=self.retry_after())
        self._queue.append(pending)
        self._start_worker()
        self._cond.notify_all()

    @staticmethod
    def _result(pending: _Pending) -> np.ndarray:
        pending.done.wait()
        if pending.error is not None:
            raise pending.error
        return pending.vector

    def retry_after(self) -> int:
        """Whole seconds until the current queue has likely drained (at least 1)."""
        batches = -(-len(self._queue) // self._max_batch)
        return max(1, round(batches * self._seconds_per_batch + 0.5))

    def _start_worker(self) -> None:
        if self._worker is None or not self._worker.is_alive():
            self._worker = threading.Thread(target=self._run, name="stitch-query-batcher", daemon=True)
            self._worker.start()

    def _take_batch(self) -> list[_Pending]:
        with self._cond:
            while self._busy or not self._queue:
                self._cond.wait()
            # Optionally give more callers a moment to join, unless the batch is already full.
            deadline = time.monotonic() + (self._window if self._queue[0].company else 0.0)
            while len(self._queue) < self._max_batch and (left := deadline - time.monotonic()) > 0:
                self._cond.wait(left)
            self._busy = True
            return [self._queue.popleft() for _ in range(min(self._max_batch, len(self._queue)))]

    def _encode(self, batch: list[_Pending]) -> None:
        """One model call for ``batch`` (the caller holds ``_busy``); every caller gets its row or the error."""
        started = time.perf_counter()
        try:
            model = getattr(self.inner, "encode_queries", self.inner.encode_passages)
            vectors = model([p.text for p in batch])
        except BaseException as exc:  # noqa: BLE001 - handed to every waiting caller
            for p in batch:
                p.error = exc
        else:
            for p, vector in zip(batch, vectors):
                p.vector = vector
        with self._cond:
            self._seconds_per_batch = 0.8 * self._seconds_per_batch + 0.2 * (time.perf_counter() - started)
            self.batches += 1
            self.queries += len(batch)
            self._busy = False
            self._cond.notify_all()  # the worker, if queries queued meanwhile
        for p in batch:
            p.done.set()

    def _run(self) -> None:
        while True:
            self._encode(self._take_batch())
