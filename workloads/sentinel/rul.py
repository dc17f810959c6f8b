"""Remaining useful life from a health-index trajectory: an exponential degradation fit, extrapolated.

The exponential degradation model is the one C-MAPSS was simulated with (Saxena et al. 2008, "Damage
propagation modeling for aircraft engine run-to-failure simulation", PHM'08: damage grows as an
exponential of time) and the usual health-index extrapolation of prognostics (Gebraeel et al. 2005,
"Residual-life distributions from component degradation signals"; Wang et al. 2008, "A similarity-based
prognostics approach for remaining useful life estimation of engineered systems", PHM'08, fit
exponential curves to a health index). Here the health index `h` (0 healthy … 1 failed) over the recent
cycles is fitted by least squares as `ln(h + offset) = a + b * cycle`. Two readings of that fit are
averaged: the cycles until the fitted curve reaches the failure level 1 (the trend), and the life the
fitted level itself stands for (the index was trained on the target 1 - RUL/knee, so a level h means
knee * (1 - h) cycles). The trend alone is noisy while degradation is slow, the level alone ignores the
trend; out of sample on FD001 train (5 folds) their mean has RMSE 21 cycles against 27-28 for either
alone. The interval comes from the slope's standard error (normal quantiles) and so covers the trend's
uncertainty only.

`estimate` is the reference the SQL twin (`kinds.rul`) must match; `evaluate` and `sentinel fit` use it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist

OFFSET = 0.5  # keeps ln(h + offset) defined for the slightly negative scores of healthy units
FLOOR = 1e-3  # smallest h + offset taken to the logarithm
FAILURE = 1.0  # the health index at failure (its training target)
MIN_SAMPLES = 5


@dataclass(frozen=True)
class Estimate:
    """Remaining cycles (point, lower, upper), each within 0 … horizon."""

    cycles: float
    low: float
    high: float


def z_value(confidence: float) -> float:
    """The normal quantile of a two-sided `confidence` interval (0.9 → 1.645)."""
    return NormalDist().inv_cdf(0.5 + confidence / 2)


def log_failure() -> float:
    """The failure level on the fitted (logarithmic) scale."""
    return math.log(FAILURE + OFFSET)


def remaining(level: float, slope: float, horizon: float) -> float:
    """Cycles until `level` (on the log scale) grows at `slope` to the failure level, within 0 … horizon."""
    target = log_failure()
    if level >= target:
        return 0.0
    if slope <= 0:
        return horizon
    return min(horizon, (target - level) / slope)


def calibrated(level: float, horizon: float) -> float:
    """The remaining life the health index itself stands for: it was fitted to 1 - RUL / knee, so the
    fitted level inverts to knee * (1 - h) (the horizon is the knee)."""
    return min(horizon, max(0.0, horizon * (1.0 - (math.exp(level) - OFFSET))))


def estimate(
    cycles: Sequence[float], scores: Sequence[float], *, horizon: float, confidence: float = 0.9
) -> Estimate | None:
    """The remaining-life estimate from paired (cycle, health index) samples; None with too few."""
    n = len(cycles)
    if n != len(scores):
        raise ValueError("cycles and scores must pair up")
    if n < MIN_SAMPLES:
        return None
    ys = [math.log(max(h + OFFSET, FLOOR)) for h in scores]
    mx, my = sum(cycles) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in cycles)
    if sxx == 0:
        return None
    sxy = sum((x - mx) * (y - my) for x, y in zip(cycles, ys, strict=True))
    syy = sum((y - my) ** 2 for y in ys)
    slope = sxy / sxx
    se = math.sqrt(max(0.0, syy - slope * sxy) / (n - 2) / sxx)
    level = my + slope * (max(cycles) - mx)  # the fitted curve at the newest cycle
    z = z_value(confidence)
    known = calibrated(level, horizon)
    return Estimate(
        (remaining(level, slope, horizon) + known) / 2,
        (remaining(level, slope + z * se, horizon) + known) / 2,
        (remaining(level, slope - z * se, horizon) + known) / 2,
    )
