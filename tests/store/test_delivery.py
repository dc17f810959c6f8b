"""The writer's delivery path driven directly, one call at a time: no threads, a real PostgreSQL."""

from __future__ import annotations

import os
import threading
from datetime import timedelta
from pathlib import Path

import psycopg

from tests.store.epoch import EPOCH
from workloads.simulator.config import SimulatorConfig
from workloads.simulator.delivery import Delivery
from workloads.simulator.health import Health
from workloads.simulator.metrics import SimulatorMetrics
from workloads.simulator.spool import Spool
from workloads.simulator.stats import Counts
from workloads.store.connection import connect
from workloads.store.embedded import free_port

T0 = EPOCH + timedelta(hours=23, minutes=59, seconds=59)  # a batch that straddles midnight


def batch(n: int, line: str = "d") -> list[tuple[object, ...]]:
    return [(line, u, 1, T0 + timedelta(seconds=u), 0.0, 0.0, 100.0, *[1.0] * 21) for u in range(n)]


def delivery(url: str, spool: Path, stopping: threading.Event) -> Delivery:
    config = SimulatorConfig(line="d", units=4, rate_hz=1.0, metrics_port=0, spool=spool)
    d = Delivery(config, url, SimulatorMetrics("d", 0), Health(), Counts(), stopping)
    d.spool = Spool(spool)
    return d


def gauge(d: Delivery, name: str) -> float | None:
    return d.metrics.registry.get_sample_value(f"dynoline_simulator_{name}", {"line": "d", "shard": "0"})


def test_a_batch_goes_to_the_database_with_the_partitions_it_needs(tmp_path: Path, database_url: str) -> None:
    d = delivery(database_url, tmp_path / "d.spool", threading.Event())
    d.conn = connect(database_url)
    try:
        d.deliver(batch(4))
    finally:
        d.close()
    assert (d.counts.written, d.counts.batches, d.counts.spooled) == (4, 1, 0)
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT count(*) FROM telemetry WHERE line = 'd'").fetchone() == (4,)


def test_stopping_with_no_database_and_a_full_spool_drops_the_batch_and_says_so(tmp_path: Path) -> None:
    spool = tmp_path / "full.spool"
    os.symlink("/dev/full", spool)  # every append fails with ENOSPC, whoever runs it (root included)
    stopping = threading.Event()
    stopping.set()
    d = delivery(f"postgresql://postgres@127.0.0.1:{free_port()}/x", spool, stopping)
    try:
        d.deliver(batch(3))
        d.deliver(batch(2))
    finally:
        d.close()
    assert (d.counts.lost, d.counts.spooled, d.counts.written) == (5, 0, 0)
    assert d.health.ready() == (False, f"spool {spool} unwritable: No space left on device")
    assert gauge(d, "spool_writable") == 0
    assert gauge(d, "samples_lost_total") == 5
