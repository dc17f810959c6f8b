"""Which units of the line are quarantined: read by the generator each tick, never allowed to stall it.

The reader keeps its own autocommit connection. When the database goes away it keeps the last set it
read and reconnects on a thread of its own (with backoff), so pacing carries on through an outage.
"""

from __future__ import annotations

import logging
import threading

import psycopg

from workloads.errors import DatabaseUnavailable
from workloads.store.connection import connect
from workloads.store.unit_state import quarantined_units

from .metrics import SimulatorMetrics

log = logging.getLogger(__name__)

Conn = psycopg.Connection[tuple[object, ...]]

BACKOFF_FIRST, BACKOFF_MAX = 0.1, 5.0


class QuarantineReader:
    """The line's quarantined units (`current`); `mine` counts those of this shard."""

    def __init__(
        self, url: str, line: str, units: frozenset[int], metrics: SimulatorMetrics, stop: threading.Event
    ) -> None:
        self.url = url
        self.line = line
        self.units = units
        self.metrics = metrics
        self._stop = stop
        self.current: frozenset[int] = frozenset()
        self._conn: Conn | None = None
        self._reconnecting = threading.Lock()

    @property
    def mine(self) -> int:
        return len(self.current & self.units)

    def open(self) -> None:
        """Connect and read once (or raise DatabaseUnavailable): the first tick skips the right units."""
        self._conn = connect(self.url, autocommit=True)
        self.refresh()
        self.metrics.quarantined.set(self.mine)

    def refresh(self) -> None:
        """Read the line's quarantined units; keep the last known set while the database is away."""
        conn = self._conn
        if conn is None:
            self._reconnect_later()
            return
        try:
            found = quarantined_units(conn, self.line)
        except psycopg.Error:
            self._conn = None
            conn.close()
            self._reconnect_later()
            return
        self.apply(found)

    def apply(self, found: frozenset[int]) -> None:
        """Take a freshly read set: log and export a change of this shard's part only."""
        if found == self.current:
            return
        mine = found & self.units
        if mine != (self.current & self.units):
            log.info("quarantined units of this shard: %s", sorted(mine) or "none")
        self.current = found
        self.metrics.quarantined.set(len(mine))

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    def _reconnect_later(self) -> None:
        """Reconnect off the generator thread, so an outage never stalls pacing."""
        if not self._reconnecting.acquire(blocking=False):
            return
        threading.Thread(target=self._reconnect, name="state-reconnect", daemon=True).start()

    def _reconnect(self) -> None:
        try:
            delay = 0.0
            while not self._stop.is_set():
                if self._stop.wait(delay):
                    return
                try:
                    conn = connect(self.url, autocommit=True, timeout=2)
                except DatabaseUnavailable:
                    delay = min(BACKOFF_MAX, max(BACKOFF_FIRST, delay * 2))
                    continue
                if self._stop.is_set():
                    conn.close()
                else:
                    self._conn = conn
                return
        finally:
            self._reconnecting.release()
