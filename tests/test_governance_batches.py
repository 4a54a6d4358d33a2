"""The background writer behind the audit trail and the pack store: batches, order, flush, failures.
No wall-clock assertions: a 60 s linger that a test gets past within its join timeout proves a flush
(or close) cut it short."""

from __future__ import annotations

import threading

from governance.batches import BatchWriter


def _joined(target, timeout: float = 10) -> bool:  # noqa: ANN001
    thread = threading.Thread(target=target)
    thread.start()
    thread.join(timeout)
    return not thread.is_alive()


def test_records_handed_over_while_the_writer_lingers_are_written_in_one_batch_in_order():
    batches: list[list[int]] = []
    writer = BatchWriter(batches.append, name="t", linger=60)
    for i in range(100):
        writer.submit(i)
    assert _joined(writer.flush)  # the flush cut the 60 s linger short
    assert batches == [list(range(100))]


def test_concurrent_submitters_lose_nothing_and_batches_stay_bounded():
    batches: list[list[tuple[int, int]]] = []
    writer = BatchWriter(batches.append, name="t", linger=0.01, max_batch=64)
    threads = [threading.Thread(target=lambda n=n: [writer.submit((n, i)) for i in range(250)]) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    writer.flush()
    written = [item for batch in batches for item in batch]
    assert sorted(written) == sorted((n, i) for n in range(4) for i in range(250))
    for n in range(4):  # each submitter's items stay in its order
        assert [i for m, i in written if m == n] == list(range(250))
    assert max(len(b) for b in batches) <= 64 and len(batches) < 1000


def test_close_writes_what_is_pending_and_a_later_submit_starts_again():
    batches: list[list[str]] = []
    writer = BatchWriter(batches.append, name="t", linger=60)
    writer.submit("a")
    assert _joined(writer.close)
    assert batches == [["a"]]
    writer.submit("b")
    assert _joined(writer.flush)
    assert batches == [["a"], ["b"]]


def test_a_failing_batch_is_logged_and_the_writer_goes_on(caplog):
    batches: list[list[str]] = []

    def write(batch: list[str]) -> None:
        if "bad" in batch:
            raise OSError("disk full")
        batches.append(batch)

    writer = BatchWriter(write, name="t", linger=60)
    writer.submit("bad")
    assert _joined(writer.flush)
    writer.submit("good")
    assert _joined(writer.flush)
    assert batches == [["good"]]
    assert "could not write 1 record" in caplog.text


def test_past_max_pending_the_caller_writes_its_own_record():
    gate, batches = threading.Event(), []

    def write(batch: list[int]) -> None:
        if batch == [0]:
            gate.wait(30)  # the writer is stuck on its first batch
        batches.append(batch)

    writer = BatchWriter(write, name="t", linger=0, max_pending=2)
    writer.submit(0)
    while not writer._thread or writer._pending:  # the writer has taken item 0
        threading.Event().wait(0.01)
    writer.submit(1)
    writer.submit(2)
    writer.submit(3)  # two are waiting: this caller writes item 3 itself, now
    assert batches == [[3]]
    gate.set()
    assert _joined(writer.flush)
    assert sorted(i for b in batches for i in b) == [0, 1, 2, 3]
