"""One sentinel pass over one line: scan the new samples, judge every rule, apply the alert lifecycle.

A pass holds a per-line advisory lock and commits its alerts, quarantines, baselines and watermarks in
one transaction: two sentinels (a CronJob and a `watch`) never interleave, and a pass that fails
leaves nothing behind, so the next one evaluates the same window again.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

import psycopg

from workloads.api.rule import (
    DriftCondition,
    RateOfChangeCondition,
    RulCondition,
    SustainedCondition,
    ThresholdCondition,
    condition_bound,
    firing,
    upward,
)
from workloads.sentinel import baseline_sql, lifecycle, watermark
from workloads.sentinel import compile as compiler
from workloads.sentinel.rules import LoadedRule

Conn = psycopg.Connection[tuple[object, ...]]


@dataclass
class LineResult:
    line: str
    rules: int
    since: datetime | None = None
    until: datetime | None = None
    samples: int = 0
    units: int = 0
    opened: int = 0
    updated: int = 0
    resolved: int = 0
    quarantined: list[int] = field(default_factory=list)
    opened_by_rule: dict[str, int] = field(default_factory=dict)
    duration_seconds: float = 0.0
    phases: dict[str, float] = field(default_factory=dict)  # seconds spent per phase of the pass

    def summary(self) -> dict[str, Any]:
        return {
            "rules": self.rules,
            "since": self.since.isoformat() if self.since else None,
            "until": self.until.isoformat() if self.until else None,
            "samples_scanned": self.samples,
            "units_scanned": self.units,
            "opened": self.opened,
            "updated": self.updated,
            "resolved": self.resolved,
            "quarantined": sorted(self.quarantined),
            "duration_seconds": round(self.duration_seconds, 4),
            "phases_seconds": {k: round(v, 4) for k, v in self.phases.items()},
        }


def statistic_label(loaded: LoadedRule) -> str:
    cond = loaded.rule.condition
    if isinstance(cond, ThresholdCondition | SustainedCondition):
        return cond.sensor
    if isinstance(cond, RateOfChangeCondition):
        return f"change({cond.sensor}, {cond.window})"
    if isinstance(cond, DriftCondition):
        return f"z({cond.sensor}, {cond.window}, {cond.direction})"
    if isinstance(cond, RulCondition):
        return f"rul_low({cond.model}, {cond.window})"
    return f"hi({cond.model}, {cond.window})"


def _rul_evidence(loaded: LoadedRule, i: int, row: dict[str, Any]) -> dict[str, Any] | None:
    """The remaining-life estimate and its interval (cycles) at the newest sample, for rul rules."""
    cond = loaded.rule.condition
    if not isinstance(cond, RulCondition) or row[f"s{i}"] is None:
        return None
    low, estimate, high = (float(row[k]) for k in (f"s{i}", f"r{i}_estimate", f"r{i}_high"))
    return {"rul": {"estimate": round(estimate, 1), "low": round(low, 1), "high": round(high, 1),
                    "confidence": cond.confidence, "at": row["last_ts"].isoformat()}}  # fmt: skip


def _facts(loaded: LoadedRule) -> lifecycle.RuleFacts:
    rule = loaded.rule
    evidence: dict[str, Any] = {
        "condition": rule.condition.model_dump(mode="json", by_alias=True, exclude_none=True),
    }
    if rule.clear is not None:
        evidence["clear"] = rule.clear.model_dump(mode="json")
    if rule.description:
        evidence["description"] = rule.description
    if loaded.model_source:
        evidence["model"] = loaded.model_source
    return lifecycle.RuleFacts(
        rule.name,
        rule.line,
        rule.severity,
        rule.condition.type,
        statistic_label(loaded),
        rule.action,
        evidence,
    )


def _upward(loaded: LoadedRule) -> bool:
    return upward(condition_bound(loaded.rule.condition)[0])


def _clear(loaded: LoadedRule, value: float | None, holds: bool) -> bool:
    """At the newest sample: is the alert allowed to resolve?"""
    if value is None:
        return False
    clear = loaded.rule.clear
    if clear is not None:
        return firing(clear.op, value, clear.value)
    return not holds


def run_line(
    conn: Conn,
    line: str,
    rules: Sequence[LoadedRule],
    *,
    until: datetime | None = None,
    grace: timedelta = timedelta(seconds=5),
    backfill: timedelta | None = timedelta(minutes=10),
) -> LineResult:
    """Evaluate `rules` (all on `line`) over the samples that arrived since their watermarks; commits."""
    started = time.perf_counter()
    result = LineResult(line, len(rules))
    names = [r.rule.name for r in rules]
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(hashtext('dynoline.sentinel'), hashtext(%s))", (line,))
        # Hash aggregates of 10,000s of units with a few dozen states each stay in memory (not sorted
        # to disk); SET LOCAL ends with this transaction.
        conn.execute("SET LOCAL work_mem = '64MB'")
        marks = watermark.read(conn, line, names)
        lowest = min(marks.values()) if len(marks) == len(names) else watermark.BEGINNING
        upper = until
        if upper is None:
            upper = watermark.upper_bound(watermark.latest_sample(conn, line, lowest), grace)
        if upper is not None:
            groups: dict[datetime, list[LoadedRule]] = defaultdict(list)
            for loaded in rules:
                since = marks.get(loaded.rule.name)
                if since is None:
                    since = (
                        watermark.BEGINNING
                        if backfill is None
                        else max(watermark.BEGINNING, upper - backfill)
                    )
                groups[since].append(loaded)
            advanced: list[str] = []
            for since, group in sorted(groups.items()):
                if upper <= since:
                    continue
                _evaluate(conn, line, group, since, upper, result)
                advanced.extend(r.rule.name for r in group)
                result.since = since if result.since is None else min(result.since, since)
            if advanced:
                watermark.advance(conn, line, advanced, upper)
                result.until = upper
    result.duration_seconds = time.perf_counter() - started
    return result


def _evaluate(
    conn: Conn, line: str, rules: Sequence[LoadedRule], since: datetime, until: datetime, result: LineResult
) -> None:
    clock = time.perf_counter()
    plan = compiler.scan(line, rules, since, until)
    with conn.cursor() as cur:
        # "Every sample after the watermark" is thousands of rows per unit, spread over the newest pages:
        # read them page by page (a bitmap scan: BRIN on ts), never row by row along the primary key,
        # which the planner favours on a large table because it comes grouped by unit.
        cur.execute("SET LOCAL enable_indexscan = off")
        cur.execute(plan.query, plan.params)
        names = [d.name for d in cur.description or ()]
        rows: list[dict[str, Any]] = [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
        cur.execute("RESET enable_indexscan")
    if rows:
        result.samples += int(rows[0]["total_samples"])
        result.units = max(result.units, int(rows[0]["total_units"]))
    rows = [r for r in rows if r["unit_id"] is not None]
    if not rows:
        return
    clock = _lap(result, "scan", clock)
    _upkeep_baselines(conn, line, plan.baseline_sizes, rows, until)
    clock = _lap(result, "baselines", clock)

    by_unit = {int(r["unit_id"]): r for r in rows}
    opened = lifecycle.open_alerts(conn, line, [r.rule.name for r in rules], list(by_unit))

    # Which (rule, unit) pairs need per-sample evidence, and which sustained ones an exact check.
    sample_rules = [
        (i, lr)
        for i, lr in enumerate(rules)
        if isinstance(lr.rule.condition, ThresholdCondition | SustainedCondition)
    ]
    wanted: dict[int, list[int]] = {}
    exact: dict[int, list[int]] = {}
    for i, lr in sample_rules:
        units = [u for u, r in by_unit.items() if r["n_new"] and (r[f"f{i}"] or (lr.rule.name, u) in opened)]
        if units:
            wanted[i] = units
        if isinstance(lr.rule.condition, SustainedCondition) and units:
            exact[i] = units  # held or not is judged per sample, for candidates and open alerts alike

    details: dict[int, dict[str, Any]] = {}  # unit → its row of every chunk's columns
    order = [i for i, _ in sample_rules if i in wanted]
    slots: dict[int, tuple[int, int]] = {}  # rule index → (chunk, position in the chunk)
    chunks = [
        order[k : k + compiler.MAX_DETAIL_RULES] for k in range(0, len(order), compiler.MAX_DETAIL_RULES)
    ]
    for c, chunk in enumerate(chunks):
        plan_d = compiler.detail(line, [rules[i] for i in chunk], [wanted[i] for i in chunk], since, until)
        with conn.cursor() as cur:
            cur.execute(plan_d.query, plan_d.params)
            names = [d.name for d in cur.description or ()]
            for row in cur.fetchall():
                unit_row = details.setdefault(cast(int, row[0]), {})  # unit_id, an integer column
                unit_row.update({f"{c}:{k}": v for k, v in zip(names, row, strict=True)})
        slots.update({i: (c, pos) for pos, i in enumerate(chunk)})
    clock = _lap(result, "detail", clock)
    exact_rows: dict[tuple[int, int], dict[str, Any]] = {}
    for i, units in exact.items():
        plan_s = compiler.sustained(line, rules[i], units, since, until)
        with conn.cursor() as cur:
            cur.execute(plan_s.query, plan_s.params)
            names = [d.name for d in cur.description or ()]
            for row in cur.fetchall():
                exact_rows[(i, cast(int, row[0]))] = dict(zip(names, row, strict=True))

    clock = _lap(result, "sustained", clock)
    observations: list[tuple[int, lifecycle.Observation]] = []
    for i, lr in enumerate(rules):
        cond = lr.rule.condition
        op, bound = condition_bound(cond)
        if isinstance(cond, ThresholdCondition | SustainedCondition):
            if i not in wanted:
                continue
            ck, pos = slots[i]
            for u in wanted[i]:
                d = details.get(u, {})
                if f"{ck}:latest_ts" not in d:
                    continue  # no sample in the window after all
                latest = d[f"{ck}:latest{pos}"]
                holds = firing(op, latest, bound)
                if isinstance(cond, SustainedCondition):
                    e = exact_rows.get((i, u))
                    if e is None:
                        continue
                    hits = int(e["held"])
                    fired, first, last, worst = hits > 0, e["first"], e["last"], e["worst"]
                    holds = bool(e["held_at_end"])
                else:
                    hits = int(d[f"{ck}:c{pos}"])
                    fired = hits > 0
                    first, last, worst = (
                        d[f"{ck}:first{pos}"],
                        d[f"{ck}:last{pos}"],
                        d[f"{ck}:worst{pos}"],
                    )
                obs = lifecycle.Observation(
                    lr.rule.name, u, bool(fired), first, last, worst, int(hits),
                    _clear(lr, latest, holds), d[f"{ck}:latest_ts"], latest,
                )  # fmt: skip
                observations.append((i, obs))
        else:
            for u, r in by_unit.items():
                stat = r[f"s{i}"]
                if stat is None or not r["n_new"]:
                    continue
                fired = bool(r[f"f{i}"])
                if not fired and (lr.rule.name, u) not in opened:
                    continue
                obs = lifecycle.Observation(
                    lr.rule.name, u, fired, r["last_ts"], r["last_ts"], float(stat), 1 if fired else 0,
                    _clear(lr, float(stat), fired), r["last_ts"], float(stat), _rul_evidence(lr, i, r),
                )  # fmt: skip
                observations.append((i, obs))

    to_open = [
        (rules[i].rule.name, o.unit_id)
        for i, o in observations
        if (rules[i].rule.name, o.unit_id) not in opened and o.fired
    ]
    previous = lifecycle.previous_episodes(conn, line, to_open)
    changes: list[tuple[lifecycle.RuleFacts, lifecycle.Change]] = []
    facts = [_facts(lr) for lr in rules]
    for i, obs in observations:
        key = (rules[i].rule.name, obs.unit_id)
        change = lifecycle.decide(
            opened.get(key), previous.get(key), obs, upward=_upward(rules[i]), until=until
        )
        if change is not None:
            changes.append((facts[i], change))
    applied = lifecycle.apply(conn, changes, since=since, until=until)
    _lap(result, "lifecycle", clock)
    result.opened += applied.opened
    result.updated += applied.updated
    result.resolved += applied.resolved
    result.quarantined.extend(applied.quarantined)
    for name, n in applied.opened_by_rule.items():
        result.opened_by_rule[name] = result.opened_by_rule.get(name, 0) + n


def _lap(result: LineResult, phase: str, since: float) -> float:
    now = time.perf_counter()
    result.phases[phase] = result.phases.get(phase, 0.0) + now - since
    return now


def _upkeep_baselines(
    conn: Conn, line: str, sizes: Sequence[int], rows: Sequence[dict[str, Any]], until: datetime
) -> None:
    """Start new lives (first sight, or a restart at cycle 1) and fill baselines that became complete."""
    for n in sizes:
        starts: list[tuple[int, datetime | None]] = []
        pending = False
        for r in rows:
            state = r[f"b{n}"]
            if state in ("missing", "stale"):
                starts.append((int(r["unit_id"]), r["restart_ts"]))
            if state != "ready":
                pending = True
        if starts:
            plan = baseline_sql.baseline_lives(line, n, starts, until)
            conn.execute(plan.query, plan.params)
        if pending:
            plan = baseline_sql.baseline_fill(line, n, until)
            conn.execute(plan.query, plan.params)
