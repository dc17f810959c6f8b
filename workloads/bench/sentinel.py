"""`dynoline bench sentinel`: one pass of 20 rules over 10,000 units' 5 newest minutes, on two table sizes.

Each table holds 10,000 units at 1 Hz: the small one 6 minutes (1 minute already evaluated, then the
5 new minutes: 3 M samples), the large one 60 minutes (10x the rows, the same 5 new minutes). Data is
made server-side (INSERT … SELECT generate_series) with FD001's per-channel spread, a per-unit offset,
and anomalies so the measured pass opens alerts and walks every path: 1% of units ramp T50/T30 like a
thermal runaway, 2% step Ps30 up. A warm-up pass evaluates the minute before the new data (baselines,
alerts already open), then the measured pass covers the 5 new minutes; it is repeated from the same
state (watermarks and alerts restored) and the median is reported. The baseline in the same run is the
prototype's way, a scan of the whole table for one condition, whose cost grows with the table.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import statistics
import time
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import yaml
from psycopg import sql

from workloads.api.rule import Rule
from workloads.bench.fd001 import FD001_MOMENTS
from workloads.bench.harness import (
    Conn,
    Result,
    Setting,
    add_common_arguments,
    bench_database,
    emit,
    machine,
    machine_lines,
    server_settings,
    table,
)
from workloads.catalog import SENSOR_COLUMNS, SETTING_COLUMNS, TELEMETRY_COLUMNS, sensor
from workloads.errors import DynolineError
from workloads.sentinel.engine import LineResult, run_line
from workloads.sentinel.health_index import resolve_model
from workloads.sentinel.rules import LoadedRule
from workloads.store.connection import connect
from workloads.store.partitions import ensure_partitions

log = logging.getLogger(__name__)

LINE = "bench-sentinel"
T0 = datetime(2026, 3, 2, tzinfo=UTC)  # one day partition holds every table
NEW_SECONDS = 300
# Issue 11's pass targets, by (units, new seconds): a line's 5-minute backlog, a plant's minute.
PASS_TARGETS = {(10_000, NEW_SECONDS): 1.0, (100_000, 60): 2.0}
TARGET_RATIO = 1.5
CHUNK_SECONDS = 60

# The default pack's seven (thresholds moved to where the bench data's healthy noise never reaches),
# then thirteen more over other channels, so every condition kind appears (the pack's `rul` rule last).
_RULES_YAML = """
- {name: hpc-health-index, clear: {op: "<", value: 0.25},
   condition: {type: healthIndex, model: fd001-health, window: 10s, op: ">", value: 0.4}}
- {name: hpc-health-critical, severity: critical, action: quarantine,
   condition: {type: healthIndex, model: fd001-health, window: 10s, op: ">", value: 0.7}}
- {name: ps30-high, clear: {op: "<", value: 47.7},
   condition: {type: threshold, sensor: Ps30, op: ">", value: 47.95}}
- {name: t50-hot-5-of-10, condition: {type: sustained, sensor: T50, op: ">", value: 1440, k: 5, n: 10}}
- {name: w31-low-sustained, condition: {type: sustained, sensor: W31, op: "<", value: 38.3, for: 3s}}
- {name: t50-rising-fast, severity: critical, action: quarantine,
   condition: {type: rateOfChange, sensor: T50, window: 60s, op: ">", value: 15}}
- {name: ps30-drift-up, clear: {op: "<", value: 1},
   condition: {type: drift, sensor: Ps30, baselineSamples: 30, window: 20s, threshold: 3, direction: up}}
