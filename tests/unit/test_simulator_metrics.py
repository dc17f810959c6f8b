from __future__ import annotations

import random

import pytest
from prometheus_client import CollectorRegistry, Histogram, generate_latest

from workloads.simulator.metrics import LABELS, LAG_BUCKETS, SimulatorMetrics


def lag_lines(registry: CollectorRegistry) -> list[str]:
    """The lag histogram's exposition, without the creation time (which differs between the two)."""
    text = generate_latest(registry).decode()
    return [line for line in text.splitlines() if "lag_seconds" in line and "_created{" not in line]


def test_lag_by_batch_exports_what_a_histogram_fed_row_by_row_exports() -> None:
    metrics = SimulatorMetrics("l1", 3)
    reference = CollectorRegistry()
    histogram = Histogram(
        "dynoline_simulator_lag_seconds",
        "From a sample's generation time (its ts) to its commit",
        LABELS,
        buckets=LAG_BUCKETS,
        registry=reference,
    ).labels("l1", "3")
    rng = random.Random(5)
    for batch in range(30):
        committed = 1_780_000_000.0 + batch
        stamps = sorted(committed - rng.lognormvariate(-3, 1.5) for _ in range(rng.randrange(1, 400)))
        metrics.lag.observe_batch(committed, stamps)
        for t in stamps:
            histogram.observe(committed - t)
    ours, theirs = lag_lines(metrics.registry), lag_lines(reference)
    assert [line.rsplit(" ", 1)[0] for line in ours] == [line.rsplit(" ", 1)[0] for line in theirs]
    for a, b in zip(ours, theirs, strict=True):
        if a.startswith("#"):
            assert a == b
        else:
            assert float(a.rsplit(" ", 1)[1]) == pytest.approx(float(b.rsplit(" ", 1)[1]), rel=1e-9)
    assert any('le="+Inf",line="l1",shard="3"' in line for line in ours)
    assert "dynoline_simulator_lag_seconds_created{" in generate_latest(metrics.registry).decode()
