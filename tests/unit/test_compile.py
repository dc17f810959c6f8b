"""SQL compilation is pure: values are bound parameters, identifiers come from the catalogue only."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from workloads.api.rule import Rule
from workloads.catalog import SENSOR_COLUMNS, TELEMETRY_COLUMNS
from workloads.sentinel import compile as compiler
from workloads.sentinel.health_index import resolve_model
from workloads.sentinel.rules import LoadedRule

SINCE = datetime(2026, 1, 1, 0, 5, tzinfo=UTC)
UNTIL = SINCE + timedelta(minutes=5)
HOSTILE_LINE = "line-a"
CONDITIONS: list[dict[str, Any]] = [
    {"type": "threshold", "sensor": "T50", "op": ">", "value": 1431.25},
    {"type": "sustained", "sensor": "T30", "op": "<", "value": 1577.75, "for": "30s"},
    {"type": "sustained", "sensor": "BPR", "op": ">=", "value": 8.5125, "k": 3, "n": 7},
    {"type": "rateOfChange", "sensor": "P30", "window": "45s", "op": "<", "value": -3.125},
    {
        "type": "drift",
        "sensor": "Ps30",
        "baselineSamples": 40,
        "window": "20s",
        "threshold": 3.375,
        "direction": "up",
    },
    {"type": "healthIndex", "model": "fd001-health", "window": "15s", "value": 0.4375},
    {"type": "rul", "model": "fd001-health", "window": "25s", "op": "<=", "value": 33.5, "confidence": 0.85},
]


def loaded(condition: dict[str, Any], name: str = "r", **extra: Any) -> LoadedRule:
    rule = Rule.model_validate({"name": name, "line": HOSTILE_LINE, "condition": condition, **extra})
    model = source = None
    if condition["type"] in ("healthIndex", "rul"):
        model, source = resolve_model(condition["model"], None)
    return LoadedRule(rule, "test", model, source)


def text(composed: Any) -> str:
    return str(composed.as_string(None))


def identifiers(sql_text: str) -> set[str]:
    return set(re.findall(r'"([^"]+)"', sql_text))


ALLOWED = set(TELEMETRY_COLUMNS) | {
    "ts", "unit_id", "cycle", "line", "x", "c", "held", "first", "last", "worst", "latest_ts",
}  # fmt: skip


def test_scan_binds_every_value_and_names_only_catalogue_columns() -> None:
    rules = [loaded(c, name=f"r{i}", units=[3, 5] if i == 0 else None) for i, c in enumerate(CONDITIONS)]
    plan = compiler.scan(HOSTILE_LINE, rules, SINCE, UNTIL)
    sql_text = text(plan.query)
    for value in (
        "1431.25",
        "1577.75",
        "8.5125",
        "3.125",
        "3.375",
        "0.4375",
        "33.5",
        "1.44",
        HOSTILE_LINE,
        "r0",
    ):
        assert value not in sql_text, f"{value} was pasted into the statement"
    params = plan.params.values()
    assert 1431.25 in params and 0.4375 in params and HOSTILE_LINE in params and [3, 5] in params
    assert ["r0", "r1", "r2", "r3", "r4", "r5", "r6"] in params and 33.5 in params
    assert SINCE in params and UNTIL in params
    cols = {c for c in identifiers(sql_text) if c in SENSOR_COLUMNS}
    assert {"t50", "t30", "bpr", "p30", "ps30"} <= cols
    # every quoted identifier is a catalogue column or one of the compiler's own aliases
    for ident in identifiers(sql_text):
        assert ident in ALLOWED or re.fullmatch(
            r"(a|s|f|b|bl)\d+(_means|_sds|_start)?|r\d+_(estimate|high)", ident
        )
    assert plan.baseline_sizes == (40,)


def test_scan_reads_back_only_what_the_rules_need() -> None:
    threshold = compiler.scan("l", [loaded(CONDITIONS[0])], SINCE, UNTIL)
    assert threshold.tail_from is None and " tail AS " not in text(threshold.query)
    windowed = compiler.scan("l", [loaded(CONDITIONS[3]), loaded(CONDITIONS[5], "h")], SINCE, UNTIL)
    assert windowed.tail_from == UNTIL - timedelta(seconds=45)  # the longest trailing window
    assert UNTIL - timedelta(seconds=15) in windowed.params.values()  # the shorter one, as a filter
    sustained = compiler.scan("l", [loaded(CONDITIONS[1])], SINCE, UNTIL)
    assert sustained.tail_from is None  # its pre-filter needs no look-back; the exact check has its own


def test_identical_aggregates_are_shared_between_rules() -> None:
    a = loaded({"type": "threshold", "sensor": "T50", "op": ">", "value": 1430}, name="a")
    b = loaded({"type": "threshold", "sensor": "T50", "op": ">", "value": 1440}, name="b")
    c = loaded({"type": "threshold", "sensor": "T50", "op": "<", "value": 1380}, name="c")
    sql_text = text(compiler.scan("l", [a, b, c], SINCE, UNTIL).query)
    assert sql_text.count('max("t50")') == 1 and sql_text.count('min("t50")') == 1


def test_detail_and_sustained_bind_values_too() -> None:
    rules = [loaded(CONDITIONS[0]), loaded(CONDITIONS[1])]
    d = compiler.detail("l", rules, [[1, 2], [2]], SINCE, UNTIL)
    assert "1431.25" not in text(d.query) and 1431.25 in d.params.values()
    assert [1, 2] in d.params.values() and [1, 3] in d.params.values()  # units, and their rule bit masks
    for cond in CONDITIONS[1:3]:
        s = compiler.sustained("l", loaded(cond), [4], SINCE, UNTIL)
        assert str(cond["value"]) not in text(s.query) and cond["value"] in s.params.values()
    assert (
        timedelta(seconds=30)
        in compiler.sustained("l", loaded(CONDITIONS[1]), [4], SINCE, UNTIL).params.values()
    )
    k_of_n = compiler.sustained("l", loaded(CONDITIONS[2]), [4], SINCE, UNTIL)
    assert 3 in k_of_n.params.values() and 6 in k_of_n.params.values()  # k, and the n-1 samples looked back


def test_model_weights_are_parameters() -> None:
    rule = loaded(CONDITIONS[5])
    assert rule.model is not None
    plan = compiler.scan("l", [rule], SINCE, UNTIL)
    params = list(plan.params.values())
    assert rule.model.intercept in params
    for _, center, weight in rule.model.terms():
        assert center in params and weight in params
        assert repr(weight) not in text(plan.query)


def test_an_unknown_comparison_cannot_be_compiled() -> None:
    with pytest.raises(KeyError):
        compiler.op_sql("; DROP TABLE telemetry")
