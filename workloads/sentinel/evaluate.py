"""Detection quality, measured: replay a C-MAPSS file through the real store and the real sentinel.

Every unit of the file is written to one line at 1 Hz (sample time = a fixed start + cycle seconds)
with the store's binary COPY writer, `step` cycles at a time, and after each step the sentinel runs one
incremental pass, exactly as a CronJob would. The alerts it leaves are then scored against the known
remaining life (RUL) of each unit at each cycle:

* healthy cycle: RUL > 125 (the knee of the usual piecewise-linear RUL target);
* false alarm: an alert that opens on a healthy cycle (`false_alarms_per_1000` per healthy unit-cycle);
* detection: an alert of the pack is open on some cycle of the degradation window (RUL 1..125); the unit
  is detected at the first such cycle, and its lead is the RUL there (so a lead never exceeds 125);
* run-to-failure file: `detection_rate` is the share of units detected, leads are over detected units;
* test file with `--rul`: the last cycle's true RUL is given, so RUL is known at every cycle; a unit
  is positive when that RUL ≤ 30, "alerted" when any alert opened during its replay, giving
  `precision` and `recall`; `detection_rate` and the leads are over the positive units (the ones
  observed deep enough into degradation for "detected before failure" to mean something).

Quarantine actions are recorded but the replay keeps writing the unit, so its whole life is scored.
"""

from __future__ import annotations

import math
import secrets
import tempfile
import time
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from workloads.errors import DynolineError
from workloads.sample import Reading
from workloads.sentinel.engine import run_line
from workloads.sentinel.rules import LoadedRule, load_rules
from workloads.sentinel.runner import database_errors
from workloads.sources.cmapss import load, load_rul
from workloads.store.connection import connect
from workloads.store.migrate import migrate
from workloads.store.partitions import ensure_partitions
from workloads.store.rows import every
from workloads.store.writer import copy_rows

START = datetime(2026, 1, 1, tzinfo=UTC)
KNEE = 125
POSITIVE_RUL = 30
Conn = psycopg.Connection[tuple[object, ...]]


@dataclass(frozen=True)
class AlertSpan:
    rule: str
    unit_id: int
    opened: int  # cycle of the first sample at which it held
    resolved: int | None  # cycle of the pass that resolved it


