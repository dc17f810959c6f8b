"""The simulator's Prometheus metrics, in their own registry so several simulators can share a process."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import HistogramMetricFamily
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from .lag import at_most, lag_sum

LAG_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 1, 2.5, 5, 10, 30, 60, 300)
BATCH_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
LABELS = ("line", "shard")
_le: Callable[[float], str] = floatToGoString  # how prometheus-client spells a bucket edge (untyped there)


class SimulatorMetrics:
    def __init__(self, line: str, shard: int, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        reg = self.registry
        labels = (line, str(shard))

        def counter(name: str, doc: str) -> Counter:
            return Counter(f"dynoline_simulator_{name}", doc, LABELS, registry=reg).labels(*labels)

        def gauge(name: str, doc: str) -> Gauge:
            return Gauge(f"dynoline_simulator_{name}", doc, LABELS, registry=reg).labels(*labels)

        self.generated = counter("samples_generated_total", "Samples generated (quarantined units excluded)")
        self.written = counter(
            "samples_written_total", "Samples committed to PostgreSQL, directly or by replay"
        )
        self.spooled = counter("samples_spooled_total", "Samples appended to the local spool")
        self.replayed = counter("samples_replayed_total", "Spooled samples committed by replay")
        self.write_errors = counter(
            "write_errors_total", "Batches the database failed to take (then spooled)"
        )
        self.queue_blocked = counter(
            "queue_blocked_seconds_total", "Time the generator waited on a full queue (backpressure)"
        )
        batch = Histogram(
            "dynoline_simulator_batch_duration_seconds",
            "Time to write and commit one batch",
            (*LABELS, "path"),
            buckets=BATCH_BUCKETS,
            registry=reg,
        )
        self.latest_flush = Histogram(
            "dynoline_simulator_latest_flush_seconds",
            "Time to carry the interval's committed batches into telemetry_latest (latestInterval > 0)",
            LABELS,
            buckets=BATCH_BUCKETS,
            registry=reg,
        ).labels(*labels)
        self.batch_copy = batch.labels(*labels, "copy")
        self.batch_replay = batch.labels(*labels, "replay")
        self.lag = LagBuckets(
            "dynoline_simulator_lag_seconds",
            "From a sample's generation time (its ts) to its commit",
            dict(zip(LABELS, labels, strict=True)),
            LAG_BUCKETS,
        )
        reg.register(self.lag)
        self.queue_rows = gauge("queue_rows", "Rows waiting between generator and writer")
        self.spool_rows = gauge("spool_depth_rows", "Rows in the spool waiting for replay")
        self.spool_bytes = gauge("spool_depth_bytes", "Bytes in the spool waiting for replay")
        self.quarantined = gauge("quarantined_units", "Units of this shard skipped because quarantined")
        self.database_up = gauge("database_up", "1 while the writer's last database operation succeeded")
        self.spool_writable = gauge("spool_writable", "0 while appends to the spool fail (a full volume)")
        self.spool_writable.set(1)
        self.latest_pending_units = gauge(
            "latest_pending_units", "Units whose newest committed sample is not yet in telemetry_latest"
        )
        # No child until a latest keeper asks for it: with latestInterval 0s the table is kept in the
        # writer's transaction, and a 0 here would read as "behind since 1970" to the stale alert.
        self._labels = labels
        self._latest_caught_up = Gauge(
            "dynoline_simulator_latest_caught_up_timestamp_seconds",
            "When telemetry_latest last held all its latest keeper had folded (latestInterval > 0)",
            LABELS,
            registry=reg,
        )
        self.lost = counter(
            "samples_lost_total", "Samples dropped on exit: the database was away and the spool unwritable"
        )

    def latest_caught_up(self) -> Gauge:
        """The caught-up timestamp of this shard, exported from the first call on (the keeper's)."""
        return self._latest_caught_up.labels(*self._labels)


class LagBuckets(Collector):
    """A Prometheus histogram fed a whole committed batch at a time.

    `Histogram.observe` costs a few microseconds per row in Python; a batch's bucket counts come from
    bisecting its sorted timestamps once per bucket instead (see `lag.at_most`). Exported exactly as a
    `Histogram` with these labels and buckets would be (`_bucket`, `_count`, `_sum`, `_created`).
    """

    def __init__(
        self, name: str, documentation: str, labels: dict[str, str], buckets: Sequence[float]
    ) -> None:
        self.name = name
        self.documentation = documentation
        self._labels = labels
        self._edges = tuple(float(b) for b in buckets)
        self._le = [_le(b) for b in self._edges]
        self._at_most = [0] * len(self._edges)  # cumulative, as exported
        self._count = 0
        self._sum = 0.0
        self._created = time.time()
        self._lock = threading.Lock()

    def observe_batch(self, committed: float, stamps: Sequence[float]) -> None:
        """Lags `committed - t` of a batch whose generation times `stamps` are sorted ascending."""
        n = len(stamps)
        if not n:
            return
        counts = at_most(committed, stamps, self._edges)
        total = lag_sum(committed, stamps)
        with self._lock:
            self._at_most = [a + b for a, b in zip(self._at_most, counts, strict=True)]
            self._count += n
            self._sum += total

    def collect(self) -> Iterator[HistogramMetricFamily]:
        with self._lock:
            cumulative, count, total = list(self._at_most), self._count, self._sum
        family = HistogramMetricFamily(self.name, self.documentation, labels=list(self._labels))
        family.add_metric(
            list(self._labels.values()),
            [*zip(self._le, cumulative, strict=True), ("+Inf", count)],
            total,
        )
        family.add_sample(f"{self.name}_created", self._labels, self._created)
        yield family

    def describe(self) -> Iterator[HistogramMetricFamily]:
        yield HistogramMetricFamily(self.name, self.documentation, labels=list(self._labels))
