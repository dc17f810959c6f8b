from __future__ import annotations

import math
import random

import pytest

from workloads.simulator.lag import LagHistogram


def exact(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[math.ceil(q * len(ordered)) - 1]


@pytest.mark.parametrize("q", [0.5, 0.9, 0.99, 1.0])
def test_percentiles_within_two_percent(q: float) -> None:
    rng = random.Random(7)
    values = [rng.lognormvariate(-3.5, 0.8) for _ in range(20_000)]
    h = LagHistogram()
    h.record(values)
    got = h.percentile(q)
    assert got is not None
    assert exact(values, q) <= got <= exact(values, q) * 1.021


def test_empty_and_tiny_values() -> None:
    h = LagHistogram()
    assert h.percentile(0.5) is None and h.mean() is None
    h.record([0.0, 0.00001, -0.001])
    assert h.count == 3
    assert h.percentile(1.0) == pytest.approx(0.00001)


def test_take_resets_and_returns_the_window() -> None:
    h = LagHistogram()
    h.record([0.01] * 10)
    window = h.take()
    assert window.count == 10 and window.percentile(0.5) == pytest.approx(0.01, rel=0.021)
    assert h.count == 0 and h.percentile(0.5) is None
    assert h.summary()["count"] == 0


def test_quantile_must_be_a_fraction() -> None:
    with pytest.raises(ValueError):
        LagHistogram().percentile(0)


@pytest.mark.parametrize("spread", [0.002, 0.05, 30.0])
def test_a_batch_by_its_stamps_counts_as_row_by_row(spread: float) -> None:
    """record_stamps (bucket bisection, or rows when the batch spans many buckets) = record of each lag."""
    rng = random.Random(11)
    committed = 1_780_000_000.25
    by_rows, by_stamps = LagHistogram(), LagHistogram()
    for size in (1, 7, 300, 5000):
        stamps = sorted(committed - 0.001 - rng.uniform(0, spread) for _ in range(size))
        by_rows.record([committed - t for t in stamps])
        by_stamps.record_stamps(committed, stamps)
    assert by_stamps.count == by_rows.count
    assert by_stamps.total == pytest.approx(by_rows.total, rel=1e-12)
    assert by_stamps.max == by_rows.max
    for q in (0.01, 0.25, 0.5, 0.9, 0.99, 1.0):
        assert by_stamps.percentile(q) == by_rows.percentile(q)
    assert by_stamps._counts == by_rows._counts


def test_an_empty_batch_records_nothing() -> None:
    h = LagHistogram()
    h.record_stamps(1_780_000_000.0, [])
    assert h.count == 0 and h.percentile(0.5) is None
