"""Percentiles with one meaning everywhere: the nearest rank, a value that was actually observed.

The benchmarks, the simulator's lag histogram and the evaluation report state percentiles; one
definition keeps "p99" the same thing in each of them. The q-quantile of n values is the value of
rank ceil(q·n) in ascending order (the smallest value with at least a q share of the values at or
below it), so a p99 of a handful of samples is their maximum, never an interpolation between two.
"""

from __future__ import annotations

import math
from collections.abc import Sequence


def rank(q: float, count: int) -> int:
    """The 1-based rank of the q-quantile (0 < q ≤ 1) among `count` ≥ 1 ordered values."""
    if not 0 < q <= 1:
        raise ValueError(f"quantile must be in (0, 1], got {q}")
    if count < 1:
        raise ValueError("percentile of no values")
    return max(1, math.ceil(q * count))


def percentile(values: Sequence[float], q: float) -> float | None:
    """The nearest-rank q-quantile of `values` (0 < q ≤ 1); None when there are none."""
    if not values:
        if not 0 < q <= 1:
            raise ValueError(f"quantile must be in (0, 1], got {q}")
        return None
    return sorted(values)[rank(q, len(values)) - 1]
