"""The simulator: a paced generator thread, a writer thread, and the spool between them and an outage.

`Simulator(config, url).run(stop_event)` streams until the event is set (or `duration`/`ticks` run
out) and returns what happened; the CLI, the demo and `dynoline bench stream` all drive it this way.

Delivery: a batch goes to the database by plain binary COPY. If that fails, or the spool already holds
batches (order must be kept), it is appended to the spool instead. Spooled batches are replayed
oldest first through the idempotent staged insert (a failed COMMIT may still have committed) and leave
the spool only once their commit is confirmed. So every generated sample is stored exactly once.
"""

from __future__ import annotations

import gc
import logging
import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, runtime_checkable

import psycopg
from prometheus_client import CollectorRegistry

from workloads.errors import DatabaseUnavailable, DynolineError
from workloads.sources import Source
from workloads.store.connection import connect, first_line
from workloads.store.dsn import describe
from workloads.store.migrate import available, current_version
from workloads.store.partitions import ensure_partitions
from workloads.store.unit_state import quarantined_units, record_line, register_units
from workloads.store.writer import copy_rows, insert_rows_idempotent, upsert_latest

from .batcher import Batcher
from .config import SimulatorConfig
from .health import Health, HttpEndpoint
from .lag import LagHistogram
from .metrics import SimulatorMetrics
from .pacing import Schedule, backfill_start_us, shard_units, to_micros
from .rowqueue import QueueAborted, RowQueue
from .spool import Spool

log = logging.getLogger(__name__)

Row = tuple[object, ...]
Conn = psycopg.Connection[tuple[object, ...]]

CHUNK_ROWS = 1000  # rows per hand-over from generator to writer, at most
MIN_SLEEP = 0.002  # the generator wakes at most every 2 ms and emits everything due by then
PARTITION_DAYS_AHEAD = 2
BACKOFF_FIRST, BACKOFF_MAX = 0.1, 5.0
NO_PACE_QUARANTINE_EVERY = 0.1  # seconds between quarantine reads when backfilling


@dataclass
class RunStats:
    """What a run did; `generated == written` and `spool_rows == 0` mean nothing is outstanding."""

    line: str
    shard: int
    units: int
    elapsed_s: float
    generated: int
    written: int
    spooled: int
    replayed: int
    recovered: int  # rows replayed from a previous run's spool at start
    skipped_quarantined: int
    write_errors: int
    batches: int
    spool_rows: int
    queue_high_water: int
    queue_bound: int
    queue_blocked_s: float
    lag: dict[str, float | int | None]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Progress:
    """A live snapshot for the demo's progress line (lag over the window since the previous snapshot)."""

    elapsed_s: float
    generated: int
    written: int
    queue_rows: int
    spool_rows: int
    quarantined: int
    database_up: bool
    lag_p50_s: float | None
    lag_p99_s: float | None


@runtime_checkable
class ValuesSource(Protocol):
    """A source that can hand out a reading as (cycle, settings + sensors) without building a Reading."""

    def values(self, unit_id: int, tick: int) -> tuple[int, tuple[float, ...]] | None: ...


def _values_of(source: Source) -> Callable[[int, int], tuple[int, tuple[float, ...]] | None]:
    read = source.reading

    def values(unit_id: int, tick: int) -> tuple[int, tuple[float, ...]] | None:
        reading = read(unit_id, tick)
        return None if reading is None else (reading.cycle, reading.settings + reading.sensors)

    return values


