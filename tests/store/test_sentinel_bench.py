"""`dynoline bench sentinel` at toy scale: runs end to end, reports what it measured (no timing asserts)."""

from __future__ import annotations

import json

import psycopg
import pytest

from workloads.bench.sentinel import bench_rules, read_columns
from workloads.catalog import SENSOR_COLUMNS, TELEMETRY_COLUMNS
from workloads.cli import main


def test_the_bench_rule_set_has_twenty_rules_of_every_kind() -> None:
    rules = bench_rules()
    assert len(rules) == 20 and len({r.rule.name for r in rules}) == 20
    assert {r.rule.condition.type for r in rules} == {
        "threshold",
        "sustained",
        "rateOfChange",
        "drift",
        "healthIndex",
        "rul",
    }


def test_the_floor_reads_the_columns_the_rules_read() -> None:
    rules = {r.rule.name: r for r in bench_rules()}
    assert read_columns([rules["ps30-high"], rules["t50-rising-fast"]]) == ["cycle", "t50", "ps30"]
    model = rules["hpc-health-index"].model
    assert model is not None
    assert read_columns([rules["hpc-health-index"]]) == [
        c for c in TELEMETRY_COLUMNS if c in {"cycle"} | {column for column, _, _ in model.terms()}
    ]
    assert len(read_columns(list(rules.values()))) < 1 + len(SENSOR_COLUMNS)  # not every channel


def test_bench_sentinel_reports_both_tables(database_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["bench", "sentinel", "--units", "100", "--scale", "2", "--repeat", "2", "--json"]
    assert main([*args, "--database-url", database_url]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["rules"] == 20 and result["new_samples"] == 100 * 300
    small, large = result["tables"]["small"], result["tables"]["large"]
    assert (small["rows"], large["rows"]) == (100 * 360, 100 * 720)
    for t in (small, large):
        assert t["samples_scanned"] == 100 * 300 and len(t["pass_seconds_runs"]) == 2
        assert t["alerts_opened"] > 0 and t["quarantined"] > 0  # the injected runaways were caught
        assert set(t["phases_seconds"]) >= {"scan", "detail", "lifecycle"}
        # repeated passes start from the same state, so they do the same work
        assert t["alerts_opened_runs"] == [t["alerts_opened"]] * 2
        # the floor read the pass's rows, after each pass
        assert t["floor_scan_samples"] == t["samples_scanned"] and len(t["floor_scan_seconds_runs"]) == 2
        assert t["pass_over_floor"] > 0
    assert result["floor_columns"] == read_columns(bench_rules())
    assert set(result["targets"]) == {"pass_seconds_max", "large_over_small_max", "pass_met", "ratio_met"}
    # the targets are for 10,000 units x 5 min and 100,000 x 1 min: this shape is not judged
    assert (result["targets"]["pass_seconds_max"], result["targets"]["pass_met"]) == (None, None)
    with psycopg.connect(database_url) as conn:  # the benchmark's schemas are gone afterwards
        left = conn.execute(
            "SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'dynoline_bench%'"
        ).fetchone()
    assert left == (0,)