def percentile(values: Sequence[float], q: float) -> float | None:
    """Linear interpolation between closest ranks (numpy's default); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def score(
    lives: Mapping[int, tuple[int, int]], alerts: Sequence[AlertSpan], rules: Sequence[str]
) -> dict[str, Any]:
    """Pure scoring. `lives`: unit → (last cycle replayed, true RUL at that cycle; 0 for run-to-failure)."""
    by_unit: dict[int, list[AlertSpan]] = defaultdict(list)
    for a in alerts:
        by_unit[a.unit_id].append(a)
    healthy = 0
    false_alarms = 0
    per_rule = {r: {"opened": 0, "false_alarms": 0, "units_detected": 0, "first_to_detect": 0} for r in rules}
    leads: dict[int, int] = {}
    for unit, (last, rul_end) in lives.items():
        failure = last + rul_end
        knee_cycle = failure - KNEE  # first cycle of the degradation window
        healthy += max(0, min(last, knee_cycle - 1))  # cycles 1..knee_cycle-1 have RUL > 125
        first: dict[str, int] = {}
        for a in by_unit.get(unit, ()):
            per_rule[a.rule]["opened"] += 1
            if failure - a.opened > KNEE:
                false_alarms += 1
                per_rule[a.rule]["false_alarms"] += 1
            # open on some cycle of [knee, failure - 1] that was replayed?
            window_end = min(last, failure - 1)
            start = max(a.opened, knee_cycle)
            if start <= window_end and (a.resolved is None or a.resolved > start):
                first[a.rule] = min(first.get(a.rule, start), start)
        if first:
            detected_at = min(first.values())
            leads[unit] = failure - detected_at
            for rule, cycle in first.items():
                per_rule[rule]["units_detected"] += 1
                if cycle == detected_at:
                    per_rule[rule]["first_to_detect"] += 1
    return {
        "healthy_cycles": healthy,
        "false_alarms": false_alarms,
        "false_alarms_per_1000": round(1000.0 * false_alarms / healthy, 3) if healthy else None,
        "leads": leads,
        "per_rule": per_rule,
    }


def summarise(lives: Mapping[int, tuple[int, int]], alerts: Sequence[AlertSpan], rules: Sequence[str], *,
              with_rul: bool) -> dict[str, Any]:  # fmt: skip
    scored = score(lives, alerts, rules)
    leads: dict[int, int] = scored.pop("leads")
    if with_rul:
        positives = {u for u, (_, rul) in lives.items() if rul <= POSITIVE_RUL}
        alerted = {a.unit_id for a in alerts}
        tp, fp = len(alerted & positives), len(alerted - positives)
        fn = len(positives - alerted)
        tn = len(lives) - tp - fp - fn
        population = sorted(positives)
        extra: dict[str, Any] = {
            "precision": round(tp / (tp + fp), 4) if tp + fp else None,
            "recall": round(tp / (tp + fn), 4) if tp + fn else None,
            "confusion": {"tp": tp, "fp": fp, "fn": fn, "tn": tn},
            "false_positive_ruls": sorted(lives[u][1] for u in alerted - positives),
            "positive_rul": POSITIVE_RUL,
        }
    else:
        population = sorted(lives)
        extra = {}
    detected = [u for u in population if u in leads]
    values = [float(leads[u]) for u in detected]
    median = percentile(values, 0.5)
    p10 = percentile(values, 0.1)
    return {
        "units": len(lives),
        "scored_units": len(population),
        "detection_rate": round(len(detected) / len(population), 4) if population else None,
        "median_lead_cycles": None if median is None else round(median, 1),
        "p10_lead_cycles": None if p10 is None else round(p10, 1),
        **{k: scored[k] for k in ("false_alarms_per_1000", "false_alarms", "healthy_cycles")},
        **extra,
        "missed_units": [u for u in population if u not in leads],
        "per_rule": scored["per_rule"],
    }


def _rows(
    line: str, trajectories: Mapping[int, Sequence[Reading]], lo: int, hi: int
) -> list[tuple[object, ...]]:
    """Samples of cycles (lo, hi] of every unit, stamped at START + cycle seconds."""
    rows: list[tuple[object, ...]] = []
    for unit, readings in trajectories.items():
        for r in readings[lo:hi]:  # C-MAPSS cycles are 1, 2, 3, …: cycle c sits at index c - 1
            rows.append((line, unit, r.cycle, START + timedelta(seconds=r.cycle), *r.settings, *r.sensors))
    return rows


def replay(
    conn: Conn,
    line: str,
    trajectories: Mapping[int, Sequence[Reading]],
    rules: Sequence[LoadedRule],
    step: int,
) -> tuple[list[AlertSpan], int, int]:
    """Write `step` cycles, run a pass, repeat; returns the alerts, passes and samples written."""
    for unit, readings in trajectories.items():
        if [r.cycle for r in readings] != list(range(1, len(readings) + 1)):
            raise DynolineError(f"unit {unit}: evaluate needs cycles 1, 2, 3, … without gaps")
    last = max(len(r) for r in trajectories.values())
    ensure_partitions(conn, START, START + timedelta(seconds=last + 1))
    passes = samples = 0
    for hi in range(step, last + step, step):
        rows = _rows(line, trajectories, hi - step, hi)
        samples += copy_rows(conn, rows)
        conn.commit()
        run_line(
            conn,
            line,
            rules,
            until=START + timedelta(seconds=min(hi, last)),
            grace=timedelta(0),
            backfill=None,
        )
        passes += 1

    def span(rule: str, unit: int, opened: datetime, resolved: datetime | None) -> AlertSpan:
        return AlertSpan(rule, unit, _cycle(opened), None if resolved is None else _cycle(resolved))

    spans = every(
        conn,
        span,
        "SELECT rule, unit_id, first_sample_ts, resolved_sample_ts FROM alerts WHERE line = %s ORDER BY id",
        (line,),
    )
    return spans, passes, samples


def _cycle(ts: object) -> int:
    assert isinstance(ts, datetime)
    return round((ts - START).total_seconds())


def _retarget(rules: Sequence[LoadedRule], line: str) -> list[LoadedRule]:
    names = [r.rule.name for r in rules]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise DynolineError(f"evaluate replays every rule on one line; rule names repeat: {', '.join(dupes)}")
    return [
        LoadedRule(r.rule.model_copy(update={"line": line}), r.source, r.model, r.model_source) for r in rules
    ]


def evaluate(
    dataset: str, rules_path: str, *, rul: str | None = None, step: int = 1, database_url: str | None = None
) -> dict[str, Any]:
    started = time.perf_counter()
    trajectories = load(dataset)
    ruls: tuple[int, ...] | None = None
    if rul is not None:
        ruls = load_rul(rul)
        if len(ruls) != len(trajectories):
            raise DynolineError(
                f"{rul}: {len(ruls)} remaining-life values for {len(trajectories)} units in {dataset}"
            )
    loaded = load_rules(rules_path)
    line = f"evaluate-{secrets.token_hex(4)}"
    rules = _retarget(loaded, line)
    if database_url is None:
        with tempfile.TemporaryDirectory(prefix="dynoline-evaluate-") as tmp:
            from workloads.store.embedded import EmbeddedPostgres

            server = EmbeddedPostgres(Path(tmp) / "pg")
            server.init()
            server.start()
            try:
                url = server.create_database("evaluate")
                spans, passes, samples = _run(url, line, trajectories, rules, step, cleanup=False)
            finally:
                server.stop("immediate")
    else:
        spans, passes, samples = _run(database_url, line, trajectories, rules, step, cleanup=True)
    lives = {
        unit: (len(readings), ruls[i] if ruls is not None else 0)
        for i, (unit, readings) in enumerate(trajectories.items())
    }
    report = summarise(lives, spans, [r.rule.name for r in rules], with_rul=ruls is not None)
    return {
        "dataset": str(dataset),
        "rul": rul,
        "rules": sorted(r.rule.name for r in rules),
        "step_cycles": step,
        "passes": passes,
        "samples": samples,
        "alerts": len(spans),
        **report,
        "duration_seconds": round(time.perf_counter() - started, 2),
    }


Trajectories = Mapping[int, Sequence[Reading]]


def _run(
    url: str, line: str, trajectories: Trajectories, rules: Sequence[LoadedRule], step: int, *, cleanup: bool
) -> tuple[list[AlertSpan], int, int]:
    migrate(url)
    with connect(url) as conn, database_errors(url):
        try:
            return replay(conn, line, trajectories, rules, step)
        finally:
            if cleanup:
                conn.rollback()
                for table in (
                    "telemetry",
                    "alerts",
                    "sentinel_watermarks",
                    "sentinel_baselines",
                    "unit_state",
                ):
                    conn.execute(
                        sql.SQL("DELETE FROM {} WHERE line = %s").format(sql.Identifier(table)), (line,)
                    )
                conn.commit()


def render_report(report: Mapping[str, Any]) -> str:
    lines = [
        f"{report['dataset']}: {report['units']} units, {report['samples']} samples,"
        f" {report['passes']} passes of {len(report['rules'])} rules ({report['duration_seconds']} s)",
        f"  detection rate      {report['detection_rate']}  (of {report['scored_units']} units)",
        f"  median lead         {report['median_lead_cycles']} cycles",
        f"  p10 lead            {report['p10_lead_cycles']} cycles",
        f"  false alarms        {report['false_alarms']} in {report['healthy_cycles']} healthy cycles"
        f" = {report['false_alarms_per_1000']} per 1,000",
    ]
    if "precision" in report:
        lines.append(
            f"  precision / recall  {report['precision']} / {report['recall']}  {report['confusion']}"
        )
    if report["missed_units"]:
        lines.append(f"  missed units        {report['missed_units']}")
    for rule, stats in sorted(report["per_rule"].items()):
        lines.append(
            f"  {rule:32s} opened {stats['opened']:4d}  false {stats['false_alarms']:3d}"
            f"  detected {stats['units_detected']:3d}  first {stats['first_to_detect']:3d}"
        )
    return "\n".join(lines)
