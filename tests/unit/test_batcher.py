from __future__ import annotations

import threading

import pytest

from workloads.simulator.batcher import Batcher
from workloads.simulator.rowqueue import QueueAborted, RowQueue


def rows(n: int, tag: str = "r") -> list[tuple[object, ...]]:
    return [(tag, i) for i in range(n)]


def test_full_batches_leave_at_once_in_order() -> None:
    b = Batcher(max_rows=4, max_latency=1.0)
    assert b.add(rows(3, "a"), born=0.0) == []
    full = b.add(rows(6, "b"), born=0.1)
    assert full == [rows(3, "a") + rows(1, "b"), rows(6, "b")[1:5]]
    assert len(b) == 1
    assert b.flush() == [("b", 5)]
    assert b.flush() is None


def test_latency_bound_counts_from_the_oldest_row() -> None:
    b = Batcher(max_rows=100, max_latency=0.05)
    assert b.deadline() is None
    b.add(rows(1, "old"), born=10.0)
    b.add(rows(1, "new"), born=10.04)
    assert b.deadline() == pytest.approx(10.05)
    assert b.due(10.049) is None
    assert b.due(10.05) == [("old", 0), ("new", 0)]
    assert b.deadline() is None and len(b) == 0


def test_rows_left_after_a_size_flush_keep_their_own_clock() -> None:
    b = Batcher(max_rows=2, max_latency=1.0)
    b.add(rows(1, "a"), born=0.0)
    b.add(rows(2, "b"), born=5.0)  # cuts [a0, b0], b1 remains, born at 5.0
    assert b.deadline() == pytest.approx(6.0)


def test_zero_latency_flushes_every_add() -> None:
    b = Batcher(max_rows=100, max_latency=0.0)
    b.add(rows(2), born=1.0)
    assert b.due(1.0) == rows(2)


@pytest.mark.parametrize(("max_rows", "max_latency"), [(0, 1.0), (1, -1.0), (1, float("nan"))])
def test_batcher_rejects_bad_bounds(max_rows: int, max_latency: float) -> None:
    with pytest.raises(ValueError):
        Batcher(max_rows, max_latency)


def test_queue_hands_over_everything_in_order() -> None:
    q = RowQueue(max_rows=10)
    q.put(rows(2, "a"), born=1.0)
    q.put(rows(3, "b"), born=2.0)
    assert q.rows == 5
    assert q.get(timeout=0) == [(1.0, rows(2, "a")), (2.0, rows(3, "b"))]
    assert q.rows == 0
    assert q.get(timeout=0) == []


def test_full_queue_blocks_the_producer_until_drained() -> None:
    q = RowQueue(max_rows=4)
    q.put(rows(3), born=0.0)
    putting = threading.Event()
    done = threading.Event()

    def produce() -> None:
        putting.set()
        q.put(rows(2, "late"), born=1.0)
        done.set()

    t = threading.Thread(target=produce)
    t.start()
    putting.wait()
    assert not done.wait(0.2), "a put over the bound must wait"
    assert [chunk for _, chunk in q.get(timeout=0)] == [rows(3)]
    t.join()
    assert done.is_set()
    assert q.blocked_puts == 1 and q.blocked_seconds > 0
    assert q.get(timeout=0) == [(1.0, rows(2, "late"))]
    assert q.high_water == 3


def test_oversized_chunk_goes_into_an_empty_queue() -> None:
    q = RowQueue(max_rows=2)
    q.put(rows(5), born=0.0)
    assert q.rows == 5


def test_close_then_drain() -> None:
    q = RowQueue(max_rows=10)
    q.put(rows(1), born=0.0)
    q.close()
    assert not q.drained
    assert q.get(timeout=None) == [(0.0, rows(1))]
    assert q.drained
    assert q.get(timeout=None) == []  # closed: does not wait
    with pytest.raises(QueueAborted):
        q.put(rows(1), born=0.0)


def test_abort_releases_a_blocked_producer() -> None:
    q = RowQueue(max_rows=1)
    q.put(rows(1), born=0.0)
    failed: list[BaseException] = []

    def produce() -> None:
        try:
            q.put(rows(1), born=0.0)
        except QueueAborted as exc:
            failed.append(exc)

    t = threading.Thread(target=produce)
    t.start()
    q.abort()
    t.join()
    assert len(failed) == 1