- {name: t30-high, condition: {type: threshold, sensor: T30, op: ">", value: 1625}}
- {name: p30-low, condition: {type: threshold, sensor: P30, op: "<", value: 550.5}}
- {name: phi-low, condition: {type: threshold, sensor: phi, op: "<", value: 518.5}}
- {name: htbleed-high, condition: {type: threshold, sensor: htBleed, op: ">", value: 400}}
- {name: nc-high, condition: {type: threshold, sensor: Nc, op: ">", value: 9150}}
- {name: t30-hot-for-10s, condition: {type: sustained, sensor: T30, op: ">", value: 1605, for: 10s}}
- {name: bpr-high-3-of-5, condition: {type: sustained, sensor: BPR, op: ">", value: 8.55, k: 3, n: 5}}
- {name: t30-rising-fast, condition: {type: rateOfChange, sensor: T30, window: 60s, op: ">", value: 20}}
- {name: ps30-rising-fast, condition: {type: rateOfChange, sensor: Ps30, window: 30s, op: ">", value: 1.0}}
- {name: t50-drift-up,
   condition: {type: drift, sensor: T50, baselineSamples: 30, window: 30s, threshold: 3, direction: up}}
- {name: w31-drift-down,
   condition: {type: drift, sensor: W31, baselineSamples: 30, window: 30s, threshold: 3, direction: down}}
- {name: p30-drift,
   condition: {type: drift, sensor: P30, baselineSamples: 30, window: 30s, threshold: 4, direction: both}}
- {name: rul-imminent, severity: critical,
   condition: {type: rul, model: fd001-health, window: 20s, op: "<=", value: 35, confidence: 0.9}}
