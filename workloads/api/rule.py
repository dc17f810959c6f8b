"""Sentinel rules: a declared anomaly check on one line, free of Kubernetes details.

`Rule` is what `dynoline sentinel run --rules FILE` reads; `SentinelRuleSpec` is the same rule as the
spec of a SentinelRule custom resource (its name comes from metadata, its line from `lineRef`).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from workloads.api.common import DnsName, Duration, Finite, Model
from workloads.catalog import SENSOR_NAMES, sensor
from workloads.errors import DynolineError

Comparison = Literal[">", ">=", "<", "<="]
Severity = Literal["critical", "warning", "info"]
SensorName = Annotated[
    str, Field(min_length=1, max_length=32, description=f"one of {', '.join(SENSOR_NAMES)}")
]
RuleName = Annotated[str, Field(min_length=1, max_length=63, pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")]


class _SensorCondition(Model):
    sensor: SensorName

    @field_validator("sensor")
    @classmethod
    def _known_sensor(cls, value: str) -> str:
        try:
            return sensor(value).name  # canonical C-MAPSS name
        except DynolineError as exc:
            raise ValueError(str(exc)) from None


class ThresholdCondition(_SensorCondition):
    """Fires on any sample beyond the value."""

    type: Literal["threshold"]
    op: Comparison
    value: Finite


class SustainedCondition(_SensorCondition):
    """Fires when the threshold holds for a duration, or for k of the last n samples."""

    type: Literal["sustained"]
    op: Comparison
    value: Finite
    for_: Duration | None = Field(None, alias="for")
    k: int | None = Field(None, ge=1, le=10_000)
    n: int | None = Field(None, ge=1, le=10_000)

    @model_validator(mode="after")
    def _one_window(self) -> SustainedCondition:
        by_count = self.k is not None or self.n is not None
        if by_count == (self.for_ is not None):
            raise ValueError(
                "sustained needs either 'for' (a duration) or 'k' and 'n' (k of the last n samples)"
            )
        if by_count and (self.k is None or self.n is None or self.k > self.n):
            raise ValueError("sustained needs both k and n with k <= n")
        return self


class RateOfChangeCondition(_SensorCondition):
    """Fires when the sensor changes by more than `value` within `window` (last minus first)."""

    type: Literal["rateOfChange"]
    window: Duration
    op: Comparison = ">"
    value: Finite


class DriftCondition(_SensorCondition):
    """Fires when a unit departs from its own early-life baseline (its first `baselineSamples`)."""

    type: Literal["drift"]
    method: Literal["zscore", "ewma", "cusum"] = "ewma"
    baseline_samples: int = Field(30, ge=5, le=10_000)
    threshold: Finite = Field(
        gt=0, le=1000, description="z-score (zscore, ewma) or decision interval h (cusum)"
    )
    direction: Literal["up", "down", "both"] = "both"
    alpha: Finite = Field(0.1, gt=0, le=1, description="EWMA smoothing factor")
    slack: Finite = Field(0.5, ge=0, le=100, description="CUSUM allowance k, in baseline standard deviations")


class HealthIndexCondition(Model):
    """Fires when a learned multi-sensor degradation score crosses `value`."""

    type: Literal["healthIndex"]
    model: str = Field(
        min_length=1, max_length=512, description="path of the model file from `dynoline sentinel fit`"
    )
    op: Comparison = ">"
    value: Finite
    smoothing: int = Field(5, ge=1, le=1000, description="moving-average window, in samples")


Condition = Annotated[
    ThresholdCondition | SustainedCondition | RateOfChangeCondition | DriftCondition | HealthIndexCondition,
    Field(discriminator="type"),
]


class Clear(Model):
    """When an open alert resolves: the value is back on this side of `value` (hysteresis)."""

    op: Comparison
    value: Finite


class RuleBody(Model):
    """What a rule checks and does; shared by file rules and the custom resource spec."""

    units: list[Annotated[int, Field(ge=0, le=100_000)]] | None = Field(
        None, max_length=10_000, description="unit ids to check; all units of the line when absent"
    )
    severity: Severity = "warning"
    condition: Condition
    clear: Clear | None = None
    action: Literal["none", "quarantine"] = "none"


class Rule(RuleBody):
    """A rule as `dynoline sentinel run` reads it from a file."""

    name: RuleName
    line: DnsName


class LineRef(Model):
    name: DnsName


class SentinelRuleSpec(RuleBody):
    """The SentinelRule custom resource's spec."""

    line_ref: LineRef
    schedule: str = Field(
        "*/1 * * * *", min_length=9, max_length=100, description="cron schedule of the CronJob"
    )

    def to_rule(self, name: str) -> Rule:
        body = self.model_dump(by_alias=True, exclude={"line_ref", "schedule"})
        return Rule.model_validate({**body, "name": name, "line": self.line_ref.name})
