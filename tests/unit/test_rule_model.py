"""The rule model refuses everything it cannot evaluate safely and exactly, before any database work."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from workloads.api.rule import (
    DriftCondition,
    HealthIndexCondition,
    Rule,
    SentinelRuleSpec,
    SustainedCondition,
    ThresholdCondition,
    condition_bound,
    firing,
)


def rule(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "name": "t50-hot",
        "line": "line-a",
        "condition": {"type": "threshold", "sensor": "T50", "op": ">", "value": 1430.0},
    }
    base.update(changes)
    return base


THRESHOLD = {"type": "threshold", "sensor": "T50", "op": ">", "value": 1430.0}


def cond(**fields: Any) -> dict[str, Any]:
    return rule(condition=fields)


def test_every_condition_kind_parses_and_sensor_aliases_become_catalogue_names() -> None:
    kinds = [
        {"type": "threshold", "sensor": "sensor_11", "op": ">", "value": 500},
        {"type": "sustained", "sensor": "t50", "op": ">=", "value": 1420, "for": "30s"},
        {"type": "sustained", "sensor": "s4", "op": "<", "value": 1420, "k": 3, "n": 5},
        {"type": "rateOfChange", "sensor": "T50", "window": "60s", "value": 15},
        {"type": "drift", "sensor": "Ps30", "threshold": 3, "direction": "up"},
        {"type": "healthIndex", "model": "fd001-health", "value": 0.4},
    ]
    parsed = [Rule.model_validate(rule(condition=k)).condition for k in kinds]
    assert [c.type for c in parsed] == [
        "threshold",
        "sustained",
        "sustained",
        "rateOfChange",
        "drift",
        "healthIndex",
    ]
    assert isinstance(parsed[0], ThresholdCondition) and parsed[0].sensor == "Ps30"
    assert isinstance(parsed[1], SustainedCondition) and parsed[1].sensor == "T50" and parsed[1].for_ == "30s"
    assert (
        isinstance(parsed[4], DriftCondition)
        and parsed[4].baseline_samples == 30
        and parsed[4].window == "30s"
    )
    assert isinstance(parsed[5], HealthIndexCondition) and parsed[5].window == "10s" and parsed[5].op == ">"


@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        (rule(name="x'; DROP TABLE telemetry; --"), "name"),
        (rule(line="a; DELETE FROM alerts"), "line"),
        (cond(type="threshold", sensor="t50; DROP TABLE alerts", op=">", value=1), "unknown sensor"),
        (
            cond(type="threshold", sensor="T50", op=">", value="1430); DROP TABLE telemetry; --"),
            "valid number",
        ),
        (cond(type="threshold", sensor="T50", op="> 0 OR 1=1 --", value=1), "op"),
        (cond(type="threshold", sensor="sensor_22", op=">", value=1), "unknown sensor"),
        (cond(type="threshold", sensor="T50", op=">", value="1430"), "valid number"),  # numbers are numbers
        (cond(type="threshold", sensor="T50", op=">", value=float("nan")), "finite"),
        (cond(type="threshold", sensor="T50", op=">", value=float("inf")), "finite"),
        (cond(type="threshold", sensor="T50", op=">", value=[1430]), "valid number"),
        (cond(type="sustained", sensor="T50", op=">", value=1, **{"for": "0s"}), "pattern"),
        (cond(type="sustained", sensor="T50", op=">", value=1, **{"for": "500ms"}), "1s..1d"),
        (cond(type="sustained", sensor="T50", op=">", value=1, **{"for": "2d"}), "1s..1d"),
        (cond(type="sustained", sensor="T50", op=">", value=1, **{"for": "999999999d"}), "1s..1d"),
        (cond(type="sustained", sensor="T50", op=">", value=1, k=True, n=5), "valid integer"),
        (cond(type="sustained", sensor="T50", op=">", value=1, k=6, n=5), "k <= n"),
        (cond(type="sustained", sensor="T50", op=">", value=1, k=2, n=5, **{"for": "5s"}), "either"),
        (cond(type="sustained", sensor="T50", op=">", value=1, k=0, n=5), "greater than or equal to 1"),
        (cond(type="rateOfChange", sensor="T50", window="100000h", value=1), "1s..1d"),
        (cond(type="drift", sensor="T50", threshold=0), "greater than 0"),
        (cond(type="drift", sensor="T50", threshold=3, baselineSamples=1), "greater than or equal to 5"),
        (cond(type="healthIndex", model="x.json; rm -rf /", value=1), "model"),
        (cond(type="healthIndex", model="/etc/passwd", value=1), "model"),
        (cond(type="healthIndex", model="models/m.txt", value=1), ".json"),
        (cond(type="drift", sensor="T50", threshold=3, regimes="x.json; drop"), "regimes"),
        (cond(type="drift", sensor="T50", threshold=3, regimes="models/m.txt"), ".json"),
        (cond(type="bogus", sensor="T50"), "type"),
        (rule(severity="fatal"), "severity"),
        (rule(action="shutdown"), "action"),
        (rule(units="all"), "units"),
        (rule(units=[1, 1]), "repeat"),
        (rule(units=[-1]), "units"),
        (rule(surprise=True), "surprise"),
        (rule(clear={"op": ">", "value": 1440}), "same way"),
        (rule(clear={"op": "<", "value": 1440}), "overlaps"),
        (rule(description="x" * 1001), "description"),
    ],
)
def test_hostile_or_absurd_rules_are_rejected(doc: dict[str, Any], expected: str) -> None:
    with pytest.raises(ValidationError) as err:
        Rule.model_validate(doc)
    assert expected in str(err.value)


def test_a_description_is_only_data() -> None:
    parsed = Rule.model_validate(rule(description="'; DROP TABLE alerts; --"))
    assert parsed.description == "'; DROP TABLE alerts; --"


def test_clear_must_sit_on_the_quiet_side_of_the_bound() -> None:
    ok = Rule.model_validate(rule(clear={"op": "<", "value": 1425}))
    assert ok.clear is not None and ok.clear.value == 1425
    down = Rule.model_validate(
        rule(
            condition={"type": "threshold", "sensor": "W31", "op": "<", "value": 38.5},
            clear={"op": ">", "value": 38.6},
        )
    )
    assert down.clear is not None
    drift = Rule.model_validate(
        rule(condition={"type": "drift", "sensor": "Ps30", "threshold": 3}, clear={"op": "<", "value": 1})
    )
    assert condition_bound(drift.condition) == (">", 3.0)
    with pytest.raises(ValidationError, match="overlaps"):
        Rule.model_validate(
            rule(condition={"type": "drift", "sensor": "Ps30", "threshold": 3}, clear={"op": "<", "value": 4})
        )


def test_custom_resource_spec_becomes_the_same_rule() -> None:
    spec = SentinelRuleSpec.model_validate(
        {
            "lineRef": {"name": "line-a"},
            "severity": "critical",
            "condition": {"type": "sustained", "sensor": "T50", "op": ">", "value": 1430.0, "for": "30s"},
            "clear": {"op": "<", "value": 1425.0},
            "action": "quarantine",
        }
    )
    as_rule = spec.to_rule("hpc-overheat")
    assert as_rule.name == "hpc-overheat" and as_rule.line == "line-a" and as_rule.action == "quarantine"
    assert Rule.model_validate(as_rule.model_dump(by_alias=True, exclude_none=True)) == as_rule


@pytest.mark.parametrize(
    ("op", "value", "bound", "expected"),
    [
        (">", 2, 1, True),
        (">", 1, 1, False),
        (">=", 1, 1, True),
        ("<", 0, 1, True),
        ("<=", 1, 1, True),
        ("<", 1, 1, False),
    ],
)
def test_firing(op: str, value: float, bound: float, expected: bool) -> None:
    assert firing(op, value, bound) is expected


def test_a_sentinelrule_refuses_a_model_file_that_a_rule_file_may_use() -> None:
    health = {"type": "healthIndex", "model": "models/mine.json", "value": 0.8}
    condition = Rule.model_validate(rule(condition=health)).condition
    assert isinstance(condition, HealthIndexCondition) and condition.model == "models/mine.json"
    with pytest.raises(ValidationError, match="model must be one shipped with dynoline"):
        SentinelRuleSpec.model_validate({"lineRef": {"name": "line-a"}, "condition": health})
    shipped = {**health, "model": "fd001-health"}
    SentinelRuleSpec.model_validate({"lineRef": {"name": "line-a"}, "condition": shipped})
    drift = {"type": "drift", "sensor": "Ps30", "threshold": 3, "regimes": "models/six.json"}
    with pytest.raises(ValidationError, match="model must be one shipped with dynoline"):
        SentinelRuleSpec.model_validate({"lineRef": {"name": "line-a"}, "condition": drift})


def test_a_schedule_the_cronjob_controller_cannot_parse_is_refused() -> None:
    for schedule in ("*/5 * * * *", "@hourly", "0 6 * * 1-5"):
        SentinelRuleSpec.model_validate(
            {"lineRef": {"name": "a"}, "condition": THRESHOLD, "schedule": schedule}
        )
    with pytest.raises(ValidationError, match="schedule must be a cron expression"):
        SentinelRuleSpec.model_validate(
            {"lineRef": {"name": "a"}, "condition": THRESHOLD, "schedule": "every minute"}
        )