"""


def bench_rules(line: str = LINE) -> list[LoadedRule]:
    out = []
    for spec in yaml.safe_load(_RULES_YAML):
        rule = Rule.model_validate({"line": line, **spec})
        model = source = None
        if rule.condition.type in ("healthIndex", "rul"):
            model, source = resolve_model(rule.condition.model, None)
        out.append(LoadedRule(rule, "bench", model, source))
    return out


def register(bench_sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = bench_sub.add_parser(
        "sentinel",
        help="one pass of 20 rules over 10,000 units' 5 newest minutes, on a table and on one 10x larger",
        description="Time one incremental sentinel pass (20 rules, every condition kind) over 5 minutes of"
        " new 1 Hz data from --units units, on a table of 6 minutes and one of 60 minutes.",
    )
    add_common_arguments(p)
    p.add_argument("--units", type=int, default=10_000, help="units on the line (default 10000)")
    p.add_argument("--repeat", type=int, default=3, help="measured passes per table (default 3)")
    p.add_argument("--scale", type=int, default=10, help="size of the large table vs the small (default 10)")
    p.add_argument(
        "--new-seconds", type=int, default=NEW_SECONDS, help="seconds of new data per pass (default 300)"
    )
    p.set_defaults(handler=run_command)


def run_command(args: argparse.Namespace) -> int:
    if not 100 <= args.units <= 100_000:
        raise DynolineError(f"--units must be between 100 and 100000, got {args.units}")
    if not 1 <= args.repeat <= 20:
        raise DynolineError(f"--repeat must be between 1 and 20, got {args.repeat}")
    if not 2 <= args.scale <= 20:
        raise DynolineError(f"--scale must be between 2 and 20, got {args.scale}")
    if not 10 <= args.new_seconds <= 3600:
        raise DynolineError(f"--new-seconds must be between 10 and 3600, got {args.new_seconds}")
    result = run(
        args.database_url, args.units, args.repeat, args.scale, args.new_seconds,
        settings=server_settings(args),
    )  # fmt: skip
    emit(result, args.json, render)
    return 0


def _column_expr(column: str, b: dict[str, Any]) -> sql.Composable:
    mean, sd = FD001_MOMENTS[column]
    if sd == 0:
        return sql.Literal(mean)
    b[f"m_{column}"], b[f"s_{column}"] = mean, sd
    # Uniform noise of half FD001's spread per sample, plus a fixed per-unit offset of 0.3 of it
    # (initial wear differs by unit); sqrt(12) turns a uniform on (-0.5, 0.5) into unit variance.
    expr = sql.SQL(
        "{m} + {s} * (1.732 * (random() - 0.5) + 1.039 * (((u * 7919 + {salt}) %% 1000) / 1000.0 - 0.5))"
    ).format(m=sql.Placeholder(f"m_{column}"), s=sql.Placeholder(f"s_{column}"), salt=sql.Literal(len(b)))
    if column in ("t50", "t30"):  # thermal runaway on 1% of units: +0.5 °R/s from the ramp start
        expr = sql.SQL(
            "{} + CASE WHEN u %% 100 = 7 AND s > %(ramp)s THEN 0.5 * (s - %(ramp)s) ELSE 0 END"
        ).format(expr)
    if column == "ps30":  # a step of +0.6 psia on 2% of units
        expr = sql.SQL("{} + CASE WHEN u %% 50 = 3 AND s > %(step)s THEN 0.6 ELSE 0 END").format(expr)
    return expr


def fill(conn: Conn, units: int, seconds: int, new_from: int, new_seconds: int = NEW_SECONDS) -> float:
    """Write `seconds` of 1 Hz samples for `units` units, in time order (as the simulator does)."""
    params: dict[str, Any] = {}
    values = [_column_expr(c, params) for c in SETTING_COLUMNS + SENSOR_COLUMNS]
    statement = sql.SQL(
        "INSERT INTO telemetry ({cols}) SELECT %(line)s, u, s + 1, %(t0)s + s * interval '1 second', {values}"
        " FROM generate_series(%(s0)s::integer, %(s1)s::integer) AS s,"
        " generate_series(0, %(units)s::integer - 1) AS u"
    ).format(
        cols=sql.SQL(", ").join(sql.Identifier(c) for c in TELEMETRY_COLUMNS),
        values=sql.SQL(", ").join(values),
    )
    ensure_partitions(conn, T0, T0 + timedelta(seconds=seconds))
    started = time.perf_counter()
    for s0 in range(0, seconds, CHUNK_SECONDS):
        conn.execute(
            statement,
            {**params, "line": LINE, "t0": T0, "s0": s0, "s1": min(seconds, s0 + CHUNK_SECONDS) - 1,
             "units": units, "ramp": new_from + new_seconds // 5, "step": new_from + 2 * new_seconds // 5},
        )  # fmt: skip
        conn.commit()
    conn.autocommit = True
    try:
        conn.execute("VACUUM ANALYZE telemetry")  # what autovacuum does for the older data of a running line
    finally:
        conn.autocommit = False
    return time.perf_counter() - started


@dataclass
class Table:
    """One table under test, warmed up: the state every measured pass starts from."""

    name: str
    conn: Conn
    rows: int
    minutes: float
    fill_seconds: float
    warm: LineResult
    end: datetime
    runs: list[LineResult] = field(default_factory=list)
    floors: list[float] = field(default_factory=list)  # `floor_scan` after each measured pass
    floor_samples: int = 0  # rows `floor_scan` read


def warm_up(
    conn: Conn, rules: Sequence[LoadedRule], new_from: int, new_seconds: int = NEW_SECONDS
) -> tuple[LineResult, datetime]:
    """A pass over the minute before the new data (baselines, alerts already open), kept as the start."""
    start = T0 + timedelta(seconds=new_from)
    for name in ("alerts", "sentinel_baselines", "sentinel_watermarks"):
        conn.execute(sql.SQL("DELETE FROM {} WHERE line = %s").format(sql.Identifier(name)), (LINE,))
    conn.execute("UPDATE unit_state SET quarantined = false WHERE line = %s", (LINE,))
    conn.commit()
    warm = run_line(conn, LINE, rules, until=start - timedelta(seconds=1), grace=timedelta(0),
                    backfill=timedelta(seconds=60))  # fmt: skip
    conn.execute("CREATE TEMPORARY TABLE IF NOT EXISTS bench_alerts AS SELECT * FROM alerts WITH NO DATA")
    conn.execute("TRUNCATE bench_alerts")
    conn.execute("INSERT INTO bench_alerts SELECT * FROM alerts WHERE line = %s", (LINE,))
    conn.commit()
    return warm, start + timedelta(seconds=new_seconds - 1)


def measured_pass(table: Table, rules: Sequence[LoadedRule]) -> None:
    """Restore the warmed-up state (alerts, watermarks, quarantines), then one pass over the new data."""
    conn = table.conn
    conn.execute("DELETE FROM alerts WHERE line = %s", (LINE,))
    conn.execute("INSERT INTO alerts OVERRIDING SYSTEM VALUE SELECT * FROM bench_alerts")
    conn.execute(
        "UPDATE sentinel_watermarks SET evaluated_to = %s WHERE line = %s AND rule = ANY(%s)",
        (table.warm.until, LINE, [r.rule.name for r in rules]),
    )
    conn.execute("UPDATE unit_state SET quarantined = false WHERE line = %s", (LINE,))
    conn.commit()
    table.runs.append(run_line(conn, LINE, rules, until=table.end, grace=timedelta(0), backfill=None))


def summary(table: Table) -> Result:
    seconds = [r.duration_seconds for r in table.runs]
    last = table.runs[-1]
    return {
        "rows": table.rows,
        "minutes": table.minutes,
        "fill_seconds": round(table.fill_seconds, 1),
        "pass_seconds_median": round(statistics.median(seconds), 4),
        "pass_seconds_runs": [round(s, 4) for s in seconds],
        "floor_scan_seconds_median": round(statistics.median(table.floors), 4),
        "floor_scan_seconds_runs": [round(s, 4) for s in table.floors],
        "floor_scan_samples": table.floor_samples,
        "pass_over_floor": round(statistics.median(seconds) / statistics.median(table.floors), 2),
        "samples_scanned": last.samples,
        "units": last.units,
        "alerts_opened": last.opened,
        "alerts_opened_runs": [r.opened for r in table.runs],
        "alerts_opened_by_rule": dict(sorted(last.opened_by_rule.items())),
        "alerts_updated": last.updated,
        "alerts_resolved": last.resolved,
        "quarantined": len(last.quarantined),
        "phases_seconds": {k: round(v / len(table.runs), 4) for k, v in _sum_phases(table.runs).items()},
        "warmup": {
            "samples": table.warm.samples,
            "opened": table.warm.opened,
            "seconds": round(table.warm.duration_seconds, 3),
        },
    }


def _sum_phases(runs: Sequence[Any]) -> dict[str, float]:
    out: dict[str, float] = {}
    for r in runs:
        for k, v in r.phases.items():
            out[k] = out.get(k, 0.0) + v
    return out


def read_columns(rules: Sequence[LoadedRule]) -> list[str]:
    """The telemetry columns a pass reads: `cycle` (restarts), and what the rules read (a model's
    channels, its regimes' settings)."""
    out = {"cycle"}
    for loaded in rules:
        cond = loaded.rule.condition
        name = getattr(cond, "sensor", None)
        if isinstance(name, str):
            out.add(sensor(name).column)
        if loaded.model is not None:
            out.update(column for column, _, _ in loaded.model.terms())
            if loaded.model.regimes is not None:
                out.update(SETTING_COLUMNS)
    return [c for c in TELEMETRY_COLUMNS if c in out]


def floor_scan(conn: Conn, columns: Sequence[str], since: datetime, until: datetime) -> tuple[float, int]:
    """The pass's new rows read once with no rule: `count(*)` and one `max` per column the rules read,
    grouped by unit, planned as the pass is. What any design that reads raw rows pays at least.
    Returns the seconds and the rows it read."""
    query = sql.SQL(
        "SELECT unit_id, count(*), {} FROM telemetry"
        " WHERE line = %s AND ts > %s AND ts <= %s GROUP BY unit_id"
    ).format(sql.SQL(", ").join(sql.SQL("max({})").format(sql.Identifier(c)) for c in columns))
    with conn.transaction():
        conn.execute("SET LOCAL work_mem = '64MB'")  # as run_line's pass
        conn.execute("SET LOCAL enable_indexscan = off")
        started = time.perf_counter()
        rows = conn.execute(query, (LINE, since, until)).fetchall()
        return time.perf_counter() - started, sum(cast(int, r[1]) for r in rows)


def prototype_scan(conn: Conn) -> float:
    """The prototype's check, `sensor_11 > 500` over the whole table: its cost follows the table size."""
    started = time.perf_counter()
    conn.execute("SELECT line, unit_id, ts, ps30 FROM telemetry WHERE ps30 > 500").fetchall()
    return time.perf_counter() - started


def run(
    url: str | None,
    units: int,
    repeat: int,
    scale: int,
    new_seconds: int = NEW_SECONDS,
    *,
    settings: Sequence[Setting] = (),
) -> Result:
    """Both tables are built and warmed up first, then measured in alternation (small, large, large,
    small, …), so a neighbour's load on a shared machine falls on both alike."""
    rules = bench_rules()
    small_seconds = 60 + new_seconds  # a minute already evaluated, then the new data
    sizes = (("small", small_seconds), ("large", small_seconds * scale))
    with ExitStack() as stack:
        small_db = stack.enter_context(
            bench_database(url, "dynoline_bench_sentinel_small", settings=settings)
        )
        base = small_db.embedded.url("bench") if small_db.embedded is not None else url
        assert base is not None
        large_db = stack.enter_context(bench_database(base, "dynoline_bench_sentinel_large"))
        prepared: list[Table] = []
        columns = read_columns(rules)
        for (name, seconds), db in zip(sizes, (small_db, large_db), strict=True):
            conn = stack.enter_context(connect(db.url))
            log.info("filling %s table: %d units x %d s", name, units, seconds)
            filled = fill(conn, units, seconds, seconds - new_seconds, new_seconds)
            warm, end = warm_up(conn, rules, seconds - new_seconds, new_seconds)
            prepared.append(Table(name, conn, units * seconds, seconds / 60, filled, warm, end))
        info = machine(prepared[0].conn)
        for round_ in range(repeat):
            for tbl in prepared if round_ % 2 == 0 else reversed(prepared):
                measured_pass(tbl, rules)
                assert tbl.warm.until is not None, "the warm-up evaluated the minute before"
                took, tbl.floor_samples = floor_scan(tbl.conn, columns, tbl.warm.until, tbl.end)
                tbl.floors.append(took)
        tables = {t.name: summary(t) for t in prepared}
        for t in prepared:
            tables[t.name]["prototype_full_scan_seconds"] = round(prototype_scan(t.conn), 4)
            t.conn.commit()
        info["load_average_1m_at_end"] = round(os.getloadavg()[0], 2)
    small, large = tables["small"]["pass_seconds_median"], tables["large"]["pass_seconds_median"]
    ratio = large / small if small else math.inf
    target = PASS_TARGETS.get((units, new_seconds))
    return {
        "benchmark": "sentinel",
        "rules": len(rules),
        "rule_kinds": sorted({r.rule.condition.type for r in rules}),
        "units": units,
        "new_seconds": new_seconds,
        "new_samples": units * new_seconds,
        "pass_seconds": small,
        "pass_seconds_large": large,
        "large_over_small": round(ratio, 3),
        "floor_scan_seconds": tables["small"]["floor_scan_seconds_median"],
        "floor_columns": columns,
        "targets": {
            "pass_seconds_max": target,  # None: no target for this shape
            "large_over_small_max": TARGET_RATIO,
            "pass_met": None if target is None else small <= target,
            "ratio_met": ratio <= TARGET_RATIO,
        },
        "tables": tables,
        "machine": info,
    }


def _target(seconds: float | None) -> str:
    return "none for this shape" if seconds is None else f"≤ {seconds}"


def render(result: Result) -> str:
    rows = [
        (name, t["rows"], t["samples_scanned"], t["pass_seconds_median"], t["floor_scan_seconds_median"],
         t["alerts_opened"], t["prototype_full_scan_seconds"])
        for name, t in result["tables"].items()
    ]  # fmt: skip
    out = [
        f"sentinel: {result['rules']} rules over {result['units']} units,"
        f" {result['new_samples']:,} new samples",
        table(("table", "rows", "scanned", "pass s", "floor s", "opened", "prototype scan s"), rows),
        f"pass {result['pass_seconds']} s (target {_target(result['targets']['pass_seconds_max'])});"
        " large/small"
        f" {result['large_over_small']} (target ≤ {TARGET_RATIO})",
        f"floor: the new rows read once, max() of the {len(result['floor_columns'])} columns the rules read,"
        f" grouped by unit, no rule: {result['floor_scan_seconds']} s",
    ]
    out.extend(machine_lines(result["machine"]))
    return "\n".join(out)