class Simulator:
    def __init__(
        self,
        config: SimulatorConfig,
        url: str,
        *,
        source: Source | None = None,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.config = config
        self.url = url
        self.units = shard_units(config.units, config.shard, config.shards)
        self._unit_set = frozenset(self.units)
        self._source = source
        self.metrics = SimulatorMetrics(config.line, config.shard, registry)
        self.health = Health()
        self.lag = LagHistogram()
        self._window = LagHistogram()
        self.queue = RowQueue(config.queue_bound)
        self.batcher = Batcher(config.batch_rows, config.max_latency)
        self.quarantined: frozenset[int] = frozenset()

        self._stop_generating = threading.Event()
        self._threads: list[threading.Thread] = []
        self._errors: list[BaseException] = []
        self._http: HttpEndpoint | None = None
        self._spool: Spool | None = None
        self._conn: Conn | None = None  # the writer's
        self._state_conn: Conn | None = None  # the generator's, for quarantine reads
        self._state_reconnecting = threading.Lock()
        self._next_connect = 0.0
        self._replay_after = 0.0
        self._backoff = BACKOFF_FIRST
        self._covered: tuple[datetime, datetime] | None = None
        self._began = 0.0
        self._ended: float | None = None
        self._generator_done = threading.Event()
        self._schedule: Schedule | None = None
        self._counts = {
            "generated": 0,
            "written": 0,
            "spooled": 0,
            "replayed": 0,
            "recovered": 0,
            "skipped": 0,
            "errors": 0,
            "batches": 0,
        }

    # ----------------------------------------------------------------- lifecycle

    def run(self, stop: threading.Event | None = None) -> RunStats:
        """Stream until `stop` is set, `duration` has passed or `ticks` are done; then flush and report."""
        stop = stop or threading.Event()
        self.start()
        try:
            deadline = self._began + self.config.duration if self.config.duration else None
            while not stop.wait(0.1):
                if self._generator_done.is_set() or self._errors:
                    break
                if deadline is not None and time.monotonic() >= deadline:
                    break
        finally:
            self.shutdown()
        if self._errors:
            raise self._errors[0]
        return self.stats()

    def start(self) -> None:
        """Check the database, register the shard, recover the spool, then start the loops.

        Fails (DatabaseUnavailable, DynolineError) before anything is written when the database is
        unreachable or not migrated.
        """
        cfg = self.config
        source = self._source if self._source is not None else self._build_source()
        self._schedule = self._make_schedule()
        if cfg.metrics_port:
            try:
                self._http = HttpEndpoint(cfg.metrics_port, self.metrics.registry, self.health)
            except OSError as exc:
                raise DynolineError(
                    f"--metrics-port {cfg.metrics_port}: cannot listen: {exc.strerror}"
                ) from None
        try:
            self._prepare_database()
        except psycopg.Error as exc:
            self.shutdown()
            raise DynolineError(f"preparing database {describe(self.url)}: {first_line(exc)}") from None
        except BaseException:
            self.shutdown()
            raise
        log.info(
            "streaming line %s shard %d/%d: %d units at %g Hz%s into %s (spool %s)",
            cfg.line,
            cfg.shard,
            cfg.shards,
            len(self.units),
            cfg.rate_hz,
            "" if cfg.pace else f", backfilling {cfg.ticks} ticks unpaced",
            describe(self.url),
            cfg.spool_path,
        )
        # Everything alive now (the parsed dataset, modules) lives for the whole run: keep it out of the
        # cyclic collector's full passes, which otherwise pause both loops for tens of milliseconds.
        gc.collect()
        gc.freeze()
        self._began = time.monotonic()
        self._threads = [
            threading.Thread(
                target=self._guard, args=(self._generate, source), name="generator", daemon=True
            ),
            threading.Thread(target=self._guard, args=(self._write,), name="writer", daemon=True),
        ]
        for t in self._threads:
            t.start()

    def _prepare_database(self) -> None:
        cfg = self.config
        assert self._schedule is not None
        self._conn = conn = connect(self.url)
        self._check_schema(conn)
        self._spool = Spool(cfg.spool_path)  # only now: a run that cannot start leaves no spool behind
        record_line(conn, cfg.line, cfg.retention)
        register_units(conn, cfg.line, self.units)
        conn.commit()
        self._ensure_partitions(conn, self._schedule.ts(0), self._schedule.ts(self._last_index()))
        self._state_conn = connect(self.url, autocommit=True)
        self._refresh_quarantine()
        self.metrics.quarantined.set(len(self.quarantined & self._unit_set))
        self.metrics.database_up.set(1)
        if self._spool.pending:
            log.info(
                "spool %s holds %d rows from a previous run: replaying them first",
                self._spool.path,
                self._spool.pending_rows,
            )
            self._replay(deadline=None, recovered=True)
        self._update_gauges()
        self.health.set_ready(True, "ok")

    def shutdown(self) -> None:
        """Stop generating, flush what is queued (to the database or the spool), close everything."""
        self._stop_generating.set()
        for t in self._threads:
            t.join()
        self._ended = time.monotonic()
        self._update_gauges()
        for conn in (self._conn, self._state_conn):
            if conn is not None:
                conn.close()
        self._conn = self._state_conn = None
        if self._spool is not None:
            self._spool.close()
        if self._http is not None:
            self._http.close()
            self._http = None
        self.health.set_ready(False, "stopped")

    def _guard(self, fn: Any, *args: Any) -> None:
        try:
            fn(*args)
        except BaseException as exc:  # a loop died: stop the run, surface it from run()
            log.exception("%s loop failed", threading.current_thread().name)
            self._errors.append(exc)
            self._stop_generating.set()
            if threading.current_thread().name == "writer":
                self.queue.abort()  # nobody will drain it: do not leave the generator blocked
        finally:
            self.health.retire(threading.current_thread().name)

    def _build_source(self) -> Source:
        from workloads.sources.factory import build_source

        return build_source(self.config.source, self.config.faults, self.config.rate_hz)

    def _check_schema(self, conn: Conn) -> None:
        have = current_version(conn)
        need = max(m.version for m in available())
        if have < need:
            raise DynolineError(
                f"database {describe(self.url)} has schema version {have}, dynoline needs {need}:"
                " run `dynoline db migrate` first"
            )

    def _make_schedule(self) -> Schedule:
        cfg = self.config
        if cfg.start is not None:
            start_us = to_micros(cfg.start)
        elif not cfg.pace and cfg.ticks is not None:
            start_us = backfill_start_us(datetime.now(UTC), cfg.ticks, cfg.rate_hz)
        else:
            start_us = to_micros(datetime.now(UTC))
        return Schedule(self.units, cfg.rate_hz, start_us)

    def _last_index(self) -> int:
        """The last sample index to pre-create partitions for: the whole run, or the next day ahead."""
        assert self._schedule is not None
        cfg = self.config
        if cfg.ticks is not None:
            return cfg.ticks * len(self.units) - 1
        return int(86_400 * cfg.rate_hz) * len(self.units)

    # ----------------------------------------------------------------- generator

    def _generate(self, source: Source) -> None:
        cfg = self.config
        units, n, line = self.units, len(self.units), cfg.line
        limit = cfg.ticks * n if cfg.ticks is not None else None
        chunk = max(1, min(CHUNK_ROWS, self.queue.max_rows))
        values_of = source.values if isinstance(source, ValuesSource) else _values_of(source)
        # tick 0 is now: the clock that paces and the clock that stamps start together
        mono0 = time.monotonic()
        self._schedule = sched = self._make_schedule()
        k = 0
        checked_tick = -1
        last_check = 0.0
        try:
            while not self._stop_generating.is_set():
                self.health.beat("generator")
                if cfg.paused:
                    self._stop_generating.wait(1.0)
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
                        self._stop_generating.wait(min(1.0, max(sched.offset(k) - elapsed, MIN_SLEEP)))
                        continue
                else:
                    due = k + chunk if limit is None else min(k + chunk, limit)
                    if due <= k:
                        break
                end = min(due, k + chunk)
                rows: list[Row] = []
                append = rows.append
                skipped = 0
                j = k
                while j < end:  # one tick's slice of units at a time: the per-row loop does only the row
                    tick, slot = divmod(j, n)
                    upto = min(end, j - slot + n)
                    if tick != checked_tick:
                        now = time.monotonic()
                        if cfg.pace or now - last_check >= NO_PACE_QUARANTINE_EVERY:
                            self._refresh_quarantine()
                            last_check = now
                        checked_tick = tick
                    quarantined = self.quarantined
                    for unit, ts in zip(units[slot : slot + upto - j], sched.stamps(j, upto), strict=True):
                        if unit in quarantined:
                            skipped += 1
                            continue
                        got = values_of(unit, tick)
                        if got is None:
                            continue
                        append((line, unit, got[0], ts, *got[1]))
                    j = upto
                born = mono0 + sched.offset(k) if cfg.pace else time.monotonic()
                k = end
                self._counts["skipped"] += skipped
                if rows:
                    blocked = self.queue.blocked_seconds
                    self.queue.put(rows, born, heartbeat=lambda: self.health.beat("generator"))
                    self.metrics.queue_blocked.inc(self.queue.blocked_seconds - blocked)
                    self._counts["generated"] += len(rows)
                    self.metrics.generated.inc(len(rows))
        except QueueAborted:
            pass
        finally:
            self._generator_done.set()
            self.queue.close()

    def _refresh_quarantine(self) -> None:
        """Read the line's quarantined units; keep the last known set while the database is away."""
        conn = self._state_conn
        if conn is None:
            self._reconnect_state_later()
            return
        try:
            found = quarantined_units(conn, self.config.line)
        except psycopg.Error:
            self._state_conn = None
            conn.close()
            self._reconnect_state_later()
            return
        if found != self.quarantined:
            mine = found & self._unit_set
            if mine != (self.quarantined & self._unit_set):
                log.info("quarantined units of this shard: %s", sorted(mine) or "none")
            self.quarantined = found
            self.metrics.quarantined.set(len(mine))

    def _reconnect_state_later(self) -> None:
        """Reconnect off the generator thread, so an outage never stalls pacing."""
        if not self._state_reconnecting.acquire(blocking=False):
            return

        def reconnect() -> None:
            try:
                delay = 0.0
                while not self._stop_generating.is_set():
                    if self._stop_generating.wait(delay):
                        return
                    try:
                        conn = connect(self.url, autocommit=True, timeout=2)
                    except DatabaseUnavailable:
                        delay = min(BACKOFF_MAX, max(BACKOFF_FIRST, delay * 2))
                        continue
                    if self._stop_generating.is_set():
                        conn.close()
                    else:
                        self._state_conn = conn
                    return
            finally:
                self._state_reconnecting.release()

        threading.Thread(target=reconnect, name="state-reconnect", daemon=True).start()

    # ----------------------------------------------------------------- writer

    def _write(self) -> None:
        while True:
            self.health.beat("writer")
            deadline = self.batcher.deadline()
            timeout = 0.1 if deadline is None else min(0.1, max(0.0, deadline - time.monotonic()))
            for born, rows in self.queue.get(timeout):
                for batch in self.batcher.add(rows, born):
                    self._deliver(batch)
            due = self.batcher.due(time.monotonic())
            if due:
                self._deliver(due)
            if self.queue.drained:
                rest = self.batcher.flush()
                if rest:
                    self._deliver(rest)
                break
            if self._spool is not None and self._spool.pending:
                self._replay(deadline=time.monotonic() + 0.2)
            self._update_gauges()
        # on the way out: replay what the database will take now, leave the rest for the next start
        if self._spool is not None and self._spool.pending and not self._errors:
            self._replay(deadline=time.monotonic() + self.config.shutdown_timeout, patient=False)

    def _deliver(self, batch: list[Row]) -> None:
        spool = self._spool
        assert spool is not None
        if not spool.pending and self._connected():
            conn = self._conn
            assert conn is not None
            began = time.monotonic()
            try:
                self._ensure_partitions_for(conn, batch)
                copy_rows(conn, batch)
                upsert_latest(conn, batch)  # same transaction: never disagrees
                conn.commit()
            except psycopg.Error as exc:
                self._db_failed(exc, "copy")
            else:
                self.metrics.batch_copy.observe(time.monotonic() - began)
                self._stored(batch)
                return
        self._spool_batch(batch)

    def _spool_batch(self, batch: list[Row]) -> None:
        spool = self._spool
        assert spool is not None
        while True:
            try:
                spool.append(batch)
                break
            except OSError as exc:
                # nowhere to put it: hold it (the generator blocks behind us) and retry, never drop it
                self.health.set_ready(False, f"spool {spool.path} unwritable: {exc}")
                log.error("cannot append to spool %s: %s; retrying", spool.path, exc)
                self.health.beat("writer")
                time.sleep(1.0)
        self.health.set_ready(True, "spooling: database unavailable" if self._conn is None else "ok")
        self._counts["spooled"] += len(batch)
        self.metrics.spooled.inc(len(batch))

    def _replay(self, deadline: float | None, *, recovered: bool = False, patient: bool = True) -> None:
        """Replay spooled batches oldest first until drained, the deadline, or a failure."""
        spool = self._spool
        assert spool is not None
        while spool.pending and (deadline is None or time.monotonic() < deadline):
            if patient and time.monotonic() < self._replay_after:
                return
            if not self._connected(force=not patient):
                return
            conn = self._conn
            assert conn is not None
            records, rows = spool.peek(self.config.replay_rows)
            began = time.monotonic()
            try:
                self._ensure_partitions_for(conn, rows)
                insert_rows_idempotent(conn, rows)
                upsert_latest(conn, rows)  # only moves forward: an old batch cannot undo
                conn.commit()
            except psycopg.Error as exc:
                self._db_failed(exc, "replay")
                self._replay_after = time.monotonic() + self._backoff
                self._backoff = min(BACKOFF_MAX, self._backoff * 2)
                return
            spool.confirm(records)
            self._backoff = BACKOFF_FIRST
            self.metrics.batch_replay.observe(time.monotonic() - began)
            if recovered:
                self._counts["recovered"] += len(rows)
                self.metrics.written.inc(len(rows))
            else:
                self._counts["replayed"] += len(rows)
                self.metrics.replayed.inc(len(rows))
                self._stored(rows)
            self._update_gauges()
            if not spool.pending:
                log.info("spool drained")

    def _stored(self, rows: Sequence[Row]) -> None:
        committed = time.time()
        # one commit instant for the whole batch: lags are counted per bucket from the sorted stamps
        stamps = sorted([row[3].timestamp() for row in rows])  # type: ignore[attr-defined]
        self.lag.record_stamps(committed, stamps)
        self._window.record_stamps(committed, stamps)
        self.metrics.lag.observe_batch(committed, stamps)
        self._counts["written"] += len(rows)
        self._counts["batches"] += 1
        self.metrics.written.inc(len(rows))

    def _connected(self, force: bool = False) -> bool:
        """Whether the writer has a connection, reconnecting (with backoff) when it has none."""
        if self._conn is not None:
            return True
        now = time.monotonic()
        if now < self._next_connect and not force:
            return False
        try:
            conn = connect(self.url, timeout=2)
        except DatabaseUnavailable as exc:
            self._backoff = min(BACKOFF_MAX, self._backoff * 2)
            self._next_connect = time.monotonic() + self._backoff * random.uniform(0.5, 1.0)
            log.debug("still no database: %s", exc)
            return False
        log.info("database %s reachable again", describe(self.url))
        self._conn = conn
        self._covered = None  # partitions may have changed while we were away
        self._backoff = BACKOFF_FIRST
        self.metrics.database_up.set(1)
        self.health.set_ready(True, "ok")
        return True

    def _db_failed(self, exc: psycopg.Error, path: str) -> None:
        self._counts["errors"] += 1
        self.metrics.write_errors.inc()
        conn = self._conn
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
        self._conn = None
        self._next_connect = time.monotonic() + self._backoff
        self.metrics.database_up.set(0)
        self.health.set_ready(True, "spooling: database unavailable")

    def _ensure_partitions_for(self, conn: Conn, rows: Sequence[Row]) -> None:
        stamps = [row[3] for row in rows]
        lo, hi = min(stamps), max(stamps)  # type: ignore[type-var]
        assert isinstance(lo, datetime) and isinstance(hi, datetime)
        covered = self._covered
        if covered is not None and covered[0] <= lo and hi <= covered[1]:
            return
        self._ensure_partitions(conn, lo, hi)

    def _ensure_partitions(self, conn: Conn, lo: datetime, hi: datetime) -> None:
        """Daily partitions from `lo`'s day to `PARTITION_DAYS_AHEAD` days past `hi` (and past now).

        Never reaches back before `lo`: retention drops old days on purpose and must not see them return.
        """
        ahead = max(hi, datetime.now(UTC)) + timedelta(days=PARTITION_DAYS_AHEAD)
        ensure_partitions(conn, lo, ahead)
        lo_utc = lo.astimezone(UTC)
        day_start = datetime(lo_utc.year, lo_utc.month, lo_utc.day, tzinfo=UTC)
        # the last created day is fully covered; stop trusting it a day early so renewal happens ahead
        self._covered = (day_start, ahead - timedelta(days=1))

    def _update_gauges(self) -> None:
        spool = self._spool
        if spool is not None:
            self.metrics.spool_rows.set(spool.pending_rows)
            self.metrics.spool_bytes.set(spool.pending_bytes)
        self.metrics.queue_rows.set(self.queue.rows)

    # ----------------------------------------------------------------- reporting

    @property
    def started(self) -> bool:
        """start() has finished: the loops are running (or have run)."""
        return self._began > 0

    @property
    def schedule(self) -> Schedule:
        """The run's sample schedule (fixed once generation starts): maps (unit, tick) to ts."""
        if self._schedule is None:
            raise RuntimeError("the simulator has not started")
        return self._schedule

    def progress(self) -> Progress:
        """Counters now, lag percentiles since the previous call."""
        window = self._window.take()
        spool = self._spool
        return Progress(
            elapsed_s=(self._ended or time.monotonic()) - self._began if self._began else 0.0,
            generated=self._counts["generated"],
            written=self._counts["written"],
            queue_rows=self.queue.rows,
            spool_rows=spool.pending_rows if spool is not None else 0,
            quarantined=len(self.quarantined & self._unit_set),
            database_up=self._conn is not None,
            lag_p50_s=window.percentile(0.5),
            lag_p99_s=window.percentile(0.99),
        )

    def stats(self) -> RunStats:
        c = self._counts
        return RunStats(
            line=self.config.line,
            shard=self.config.shard,
            units=len(self.units),
            elapsed_s=round(((self._ended or time.monotonic()) - self._began) if self._began else 0.0, 3),
            generated=c["generated"],
            written=c["written"],
            spooled=c["spooled"],
            replayed=c["replayed"],
            recovered=c["recovered"],
            skipped_quarantined=c["skipped"],
            write_errors=c["errors"],
            batches=c["batches"],
            spool_rows=self._spool.pending_rows if self._spool is not None else 0,
            queue_high_water=self.queue.high_water,
            queue_bound=self.queue.max_rows,
            queue_blocked_s=round(self.queue.blocked_seconds, 3),
            lag=self.lag.summary(),
        )
