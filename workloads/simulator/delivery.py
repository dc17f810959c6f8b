"""The writer's side: batches to the database, or to the spool while it is away, and back by replay.

A batch goes to the database by plain binary COPY. If that fails, or the spool already holds batches
(order must be kept), it is appended to the spool instead. Spooled batches are replayed oldest first
through the idempotent staged insert (a failed COMMIT may still have committed) and leave the spool only
once their commit is confirmed. So every generated sample is stored exactly once, with one exception
said out loud: when the database is away and the spool cannot be written either (a full volume), a batch
is held and retried (not ready, `spool_writable` 0, one log line) until the run is told to stop; then
it is dropped and counted as `lost`, so that SIGTERM still ends the process.

`telemetry_latest` moves in each batch's own transaction when the line's `latestInterval` is 0s;
otherwise a batch is handed to the `LatestKeeper` (latest.py) once its commit is confirmed, never before.

`Delivery` owns the writer's connection and every transaction on it (the store functions it calls
never commit: writer.py, partitions.py); it runs on the writer thread
(`write_loop`), but each method is a plain call, so it is driven directly in tests.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

import psycopg

from workloads.catalog import TELEMETRY_COLUMNS
from workloads.errors import DatabaseUnavailable
from workloads.store.connection import connect, first_line
from workloads.store.dsn import describe
from workloads.store.partitions import ensure_partitions
from workloads.store.writer import copy_rows, insert_rows_idempotent, prepare_session, upsert_latest

from .batcher import Batcher
from .config import SimulatorConfig
from .health import Health
from .lag import LagHistogram
from .latest import LatestKeeper
from .metrics import SimulatorMetrics
from .rowqueue import RowQueue
from .spool import Spool
from .stats import Counts

log = logging.getLogger(__name__)

Row = tuple[object, ...]
Conn = psycopg.Connection[tuple[object, ...]]

TS = TELEMETRY_COLUMNS.index("ts")  # a row's sample time, a datetime
PARTITION_DAYS_AHEAD = 2
BACKOFF_FIRST, BACKOFF_MAX = 0.1, 5.0
SPOOL_RETRY_S = 1.0  # between appends to a spool that failed


class PartitionCoverage:
    """The days the writer knows have partitions, so it asks the database only when a batch leaves them."""

    def __init__(self, days_ahead: int = PARTITION_DAYS_AHEAD) -> None:
        self.days_ahead = days_ahead
        self._covered: tuple[datetime, datetime] | None = None

    def covers(self, lo: datetime, hi: datetime) -> bool:
        covered = self._covered
        return covered is not None and covered[0] <= lo and hi <= covered[1]

    def span(self, lo: datetime, hi: datetime, now: datetime) -> tuple[datetime, datetime]:
        """What to create for samples in [lo, hi]: from `lo`'s day to `days_ahead` days past `hi` and `now`.

        Never reaches back before `lo`: retention drops old days on purpose and must not see them return.
        """
        return lo, max(hi, now) + timedelta(days=self.days_ahead)

    def record(self, start: datetime, end: datetime) -> None:
        """Partitions for [start, end] exist (their creation is committed)."""
        start_utc = start.astimezone(UTC)
        day_start = datetime(start_utc.year, start_utc.month, start_utc.day, tzinfo=UTC)
        # the last created day is fully covered; stop trusting it a day early so renewal happens ahead
        self._covered = (day_start, end - timedelta(days=1))

    def forget(self) -> None:
        """Partitions may have changed (a reconnect): ask again next time."""
        self._covered = None


class Delivery:
    """Gets batches stored exactly once: COPY, or spool and replay."""

    def __init__(
        self,
        config: SimulatorConfig,
        url: str,
        metrics: SimulatorMetrics,
        health: Health,
        counts: Counts,
        stopping: threading.Event,
        latest: LatestKeeper | None = None,
    ) -> None:
        self.config = config
        self.latest = latest  # None: telemetry_latest moves in each batch's own transaction
        self.url = url
        self.metrics = metrics
        self.health = health
        self.counts = counts
        self.stopping = stopping  # set: the run is ending, hold nothing back waiting for the spool
        self._spool_failing = False
        self.lag = LagHistogram()  # the whole run
        self.window = LagHistogram()  # since the last progress snapshot
        self.coverage = PartitionCoverage()
        self.conn: Conn | None = None
        self.spool: Spool | None = None
        self._next_connect = 0.0
        self._replay_after = 0.0
        self._backoff = BACKOFF_FIRST

    @property
    def spool_rows(self) -> int:
        return self.spool.pending_rows if self.spool is not None else 0

    def close(self) -> None:
        conn, self.conn = self.conn, None
        if conn is not None:
            conn.close()
        if self.spool is not None:
            self.spool.close()

    def write_loop(self, queue: RowQueue, batcher: Batcher, failed: Callable[[], bool]) -> None:
        """Drain the queue into batches until it is closed and empty, then try to empty the spool."""
        spool = self.spool
        assert spool is not None
        while True:
            self.health.beat("writer")
            deadline = batcher.deadline()
            timeout = 0.1 if deadline is None else min(0.1, max(0.0, deadline - time.monotonic()))
            for born, rows in queue.get(timeout):
                for batch in batcher.add(rows, born):
                    self.deliver(batch)
            due = batcher.due(time.monotonic())
            if due:
                self.deliver(due)
            if queue.drained:
                rest = batcher.flush()
                if rest:
                    self.deliver(rest)
                break
            if spool.pending:
                self.replay(deadline=time.monotonic() + 0.2)
            self.update_gauges()
            self.metrics.queue_rows.set(queue.rows)
        # on the way out: replay what the database will take now, leave the rest for the next start
        if spool.pending and not failed():
            self.replay(deadline=time.monotonic() + self.config.shutdown_timeout, patient=False)

    def deliver(self, batch: list[Row]) -> None:
        spool = self.spool
        assert spool is not None
        if not spool.pending and self.connected():
            conn = self.conn
            assert conn is not None
            began = time.monotonic()
            try:
                self.ensure_partitions_for(conn, batch)
                copy_rows(conn, batch)
                if self.latest is None:
                    upsert_latest(conn, batch)  # same transaction: never disagrees
                conn.commit()
            except psycopg.Error as exc:
                self._db_failed(exc, "copy")
            else:
                self.metrics.batch_copy.observe(time.monotonic() - began)
                if self.latest is not None:
                    self.latest.note(batch)
                self._stored(batch)
                return
        self._spool_batch(batch)

    def _spool_batch(self, batch: list[Row]) -> None:
        spool = self.spool
        assert spool is not None
        while True:
            try:
                spool.append(batch)
                break
            except OSError as exc:
                why = exc.strerror or str(exc)
                if not self._spool_failing:
                    log.error("cannot append to spool %s: %s; holding the batch, retrying", spool.path, why)
                    self._spool_failing = True
                    self.metrics.spool_writable.set(0)
                # nowhere to put it: hold it (the generator blocks behind us) and retry until told to stop
                self.health.set_ready(False, f"spool {spool.path} unwritable: {why}")
                self.health.beat("writer")
                if self.stopping.wait(SPOOL_RETRY_S):
                    self._lose(batch, why)
                    return
        if self._spool_failing:
            log.info("spool %s writable again", spool.path)
            self._spool_failing = False
            self.metrics.spool_writable.set(1)
        self.health.set_ready(True, "spooling: database unavailable" if self.conn is None else "ok")
        self.counts.spooled += len(batch)
        self.metrics.spooled.inc(len(batch))

    def _lose(self, batch: list[Row], why: str) -> None:
        """Stopping with a batch neither the database nor the spool takes: exiting drops it, so count it."""
        if not self.counts.lost:
            log.error(
                "stopping with the database away and spool %s unwritable (%s): unstored samples are lost",
                self.spool.path if self.spool is not None else "?",
                why,
            )
        self.counts.lost += len(batch)
        self.metrics.lost.inc(len(batch))

    def replay(self, deadline: float | None, *, recovered: bool = False, patient: bool = True) -> None:
        """Replay spooled batches oldest first until drained, the deadline, or a failure."""
        spool = self.spool
        assert spool is not None
        while spool.pending and (deadline is None or time.monotonic() < deadline):
            if patient and time.monotonic() < self._replay_after:
                return
            if not self.connected(force=not patient):
                return
            conn = self.conn
            assert conn is not None
            records, rows = spool.peek(self.config.replay_rows)
            began = time.monotonic()
            try:
                self.ensure_partitions_for(conn, rows)
                insert_rows_idempotent(conn, rows)
                if self.latest is None:
                    upsert_latest(conn, rows)  # only moves forward: an old batch cannot undo
                conn.commit()
            except psycopg.Error as exc:
                self._db_failed(exc, "replay")
                self._replay_after = time.monotonic() + self._backoff
                self._backoff = min(BACKOFF_MAX, self._backoff * 2)
                return
            spool.confirm(records)
            if self.latest is not None:
                self.latest.note(rows)
            self._backoff = BACKOFF_FIRST
            self.metrics.batch_replay.observe(time.monotonic() - began)
            if recovered:
                self.counts.recovered += len(rows)
                self.metrics.written.inc(len(rows))
            else:
                self.counts.replayed += len(rows)
                self.metrics.replayed.inc(len(rows))
                self._stored(rows)
            self.update_gauges()
            if not spool.pending:
                log.info("spool drained")

    def _stored(self, rows: Sequence[Row]) -> None:
        committed = time.time()
        # one commit instant for the whole batch: lags are counted per bucket from the sorted stamps
        stamps = sorted([row[TS].timestamp() for row in rows])  # type: ignore[attr-defined]
        self.lag.record_stamps(committed, stamps)
        self.window.record_stamps(committed, stamps)
        self.metrics.lag.observe_batch(committed, stamps)
        self.counts.written += len(rows)
        self.counts.batches += 1
        self.metrics.written.inc(len(rows))

    def connected(self, force: bool = False) -> bool:
        """Whether the writer has a connection, reconnecting (with backoff) when it has none."""
        if self.conn is not None:
            return True
        now = time.monotonic()
        if now < self._next_connect and not force:
            return False
        try:
            conn = connect(self.url, timeout=2)
            try:
                prepare_session(conn)  # the session's staging tables once, not a CREATE per batch
                conn.commit()
            except psycopg.Error as exc:
                conn.close()
                where = describe(self.url)
                raise DatabaseUnavailable(f"cannot prepare a session on {where}: {first_line(exc)}") from None
        except DatabaseUnavailable as exc:
            self._backoff = min(BACKOFF_MAX, self._backoff * 2)
            self._next_connect = time.monotonic() + self._backoff * random.uniform(0.5, 1.0)
            log.debug("still no database: %s", exc)
            return False
        log.info("database %s reachable again", describe(self.url))
        self.conn = conn
        self.coverage.forget()  # partitions may have changed while we were away
        self._backoff = BACKOFF_FIRST
        self.metrics.database_up.set(1)
        self.health.set_ready(True, "ok")
        return True

    def _db_failed(self, exc: psycopg.Error, path: str) -> None:
        self.counts.errors += 1
        self.metrics.write_errors.inc()
        conn = self.conn
        if conn is not None and not (conn.closed or conn.broken):
            try:
                conn.rollback()
                what = (
                    "spooled for an idempotent retry" if path == "copy" else "kept in the spool, will retry"
                )
                log.warning("%s batch rejected (%s): %s", path, first_line(exc), what)
                return
            except psycopg.Error:
                pass
        if conn is not None:
            log.warning("database lost during %s (%s): spooling until it is back", path, first_line(exc))
            conn.close()
        self.conn = None
        self._next_connect = time.monotonic() + self._backoff
        self.metrics.database_up.set(0)
        self.health.set_ready(True, "spooling: database unavailable")

    def ensure_partitions_for(self, conn: Conn, rows: Sequence[Row]) -> None:
        stamps = [row[TS] for row in rows]
        lo, hi = min(stamps), max(stamps)  # type: ignore[type-var]
        assert isinstance(lo, datetime) and isinstance(hi, datetime)
        if not self.coverage.covers(lo, hi):
            self.ensure_partitions(conn, lo, hi)

    def ensure_partitions(self, conn: Conn, lo: datetime, hi: datetime) -> None:
        """Daily partitions for samples in [lo, hi] and a little ahead (see `PartitionCoverage.span`).

        Committed here, in a transaction of their own: the upkeep holds an advisory lock every shard's
        upkeep waits on (and creating a partition locks the parent every COPY needs) until its commit, so
        neither may last through a batch; and the coverage is recorded only once the partitions exist
        for certain, never rolled back with a failed batch.
        """
        start, end = self.coverage.span(lo, hi, datetime.now(UTC))
        ensure_partitions(conn, start, end)
        conn.commit()
        self.coverage.record(start, end)

    def update_gauges(self) -> None:
        spool = self.spool
        if spool is not None:
            self.metrics.spool_rows.set(spool.pending_rows)
            self.metrics.spool_bytes.set(spool.pending_bytes)
