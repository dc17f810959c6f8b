"""One percentile meaning: the benchmarks, the lag histogram and the evaluation report agree."""

from __future__ import annotations

import pytest

from workloads.bench.harness import percentile as bench_percentile
from workloads.quantile import percentile, rank
from workloads.simulator.lag import LagHistogram


def test_nearest_rank_is_an_observed_value() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 0.5) == 50.0
    assert percentile(values, 0.95) == 95.0
    assert percentile(values, 1.0) == 100.0
    assert percentile([3.0, 1.0], 0.99) == 3.0
    assert percentile([], 0.5) is None
    assert rank(0.5, 4) == 2 and rank(0.01, 4) == 1


@pytest.mark.parametrize("q", [0.0, -0.1, 1.5])
def test_a_quantile_outside_0_1_is_refused(q: float) -> None:
    with pytest.raises(ValueError, match="quantile must be in"):
        percentile([1.0], q)
    with pytest.raises(ValueError, match="quantile must be in"):
        percentile([], q)


def test_the_lag_histogram_and_the_benchmarks_state_the_same_percentile() -> None:
    lags = [0.001 * k for k in (5, 1, 9, 3, 7, 2, 8, 4, 6, 10)]
    h = LagHistogram()
    h.record(lags)
    for q in (0.1, 0.5, 0.9, 0.99):
        exact = percentile(lags, q)
        assert exact is not None and bench_percentile(lags, q) == exact
        assert h.percentile(q) == pytest.approx(exact, rel=0.021)  # within its 2% bucket


def test_the_benchmarks_refuse_no_values() -> None:
    with pytest.raises(ValueError, match="no values"):
        bench_percentile([], 0.5)
