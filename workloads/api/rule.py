"""Sentinel rules: a declared anomaly check on one line, free of Kubernetes details.

`Rule` is what `dynoline sentinel run --rules FILE` reads; `SentinelRuleSpec` is the same rule as the
spec of a SentinelRule custom resource (its name comes from metadata, its line from `lineRef`).

Every condition reduces to a *statistic* compared with a bound:

* `threshold`, `sustained`: the sensor value of each new sample;
* `rateOfChange`: the least-squares change of the sensor across the trailing `window`;
* `drift`: the z-score of the trailing-`window` mean against the unit's own early-life baseline,
  signed so that a larger value is always a larger deviation in the watched `direction`;
* `healthIndex`: the trailing-`window` mean of a learned multi-sensor degradation score;
* `rul`: the lower bound of the unit's remaining useful life (cycles), extrapolated from an
  exponential degradation curve fitted to the health index over the trailing `window`.

`clear` (hysteresis) compares the same statistic, so it must sit on the non-firing side of the bound.
The models are strict: unknown fields, unknown sensors, numbers given as strings, NaN and absurd
windows are rejected before anything reaches the database.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, ConfigDict, Field, field_validator, model_validator

from workloads.api import cel
from workloads.api.common import DURATION_PATTERN, SECONDS_CEL, DnsName, Duration, Finite, Model, seconds
from workloads.catalog import SENSOR_NAMES, SENSORS, sensor
from workloads.errors import DynolineError

Comparison = Literal[">", ">=", "<", "<="]
Severity = Literal["critical", "warning", "info"]
SEVERITIES: tuple[Severity, ...] = ("critical", "warning", "info")  # most severe first
SensorName = Annotated[
    str, Field(min_length=1, max_length=32, description=f"one of {', '.join(SENSOR_NAMES)}")
]
RuleName = Annotated[str, Field(min_length=1, max_length=63, pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")]

MIN_WINDOW_SECONDS = 1.0
MAX_WINDOW_SECONDS = 86_400.0  # a day: at 1 Hz that is already 86,400 samples per unit and window

# Every spelling `workloads.catalog.sensor()` accepts (case-insensitive, trimmed).
_SENSOR_SPELLINGS = sorted(
    {alias.lower() for s in SENSORS for alias in (s.name, s.column, f"sensor_{s.index}", f"s{s.index}")}
)
# What the CronJob controller can parse; refused at apply time rather than never run.
CRON_PATTERN = r"^(@(yearly|annually|monthly|weekly|daily|midnight|hourly)|([^ \t]+[ \t]+){4}[^ \t]+)$"
_CRON = re.compile(CRON_PATTERN)


@cel.twin(
    cel.rule(
        f"!self.matches({cel.raw_string(DURATION_PATTERN)})"
        f" || ({SECONDS_CEL} >= {MIN_WINDOW_SECONDS} && {SECONDS_CEL} <= {MAX_WINDOW_SECONDS})",
        f"must be between {MIN_WINDOW_SECONDS:g} s and {MAX_WINDOW_SECONDS:g} s (1s..1d)",
    )
)
def _window(value: str) -> str:
    span = seconds(value)
    if not MIN_WINDOW_SECONDS <= span <= MAX_WINDOW_SECONDS:
        raise ValueError(f"{value!r} is outside 1s..1d")
    return value


Window = Annotated[Duration, AfterValidator(_window)]
"""A duration between 1 s and 1 day."""

_MODEL_REF = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-/]*$")


def firing(op: str, value: float, bound: float) -> bool:
    """`value op bound`, the one definition of the comparisons (SQL compilation mirrors it)."""
    if op == ">":
        return value > bound
    if op == ">=":
        return value >= bound
    if op == "<":
        return value < bound
    if op == "<=":
        return value <= bound
    raise ValueError(f"unknown comparison {op!r}")


def upward(op: str) -> bool:
    """True when larger values fire (`>`, `>=`): the worst value is then the largest."""
    return op in (">", ">=")


def _model_ref_cel() -> tuple[cel.Rule, ...]:  # fresh objects each time: no YAML anchors in the CRD
    return (
        cel.rule(
            f"self.matches({cel.raw_string(_MODEL_REF.pattern)}) && !self.endsWith('/')",
            "must be a model name or a relative .json path of letters, digits, . _ - /",
        ),
        cel.rule("!self.contains('/') || self.endsWith('.json')", "a model path must end in .json"),
    )


def _model_ref(value: str) -> str:  # a shipped model's name or a relative .json path
    if not _MODEL_REF.match(value) or value.endswith("/"):
        raise ValueError("must be a model name or a relative .json path of letters, digits, . _ - /")
    if "/" in value and not value.endswith(".json"):
        raise ValueError("a model path must end in .json")
    return value


class _Strict(Model):
    model_config = ConfigDict(strict=True)


class _SensorCondition(_Strict):
    sensor: SensorName

    @field_validator("sensor")
    @classmethod
    @cel.twin(
        cel.rule(
            "self.trim().lowerAscii() in [" + ", ".join(f"'{s}'" for s in _SENSOR_SPELLINGS) + "]",
            f"unknown sensor: expected one of {', '.join(SENSOR_NAMES)} (or sensor_1..sensor_21)",
        )
    )
    def _known_sensor(cls, value: str) -> str:
        try:
            return sensor(value).name  # canonical C-MAPSS name
        except DynolineError as exc:
            raise ValueError(str(exc)) from None


class ThresholdCondition(_SensorCondition):
    """Fires on any new sample beyond the value."""

    type: Literal["threshold"]
    op: Comparison
    value: Finite


class SustainedCondition(_SensorCondition):
    """Fires when the threshold has held at every sample for `for`, or at k of the last n samples."""

    type: Literal["sustained"]
    op: Comparison
    value: Finite
    for_: Window | None = Field(None, alias="for")
    k: int | None = Field(None, ge=1, le=10_000)
    n: int | None = Field(None, ge=1, le=10_000)

    @model_validator(mode="after")
    @cel.twin(
        cel.rule(
            "has(self.__for__) != (has(self.k) || has(self.n))",
            "sustained needs either 'for' (a duration) or 'k' and 'n' (k of the last n samples)",
        ),
        cel.rule(
            "!(has(self.k) || has(self.n)) || (has(self.k) && has(self.n) && self.k <= self.n)",
            "sustained needs both k and n with k <= n",
        ),
    )
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
    """Fires when the sensor's least-squares change across the trailing `window` is beyond `value`.

    A fitted change (slope times window) rather than last-minus-first, so one noisy sample cannot fire it.
    """

    type: Literal["rateOfChange"]
    window: Window
    op: Comparison = ">"
    value: Finite


_REGIMES = "a model fitted with `sentinel fit --regimes K`: judge the sensor standardised per regime"


class DriftCondition(_SensorCondition):
    """Fires when the unit's trailing-`window` mean departs from its own early-life baseline.

    The baseline is the mean and standard deviation of the unit's first `baselineSamples` samples of
    its current life (a C-MAPSS replay that loops starts a new life at cycle 1). The statistic is the
    z-score of the window mean, in baseline standard deviations, signed towards `direction`.
    """

    type: Literal["drift"]
    baseline_samples: int = Field(30, ge=5, le=10_000)
    window: Window = "30s"
    threshold: Finite = Field(gt=0, le=1000, description="z-score, in baseline standard deviations")
    direction: Literal["up", "down", "both"] = "both"
    regimes: str | None = Field(None, min_length=1, max_length=512, description=_REGIMES)

    @field_validator("regimes")
    @classmethod
    @cel.twin(*_model_ref_cel())
    def _regimes_ref(cls, value: str | None) -> str | None:
        return None if value is None else _model_ref(value)


class _ModelCondition(_Strict):
    model: str = Field(
        min_length=1,
        max_length=512,
        description="a model shipped with dynoline (e.g. fd001-health) or the path of a model file"
        " from `dynoline sentinel fit`, relative to the rule file",
    )

    @field_validator("model")
    @classmethod
    @cel.twin(*_model_ref_cel())
    def _model_ref(cls, value: str) -> str:
        return _model_ref(value)


class HealthIndexCondition(_ModelCondition):
    """Fires when the trailing-`window` mean of a learned multi-sensor degradation score crosses `value`."""

    type: Literal["healthIndex"]
    window: Window = "10s"
    op: Comparison = ">"
    value: Finite


class RulCondition(_ModelCondition):
    """Fires when the lower bound of the unit's remaining useful life, in cycles, is `op` `value`.

    The health index over the trailing `window` is fitted with an exponential degradation curve
    (`hi + offset = exp(a + b * cycle)`, least squares on the logarithm) and extrapolated to the failure
    level 1; the bounds come from the slope's `confidence` interval. The statistic is the lower bound.
    """

    type: Literal["rul"]
    window: Window = "30s"
    op: Comparison
    value: Finite = Field(description="remaining cycles: fire when the lower bound is at most this")
    confidence: float = Field(0.9, ge=0.5, le=0.99, description="two-sided confidence of the interval")


AnyCondition = (
    ThresholdCondition
    | SustainedCondition
    | RateOfChangeCondition
    | DriftCondition
    | HealthIndexCondition
    | RulCondition
)
Condition = Annotated[AnyCondition, Field(discriminator="type")]


class Clear(_Strict):
    """When an open alert resolves: the statistic is back on this side of `value` (hysteresis)."""

    op: Comparison
    value: Finite


def model_ref(condition: AnyCondition) -> str | None:  # the model it needs: `model`, or drift's `regimes`
    if isinstance(condition, HealthIndexCondition | RulCondition):
        return condition.model
    if isinstance(condition, DriftCondition):
        return condition.regimes
    return None


def condition_bound(condition: AnyCondition) -> tuple[str, float]:
    """(op, bound) of the firing test on the condition's statistic."""
    if isinstance(condition, DriftCondition):
        return ">", condition.threshold
    return condition.op, condition.value


