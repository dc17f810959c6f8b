"""`telemetry_latest` upkeep off the writer's path: every `latestInterval`, on a connection of its own.

Upserting each batch's units in the batch's own transaction costs the server more than the COPY itself
(docs/benchmarks.md: ~13 of ~24 µs per streamed row), all of it on the writer's one backend. With an
interval, the writer only hands each committed batch over (`note`, O(1)); this keeper folds them into
the newest row per unit and, once per interval, upserts those in one transaction of its own. So the
upkeep runs on a second backend (the server's second core), and each unit is written once per interval
instead of once per sample.

The contract (docs/telemetry-latest.md): `telemetry_latest` never moves backwards and never holds a row
telemetry does not (only committed batches are noted); while the database is reachable it is behind
committed telemetry by at most the interval plus one upsert; a clean stop carries everything over;
after a kill, the next start of the shard catches up (`writer.catch_up_latest`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence

import psycopg

from workloads.errors import DatabaseUnavailable
from workloads.store.connection import connect, first_line
from workloads.store.writer import Key, fold_newest, prepare_session, upsert_newest

from .health import Health
from .metrics import SimulatorMetrics

log = logging.getLogger(__name__)

Row = tuple[object, ...]
Conn = psycopg.Connection[tuple[object, ...]]

FOLD_EVERY_S = 0.1  # handed-over batches are folded this often, so at most this much of them is held
LOOP = "latest"


class LatestKeeper:
    """Carries committed batches into `telemetry_latest` every `interval` seconds (see the module doc)."""

    def __init__(
        self,
        url: str,
        interval: float,
        metrics: SimulatorMetrics,
        health: Health,
        stop: threading.Event,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.url = url
        self.interval = interval
        self.metrics = metrics
        self.health = health
        self._stop = stop  # set when the writer has finished: flush once more and end
        self._handed: list[Sequence[Row]] = []
        self._lock = threading.Lock()
        self.pending: dict[Key, Row] = {}  # newest committed row per unit, not yet in the table
        self.conn: Conn | None = None
        self.flushes = 0
        self.failures = 0
        # Wall time, for `time() - caught_up` in the DynolineSimulatorLatestStale alert; injectable for tests.
        self._clock = clock
        self._caught_up = metrics.latest_caught_up()
        self._caught_up.set(clock())  # nothing handed over yet: nothing is behind

    def note(self, rows: Sequence[Row]) -> None:
        """A batch was committed to telemetry (the writer's thread; only a list append under a lock)."""
        with self._lock:
            self._handed.append(rows)

    def fold_handed(self) -> None:
        with self._lock:
            handed, self._handed = self._handed, []
        for rows in handed:
            fold_newest(self.pending, rows)
        self.metrics.latest_pending_units.set(len(self.pending))

    def run(self) -> None:
        """Fold often, flush every interval, until stopped; then one last flush of everything noted."""
        next_flush = time.monotonic() + self.interval
        while not self._stop.wait(min(FOLD_EVERY_S, max(0.0, next_flush - time.monotonic()))):
            self.health.beat(LOOP)
            self.fold_handed()
            if time.monotonic() >= next_flush:
                self.flush()
                next_flush = time.monotonic() + self.interval
        self.fold_handed()
        self.flush()

    def flush(self) -> bool:
        """Upsert the pending rows in one transaction; on failure keep them for the next interval."""
        if not self.pending:
            self._caught_up.set(self._clock())
            return True
        caught_up = self._clock()  # pending holds everything folded so far: once stored, nothing is behind
        began = time.monotonic()
        try:
            conn = self._connection()
            upsert_newest(conn, list(self.pending.values()))
            conn.commit()
        except (psycopg.Error, DatabaseUnavailable) as exc:
            self.failures += 1
            if self.failures == 1 or self.failures % 60 == 0:
                log.warning("telemetry_latest upkeep failed (%s); retrying next interval", first_line(exc))
            self._drop_connection()
            return False
        self.flushes += 1
        self.failures = 0
        self.pending.clear()
        self.metrics.latest_pending_units.set(0)
        self._caught_up.set(caught_up)
        self.metrics.latest_flush.observe(time.monotonic() - began)
        return True

    def close(self) -> None:
        self._drop_connection()

    def _connection(self) -> Conn:
        if self.conn is None:
            conn = connect(self.url, timeout=2)
            try:
                prepare_session(conn)
                conn.commit()
            except psycopg.Error:
                conn.close()
                raise
            self.conn = conn
        return self.conn

    def _drop_connection(self) -> None:
        conn, self.conn = self.conn, None
        if conn is not None:
            conn.close()
