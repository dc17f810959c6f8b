"""The scan's two plans (one shared scan, or new samples and trailing window apart) judge alike.

On the bench's data (every condition kind, ramps and steps that fire them, baselines ready), for a
pass shorter than the longest window, one exactly as long, and one longer (a backlog), plus a unit
that went quiet inside the window: the same units, statistics and firing flags either way.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Any

import psycopg
import pytest

from workloads.bench import sentinel as bench
from workloads.sentinel import compile as compiler
from workloads.sentinel.kinds import window_seconds
from workloads.store.embedded import EmbeddedPostgres
from workloads.store.migrate import migrate

UNITS, SECONDS, NEW = 120, 240, 180
QUIET_UNIT = 5  # stops reporting 40 s before the end: rows in the window, none in a short pass


def rows(conn: psycopg.Connection[Any], plan: compiler.Scan) -> list[dict[str, Any]]:
    with conn.cursor() as cur:
        cur.execute(plan.query, plan.params)
        names = [d.name for d in cur.description or ()]
        return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


def alike(a: object, b: object) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        # Parallel workers add in another order each run: a slope over epoch seconds moves by ~1e-8.
        return math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-9)
    return a == b


@pytest.fixture(scope="module")
def bench_table(pg_server: EmbeddedPostgres) -> tuple[str, datetime]:
    """The bench's small table at toy scale, warmed up (baselines, alerts open); the newest sample."""
    pg_server.start()  # a test that rehearsed an outage may have left it stopped
    url = pg_server.create_database("sentinel_scan_plans")
    migrate(url)
    with psycopg.connect(url) as conn:
        bench.fill(conn, UNITS, SECONDS, SECONDS - NEW, NEW)
        _, end = bench.warm_up(conn, bench.bench_rules(), SECONDS - NEW, NEW)
        conn.execute(
            "DELETE FROM telemetry WHERE line = %s AND unit_id = %s AND ts > %s",
            (bench.LINE, QUIET_UNIT, end - timedelta(seconds=40)),
        )
        conn.commit()
    return url, end


@pytest.mark.parametrize("new_seconds", [30, 60, NEW])
def test_one_scan_and_two_scans_judge_alike(bench_table: tuple[str, datetime], new_seconds: int) -> None:
    url, until = bench_table
    rules = bench.bench_rules()
    since = until - timedelta(seconds=new_seconds)
    one = compiler.scan(bench.LINE, rules, since, until, shared=True)
    two = compiler.scan(bench.LINE, rules, since, until, shared=False)
    assert one.query.as_string(None).count("FROM telemetry") == 1
    assert two.query.as_string(None).count("FROM telemetry") == 2
    with psycopg.connect(url) as conn:
        got_one, got_two = rows(conn, one), rows(conn, two)
    assert [r["unit_id"] for r in got_one] == [r["unit_id"] for r in got_two]
    for a, b in zip(got_one, got_two, strict=True):
        assert a.keys() == b.keys()
        assert all(alike(a[k], b[k]) for k in a), f"unit {a['unit_id']}: {a} != {b}"
    # Not vacuous: every unit with new samples counted, and windowed and per-sample rules fire.
    quiet = new_seconds <= 40
    assert got_one[0]["total_units"] == UNITS - quiet
    assert got_one[0]["total_samples"] == (UNITS - 1) * new_seconds + (0 if quiet else new_seconds - 40)
    fired = {i for r in got_one for i in range(len(rules)) if r[f"f{i}"]}
    kinds = {rules[i].rule.condition.type for i in fired}
    assert {"threshold", "rateOfChange", "drift"} <= kinds
    assert any(r[f"s{i}"] is not None for r in got_one for i, lr in enumerate(rules) if window_seconds(lr))


def test_by_default_one_scan_when_the_window_covers_the_new_samples() -> None:
    rules = bench.bench_rules()
    until = datetime.fromisoformat("2026-03-02T01:00:00+00:00")
    longest = max(window_seconds(r) for r in rules)

    def scans(new_seconds: float) -> int:
        plan = compiler.scan(bench.LINE, rules, until - timedelta(seconds=new_seconds), until)
        return plan.query.as_string(None).count("FROM telemetry")

    assert (scans(longest / 2), scans(longest), scans(longest + 1), scans(300)) == (1, 1, 2, 2)
    thresholds = [r for r in rules if not window_seconds(r)]
    plan = compiler.scan(bench.LINE, thresholds, until - timedelta(seconds=30), until, shared=True)
    assert plan.tail_from is None and plan.query.as_string(None).count("FROM telemetry") == 1
