"""The remaining-life estimator: an exponential degradation fit of the health index, extrapolated to 1."""

from __future__ import annotations

import math

import pytest
from pydantic import ValidationError

from workloads.api.rule import RulCondition, Rule, condition_bound
from workloads.sentinel.rul import OFFSET, estimate, z_value


def test_an_exact_exponential_is_extrapolated_to_the_failure_level() -> None:
    # h + 0.5 = 0.6 * exp(0.02 c): reaches 1.5 at c = ln(2.5) / 0.02 = 45.8, 15.8 cycles after cycle 30;
    # the level there, h = 0.593, stands for 125 * (1 - 0.593) = 50.9 cycles; the estimate is their mean
    cycles = [float(c) for c in range(1, 31)]
    scores = [0.6 * math.exp(0.02 * c) - OFFSET for c in cycles]
    got = estimate(cycles, scores, horizon=125)
    assert got is not None
    trend, level = math.log(2.5) / 0.02 - 30, 125 * (1 - scores[-1])
    assert got.cycles == pytest.approx((trend + level) / 2, abs=1e-6)
    assert got.low == pytest.approx(got.cycles, abs=1e-6) and got.high == pytest.approx(got.cycles, abs=1e-6)


def test_noise_widens_the_interval_around_the_estimate() -> None:
    cycles = [float(c) for c in range(1, 31)]
    scores = [0.6 * math.exp(0.02 * c) - OFFSET + 0.05 * math.sin(3 * c) for c in cycles]
    got = estimate(cycles, scores, horizon=125, confidence=0.9)
    assert got is not None and got.low < got.cycles < got.high
    wider = estimate(cycles, scores, horizon=125, confidence=0.99)
    assert wider is not None and wider.low < got.low and wider.high > got.high


def test_a_flat_or_failed_trajectory_and_too_few_samples() -> None:
    flat = estimate([1.0, 2, 3, 4, 5, 6], [0.1, 0.12, 0.08, 0.1, 0.11, 0.09], horizon=125)
    assert flat is not None and flat.high == pytest.approx((125 + 125 * (1 - 0.1)) / 2, abs=1.0)
    assert 0 < flat.low <= flat.cycles <= flat.high
    failed = estimate([1.0, 2, 3, 4, 5], [1.1, 1.2, 1.3, 1.4, 1.5], horizon=125)
    assert failed is not None and failed.cycles == 0.0
    assert estimate([1.0, 2, 3, 4], [0.1, 0.2, 0.3, 0.4], horizon=125) is None
    assert z_value(0.9) == pytest.approx(1.6449, abs=1e-4)


def test_the_rul_condition_is_strict() -> None:
    base = {"name": "r", "line": "l", "severity": "critical"}
    rule = Rule.model_validate(
        {**base, "condition": {"type": "rul", "model": "fd001-health", "op": "<=", "value": 30}}
    )
    assert isinstance(rule.condition, RulCondition)
    assert condition_bound(rule.condition) == ("<=", 30) and rule.condition.window == "30s"
    for bad in ({"value": 30}, {"op": "<=", "value": "30"}, {"op": "<=", "value": 30, "confidence": 1.5}):
        with pytest.raises(ValidationError):
            Rule.model_validate({**base, "condition": {"type": "rul", "model": "fd001-health", **bad}})
    cond = {"type": "rul", "model": "fd001-health", "op": "<=", "value": 30}
    with pytest.raises(ValidationError, match="hysteresis"):
        Rule.model_validate({**base, "condition": cond, "clear": {"op": "<", "value": 40}})
