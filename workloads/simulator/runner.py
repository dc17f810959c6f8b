"""The simulator: a paced generator thread, a writer thread, and the spool between them and an outage.

`Simulator(config, url).run(stop_event)` streams until the event is set (or `duration`/`ticks` run
out) and returns what happened; the CLI, the demo and `dynoline bench stream` all drive it this way.

The Simulator only directs: it checks the database, then runs a `Generator` (generator.py) and the
writer's `Delivery` (delivery.py: COPY, spool, replay) on a thread each, with a `QuarantineReader`
(quarantine.py) and the `RowQueue` between them, and reports their `Counts` (stats.py).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import psycopg
from prometheus_client import CollectorRegistry

from workloads.errors import DynolineError
from workloads.sources import Source
from workloads.store.connection import connect, first_line
from workloads.store.dsn import describe
from workloads.store.migrate import require_latest
from workloads.store.unit_state import record_line, register_units
from workloads.store.writer import catch_up_latest

from .batcher import Batcher
from .config import SimulatorConfig
from .delivery import Delivery
from .generator import Generator
from .health import Health, HttpEndpoint
from .latest import LatestKeeper
from .metrics import SimulatorMetrics
from .pacing import Schedule, horizon_index, run_start_us, shard_units
from .quarantine import QuarantineReader
from .rowqueue import RowQueue
from .spool import Spool
from .stats import Counts, Progress, RunStats

__all__ = ["Progress", "RunStats", "Simulator"]

log = logging.getLogger(__name__)

Conn = psycopg.Connection[tuple[object, ...]]

JOIN_GRACE_S = 10.0  # past shutdown_timeout: one more batch commit or connect attempt


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
        self._source = source
        self.metrics = SimulatorMetrics(config.line, config.shard, registry)
        self.health = Health()
        self.queue = RowQueue(config.queue_bound)
        self.batcher = Batcher(config.batch_rows, config.max_latency)
        self.counts = Counts()
        self._stop_generating = threading.Event()
        self.quarantine = QuarantineReader(
            url, config.line, frozenset(self.units), self.metrics, self._stop_generating
        )
        self._writer_done = threading.Event()
        self.latest = (
            LatestKeeper(url, config.latest_interval, self.metrics, self.health, self._writer_done)
            if config.latest_interval > 0
            else None
        )
        self.delivery = Delivery(
            config, url, self.metrics, self.health, self.counts, self._stop_generating, self.latest
        )
        self._threads: list[threading.Thread] = []
        self._errors: list[BaseException] = []
        self._http: HttpEndpoint | None = None
        self._began = 0.0
        self._ended: float | None = None
        self._generator_done = threading.Event()
        self._schedule: Schedule | None = None

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
        backfill = "" if cfg.pace else f", backfilling {cfg.ticks} ticks unpaced"
        log.info(
            "streaming line %s shard %d/%d: %d units at %g Hz%s into %s (spool %s)",
            cfg.line,
            cfg.shard,
            cfg.shards,
            len(self.units),
            cfg.rate_hz,
            backfill,
            describe(self.url),
            cfg.spool_path,
        )
        self._began = time.monotonic()
        self._threads = [
            threading.Thread(
                target=self._guard, args=(self._generate, source), name="generator", daemon=True
            ),
            threading.Thread(target=self._guard, args=(self._write,), name="writer", daemon=True),
        ]
        if self.latest is not None:
            self._threads.append(
                threading.Thread(target=self._guard, args=(self.latest.run,), name="latest", daemon=True)
            )
        for t in self._threads:
            t.start()

    def _prepare_database(self) -> None:
        cfg = self.config
        assert self._schedule is not None
        delivery = self.delivery
        delivery.conn = conn = connect(self.url)
        require_latest(conn, self.url)
        delivery.spool = spool = Spool(cfg.spool_path)  # only now: a failed start leaves no spool behind
        record_line(conn, cfg.line, cfg.retention)
        register_units(conn, cfg.line, self.units)
        caught_up = catch_up_latest(conn, cfg.line, self.units)  # a killed run's last batches
        conn.commit()
        if caught_up:
            log.info(
                "telemetry_latest caught up for %d units from the previous run's last batches", caught_up
            )
        last = horizon_index(len(self.units), cfg.rate_hz, cfg.ticks)
        delivery.ensure_partitions(conn, self._schedule.ts(0), self._schedule.ts(last))
        self.quarantine.open()
        self.metrics.database_up.set(1)
        if spool.pending:
            log.info(
                "spool %s holds %d rows from a previous run: replaying them first",
                spool.path,
                spool.pending_rows,
            )
            delivery.replay(deadline=None, recovered=True)
        self._update_gauges()
        self.health.set_ready(True, "ok")

    def shutdown(self) -> None:
        """Stop generating, flush what is queued (to the database or the spool), close everything.

        Bounded: the writer's last replay ends at `shutdown_timeout`; a loop still running after that
        and a grace period is left behind (daemon threads) with an error line, never waited for.
        """
        self._stop_generating.set()
        until = time.monotonic() + self.config.shutdown_timeout + JOIN_GRACE_S
        for t in self._threads:
            if t.name == "latest":
                self._writer_done.set()  # even past a writer left behind: carry over what it committed
            t.join(max(0.0, until - time.monotonic()))
            if t.is_alive():
                log.error("the %s loop did not stop in time; leaving it behind", t.name)
                self.queue.abort()  # the other loop must not wait on it
        self._ended = time.monotonic()
        if self.counts.lost:
            log.error("%d samples lost: neither the database nor the spool took them", self.counts.lost)
        self._update_gauges()
        self.delivery.close()
        if self.latest is not None:
            self.latest.close()
        self.quarantine.close()
        if self._http is not None:
            self._http.close()
            self._http = None
        self.health.set_ready(False, "stopped")

    def _guard(self, fn: Callable[..., None], *args: Any) -> None:
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

    def _generate(self, source: Source) -> None:
        # tick 0 is now: the clock that paces and the clock that stamps start together
        mono0 = time.monotonic()
        self._schedule = sched = self._make_schedule()
        loop = Generator(
            self.config,
            self.units,
            self.queue,
            self.quarantine,
            self.counts,
            self.metrics,
            self.health,
            self._stop_generating,
        )
        try:
            loop.run(source, sched, mono0)
        finally:
            self._generator_done.set()

    def _write(self) -> None:
        try:
            self.delivery.write_loop(self.queue, self.batcher, failed=lambda: bool(self._errors))
        finally:
            self._writer_done.set()  # the latest keeper carries over what was committed, then ends

    def _build_source(self) -> Source:
        from workloads.sources.factory import build_source

        return build_source(self.config.source, self.config.faults, self.config.rate_hz)

    def _make_schedule(self) -> Schedule:
        cfg = self.config
        start_us = run_start_us(cfg.start, cfg.pace, cfg.ticks, cfg.rate_hz, datetime.now(UTC))
        return Schedule(self.units, cfg.rate_hz, start_us)

    def _update_gauges(self) -> None:
        self.delivery.update_gauges()
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

    def _elapsed(self) -> float:
        return ((self._ended or time.monotonic()) - self._began) if self._began else 0.0

    def progress(self) -> Progress:
        """Counters now, lag percentiles since the previous call."""
        window = self.delivery.window.take()
        return Progress(
            elapsed_s=self._elapsed(),
            generated=self.counts.generated,
            written=self.counts.written,
            queue_rows=self.queue.rows,
            spool_rows=self.delivery.spool_rows,
            quarantined=self.quarantine.mine,
            database_up=self.delivery.conn is not None,
            lag_p50_s=window.percentile(0.5),
            lag_p99_s=window.percentile(0.99),
        )

    def stats(self) -> RunStats:
        c = self.counts
        return RunStats(
            line=self.config.line,
            shard=self.config.shard,
            units=len(self.units),
            elapsed_s=round(self._elapsed(), 3),
            generated=c.generated,
            written=c.written,
            spooled=c.spooled,
            replayed=c.replayed,
            recovered=c.recovered,
            skipped_quarantined=c.skipped,
            write_errors=c.errors,
            batches=c.batches,
            lost=c.lost,
            spool_rows=self.delivery.spool_rows,
            queue_high_water=self.queue.high_water,
            queue_bound=self.queue.max_rows,
            queue_blocked_s=round(self.queue.blocked_seconds, 3),
            lag=self.delivery.lag.summary(),
        )