# The condition's statistic, bound and direction in CEL, for the hysteresis rules below.
_UP = "has(self.condition.op) ? self.condition.op.startsWith('>') : true"
_UPWARD = f"(self.condition.type == 'drift' || ({_UP}))"
_BOUND = "(self.condition.type == 'drift' ? self.condition.threshold : self.condition.value)"
_HAS_BOUND = "(self.condition.type == 'drift' ? has(self.condition.threshold) : has(self.condition.value))"


class RuleBody(_Strict):
    """What a rule checks and does; shared by file rules and the custom resource spec."""

    description: str | None = Field(None, max_length=1000, description="shown with the alert")
    units: list[Annotated[int, Field(ge=0, le=100_000)]] | None = Field(
        None,
        min_length=1,
        max_length=10_000,
        description="unit ids to check; all units of the line when absent",
    )
    severity: Severity = "warning"
    condition: Condition
    clear: Clear | None = None
    action: Literal["none", "quarantine"] = "none"

    @field_validator("units")
    @classmethod
    @cel.schema_twin(x_kubernetes_list_type="set")  # the API server refuses duplicates in a set
    def _distinct(cls, value: list[int] | None) -> list[int] | None:
        if value is not None and len(set(value)) != len(value):
            raise ValueError("unit ids must not repeat")
        return value

    @model_validator(mode="after")
    @cel.twin(
        cel.rule(
            f"!has(self.clear) || {_UPWARD} != self.clear.op.startsWith('>')",
            "clear points the same way as the condition; hysteresis needs the opposite comparison",
        ),
        cel.rule(
            f"!has(self.clear) || !{_HAS_BOUND} || ({_UPWARD} ? self.clear.value <= {_BOUND}"
            f" : self.clear.value >= {_BOUND})",
            "clear overlaps the firing side of the condition's bound",
        ),
    )
    def _clear_on_the_quiet_side(self) -> RuleBody:
        if self.clear is None:
            return self
        op, bound = condition_bound(self.condition)
        if upward(op) == upward(self.clear.op):
            raise ValueError(
                f"clear {self.clear.op} {self.clear.value:g} points the same way as the condition"
                f" {op} {bound:g}; hysteresis needs the opposite comparison"
            )
        if (upward(op) and self.clear.value > bound) or (not upward(op) and self.clear.value < bound):
            raise ValueError(
                f"clear {self.clear.op} {self.clear.value:g} overlaps the firing side of {op} {bound:g}"
            )
        return self


