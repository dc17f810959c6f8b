"""The simulator's Prometheus metrics, in their own registry so several simulators can share a process."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

LAG_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 1, 2.5, 5, 10, 30, 60, 300)
BATCH_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
LABELS = ("line", "shard")


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
        self.batch_copy = batch.labels(*labels, "copy")
        self.batch_replay = batch.labels(*labels, "replay")
        self.lag = Histogram(
            "dynoline_simulator_lag_seconds",
            "From a sample's generation time (its ts) to its commit",
            LABELS,
            buckets=LAG_BUCKETS,
            registry=reg,
        ).labels(*labels)
        self.queue_rows = gauge("queue_rows", "Rows waiting between generator and writer")
        self.spool_rows = gauge("spool_depth_rows", "Rows in the spool waiting for replay")
        self.spool_bytes = gauge("spool_depth_bytes", "Bytes in the spool waiting for replay")
        self.quarantined = gauge("quarantined_units", "Units of this shard skipped because quarantined")
        self.database_up = gauge("database_up", "1 while the writer's last database operation succeeded")
