"""A deduplicating work queue with per-key serialisation and retry backoff (client-go's workqueue, small).

Watch events for a resource and for each of its children all map to one key; a burst of them becomes one
reconcile, never two at once for the same key (a key that changes while it is being reconciled is
reconciled once more afterwards). Failures retry with exponential backoff per key; successes may ask to be
looked at again after a delay (e.g. a missing Secret, checked again slowly rather than in a storm).
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)

log = logging.getLogger(__name__)


def backoff(failures: int, base: float = 0.5, cap: float = 120.0) -> float:
    """0.5 s, 1 s, 2 s, … capped, with ±10 % jitter so many failing keys do not retry in lockstep."""
    delay: float = min(cap, base * 2 ** max(0, failures - 1))
    return delay * random.uniform(0.9, 1.1)


class WorkQueue(Generic[K]):
    def __init__(
        self,
        handler: Callable[[K], Awaitable[float | None]],
        *,
        workers: int = 4,
        on_error: Callable[[K, BaseException, int], None] | None = None,
        retry: Callable[[int], float] = backoff,
    ) -> None:
        self._handler = handler
        self._workers_wanted = workers
        self._on_error = on_error
        self._retry = retry
        self._queue: asyncio.Queue[K] = asyncio.Queue()
        self._pending: set[K] = set()
        self._processing: set[K] = set()
        self._dirty: set[K] = set()
        self._delayed: dict[K, tuple[float, asyncio.TimerHandle]] = {}
        self._failures: dict[K, int] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._idle = asyncio.Event()
        self._idle.set()

    # ----------------------------------------------------------------------------------------- producing

    def add(self, key: K, delay: float = 0.0) -> None:
        """Reconcile `key` (after `delay` seconds); duplicates collapse, the earliest deadline wins."""
        if delay > 0:
            loop = asyncio.get_running_loop()
            due = loop.time() + delay
            known = self._delayed.get(key)
            if known is not None:
                if known[0] <= due:
                    return
                known[1].cancel()
            self._delayed[key] = (due, loop.call_at(due, self._fire, key))
            return
        if key in self._processing:
            self._dirty.add(key)
            return
        if key in self._pending:
            return
        self._pending.add(key)
        self._idle.clear()
        self._queue.put_nowait(key)

    def _fire(self, key: K) -> None:
        self._delayed.pop(key, None)
        self.add(key)

    def forget(self, key: K) -> None:
        """Drop retries and delayed work for a key whose object is gone."""
        self._failures.pop(key, None)
        delayed = self._delayed.pop(key, None)
        if delayed is not None:
            delayed[1].cancel()

    # ------------------------------------------------------------------------------------------ running

    def start(self) -> None:
        for index in range(self._workers_wanted):
            self._tasks.append(asyncio.create_task(self._work(), name=f"dynoline-worker-{index}"))

    async def stop(self) -> None:
        for _, handle in self._delayed.values():
            handle.cancel()
        self._delayed.clear()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()

    async def wait_idle(self) -> None:
        """Until nothing is queued or running (delayed work does not count); for tests and benchmarks."""
        await self._idle.wait()

    def __len__(self) -> int:
        return len(self._pending) + len(self._processing)

    @property
    def failures(self) -> dict[K, int]:
        return dict(self._failures)

    async def _work(self) -> None:
        while True:
            key = await self._queue.get()
            self._pending.discard(key)
            self._processing.add(key)
            again: float | None = None
            try:
                again = await self._handler(key)
                self._failures.pop(key, None)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                count = self._failures.get(key, 0) + 1
                self._failures[key] = count
                again = self._retry(count)
                if self._on_error is not None:
                    self._on_error(key, exc, count)
                else:
                    log.error(
                        "reconcile of %s failed (attempt %d), retrying in %.1fs: %s", key, count, again, exc
                    )
            finally:
                self._processing.discard(key)
                self._queue.task_done()
            if key in self._dirty:
                self._dirty.discard(key)
                self.add(key)
            elif again is not None:
                self.add(key, again)
            if not self._pending and not self._processing:
                self._idle.set()
