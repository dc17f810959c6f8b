"""The bounded hand-over between generator and writer: backpressure instead of unbounded memory.

Rows travel in chunks stamped with the monotonic time they were generated, so the writer can bound a
batch's latency from generation, not from when it happened to dequeue it.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Sequence

Row = tuple[object, ...]
Chunk = tuple[float, Sequence[Row]]


class QueueAborted(RuntimeError):
    pass


class RowQueue:
    def __init__(self, max_rows: int) -> None:
        if max_rows < 1:
            raise ValueError(f"max_rows must be ≥ 1, got {max_rows}")
        self.max_rows = max_rows
        self._chunks: deque[Chunk] = deque()
        self._rows = 0
        self._closed = False
        self._aborted = False
        self._cond = threading.Condition()
        self.blocked_seconds = 0.0
        self.blocked_puts = 0
        self.high_water = 0

    @property
    def rows(self) -> int:
        return self._rows

    def put(self, rows: Sequence[Row], born: float, heartbeat: Callable[[], None] | None = None) -> None:
        """Enqueue, blocking while full; a chunk larger than the bound waits for an empty queue."""
        if not rows:
            return
        with self._cond:
            if self._closed or self._aborted:
                raise QueueAborted("put on a closed or aborted RowQueue")
            if self._rows and self._rows + len(rows) > self.max_rows:
                began = time.monotonic()
                self.blocked_puts += 1
                while self._rows and self._rows + len(rows) > self.max_rows and not self._aborted:
                    self._cond.wait(1.0)
                    if heartbeat is not None:
                        heartbeat()  # blocked by backpressure is not stuck
                self.blocked_seconds += time.monotonic() - began
                if self._aborted:
                    raise QueueAborted("the consumer is gone")
            self._chunks.append((born, rows))
            self._rows += len(rows)
            self.high_water = max(self.high_water, self._rows)
            self._cond.notify_all()

    def get(self, timeout: float | None) -> list[Chunk]:
        """Everything queued, waiting up to `timeout` for something; [] on timeout or closed and empty."""
        with self._cond:
            if not self._chunks and not self._closed:
                self._cond.wait(timeout)
            chunks = list(self._chunks)
            self._chunks.clear()
            self._rows = 0
            self._cond.notify_all()
            return chunks

    def close(self) -> None:
        """The producer is done: wakes the consumer so it can finish."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def abort(self) -> None:
        """The consumer is gone: a blocked producer must not wait forever."""
        with self._cond:
            self._aborted = True
            self._cond.notify_all()

    @property
    def drained(self) -> bool:
        """Closed and nothing left: the consumer may finish."""
        with self._cond:
            return self._closed and not self._chunks
