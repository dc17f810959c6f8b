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
