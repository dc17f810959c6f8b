"""The generator: turns the schedule into rows, paced by the clock (or as fast as the queue takes them).

`build_chunk` is the per-row work, a plain function of the schedule and the source; `Generator.run` is
the loop around it (pacing, quarantine reads, the hand-over to the writer), meant for its own thread.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Protocol, runtime_checkable

from workloads.sources import Source

from .config import SimulatorConfig
from .health import Health
from .metrics import SimulatorMetrics
from .pacing import Schedule
from .quarantine import QuarantineReader
from .rowqueue import QueueAborted, RowQueue
from .stats import Counts

Row = tuple[object, ...]
Values = Callable[[int, int], tuple[int, tuple[float, ...]] | None]

CHUNK_ROWS = 1000  # rows per hand-over from generator to writer, at most
MIN_SLEEP = 0.002  # the generator wakes at most every 2 ms and emits everything due by then
NO_PACE_QUARANTINE_EVERY = 0.1  # seconds between quarantine reads when backfilling


@runtime_checkable
class ValuesSource(Protocol):
    """A source that can hand out a reading as (cycle, settings + sensors) without building a Reading."""

    def values(self, unit_id: int, tick: int) -> tuple[int, tuple[float, ...]] | None: ...


def values_of(source: Source) -> Values:
    """The source's fast path if it has one, else its readings flattened."""
    if isinstance(source, ValuesSource):
        return source.values
    read = source.reading

    def values(unit_id: int, tick: int) -> tuple[int, tuple[float, ...]] | None:
        reading = read(unit_id, tick)
        return None if reading is None else (reading.cycle, reading.settings + reading.sensors)

    return values


def build_chunk(
    line: str,
    units: Sequence[int],
    schedule: Schedule,
    values: Values,
    k: int,
    end: int,
    quarantined_at: Callable[[int], frozenset[int]],
) -> tuple[list[Row], int]:
    """The rows of sample indices [k, end) and how many were skipped as quarantined.

    `quarantined_at(tick)` is asked once per tick the chunk touches, before that tick's rows.
    """
    n = len(units)
    rows: list[Row] = []
    append = rows.append
    skipped = 0
    j = k
    while j < end:  # one tick's slice of units at a time: the per-row loop does only the row
        tick, slot = divmod(j, n)
        upto = min(end, j - slot + n)
        quarantined = quarantined_at(tick)
        for unit, ts in zip(units[slot : slot + upto - j], schedule.stamps(j, upto), strict=True):
            if unit in quarantined:
                skipped += 1
                continue
            got = values(unit, tick)
            if got is None:
                continue
            append((line, unit, got[0], ts, *got[1]))
        j = upto
    return rows, skipped


class Generator:
    """The loop: emits what is due, hands it to the writer through `queue`, until stopped or done."""

    def __init__(
        self,
        config: SimulatorConfig,
        units: Sequence[int],
        queue: RowQueue,
        quarantine: QuarantineReader,
        counts: Counts,
        metrics: SimulatorMetrics,
        health: Health,
        stop: threading.Event,
    ) -> None:
        self.config = config
        self.units = units
        self.queue = queue
        self.quarantine = quarantine
        self.counts = counts
        self.metrics = metrics
        self.health = health
        self.stop = stop
        self._checked_tick = -1
        self._last_check = 0.0

    def _quarantined_at(self, tick: int) -> frozenset[int]:
        """Re-read quarantine once per tick (paced), or every NO_PACE_QUARANTINE_EVERY s (backfill)."""
        if tick != self._checked_tick:
            now = time.monotonic()
            if self.config.pace or now - self._last_check >= NO_PACE_QUARANTINE_EVERY:
                self.quarantine.refresh()
                self._last_check = now
            self._checked_tick = tick
        return self.quarantine.current

    def run(self, source: Source, sched: Schedule, mono0: float) -> None:
        """Generate from tick 0 at monotonic time `mono0`; closes the queue when done."""
        cfg = self.config
        units, line = self.units, cfg.line
        n = len(units)
        limit = cfg.ticks * n if cfg.ticks is not None else None
        chunk = max(1, min(CHUNK_ROWS, self.queue.max_rows))
        values = values_of(source)
        k = 0
        try:
            while not self.stop.is_set():
                self.health.beat("generator")
                if cfg.paused:
                    self.stop.wait(1.0)
                    continue
                if cfg.pace:
                    elapsed = time.monotonic() - mono0
                    due = sched.due_through(elapsed)
                    if limit is not None:
                        due = min(due, limit)
                    if due <= k:
                        if limit is not None and k >= limit:
                            break
                        # at most a second, so /healthz sees the loop beat even at very low rates
                        self.stop.wait(min(1.0, max(sched.offset(k) - elapsed, MIN_SLEEP)))
                        continue
                else:
                    due = k + chunk if limit is None else min(k + chunk, limit)
                    if due <= k:
                        break
                end = min(due, k + chunk)
                rows, skipped = build_chunk(line, units, sched, values, k, end, self._quarantined_at)
                born = mono0 + sched.offset(k) if cfg.pace else time.monotonic()
                k = end
                self.counts.skipped += skipped
                if rows:
                    blocked = self.queue.blocked_seconds
                    self.queue.put(rows, born, heartbeat=lambda: self.health.beat("generator"))
                    self.metrics.queue_blocked.inc(self.queue.blocked_seconds - blocked)
                    self.counts.generated += len(rows)
                    self.metrics.generated.inc(len(rows))
        except QueueAborted:
            pass
        finally:
            self.queue.close()