class Rule(RuleBody):
    """A rule as `dynoline sentinel run` reads it from a file."""

    name: RuleName
    line: DnsName


class LineRef(_Strict):
    name: DnsName


MODEL_FILE_UNAVAILABLE = (
    "condition.model: a SentinelRule's model must be one shipped with dynoline (e.g. fd001-health), not a"
    " file path: a path is relative to a rule file, which the sentinel pod does not have"
)


class SentinelRuleSpec(RuleBody):
    """The SentinelRule custom resource's spec."""

    line_ref: LineRef
    schedule: str = Field(
        "*/1 * * * *", min_length=6, max_length=100, description="cron schedule of the CronJob"
    )

    @field_validator("schedule")
    @classmethod
    @cel.twin(
        cel.rule(
            f"self.matches({cel.raw_string(CRON_PATTERN)})",
            "schedule must be a cron expression with five fields (e.g. '*/5 * * * *') or @hourly etc.",
        )
    )
    def _cron(cls, value: str) -> str:
        if not _CRON.match(value):
            raise ValueError(
                "schedule must be a cron expression with five fields (e.g. '*/5 * * * *') or @hourly etc."
            )
        return value

    @model_validator(mode="after")
    @cel.twin(
        cel.rule(
            "!(self.condition.type in ['healthIndex', 'rul']) || !has(self.condition.model)"
            " || !self.condition.model.contains('/')",
            MODEL_FILE_UNAVAILABLE,
        ),
        cel.rule(
            "self.condition.type != 'drift' || !has(self.condition.regimes)"
            " || !self.condition.regimes.contains('/')",
            MODEL_FILE_UNAVAILABLE,
        ),
    )
    def _shipped_model(self) -> SentinelRuleSpec:
        """A rule file's model path is relative to that file; the sentinel pod has no such file."""
        ref = model_ref(self.condition)
        if ref is not None and "/" in ref:
            raise ValueError(f"{MODEL_FILE_UNAVAILABLE} (not {ref!r})")
        return self

    def to_rule(self, name: str) -> Rule:
        body = self.model_dump(by_alias=True, exclude={"line_ref", "schedule"}, exclude_none=True)
        return Rule.model_validate({**body, "name": name, "line": self.line_ref.name})
