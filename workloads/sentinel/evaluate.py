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

import contextlib
import math
import secrets
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from workloads.errors import DynolineError
from workloads.sample import Reading
from workloads.sentinel import crossval
from workloads.sentinel.engine import run_line
from workloads.sentinel.rules import LoadedRule, load_rules
from workloads.sentinel.runner import database_errors
from workloads.sentinel.scoring import AlertSpan, by_severity, summarise
from workloads.sources.cmapss import load, load_rul
from workloads.store.connection import connect
from workloads.store.migrate import migrate
from workloads.store.partitions import ensure_partitions
from workloads.store.rows import every
from workloads.store.writer import copy_rows

START = datetime(2026, 1, 1, tzinfo=UTC)
Conn = psycopg.Connection[tuple[object, ...]]
Trajectories = Mapping[int, Sequence[Reading]]


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

    def span(rule: str, unit: int, opened: datetime, resolved: datetime | None, severity: str) -> AlertSpan:
        return AlertSpan(rule, unit, _cycle(opened), None if resolved is None else _cycle(resolved), severity)

    spans = every(
        conn,
        span,
        "SELECT rule, unit_id, first_sample_ts, resolved_sample_ts, severity FROM alerts"
        " WHERE line = %s ORDER BY id",
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
    dataset: str,
    rules_path: str,
    *,
    rul: str | None = None,
    step: int = 1,
    database_url: str | None = None,
    folds: int | None = None,
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
    if folds is not None and rul is not None:
        raise DynolineError("--folds splits a run-to-failure file; it does not take --rul")
    loaded = load_rules(rules_path)
    head: dict[str, Any] = {"dataset": str(dataset), "rul": rul, "rules": sorted(r.rule.name for r in loaded),
                            "step_cycles": step}  # fmt: skip
    with _database(database_url) as url:
        if folds is not None:
            report = {
                **head,
                "folds": folds,
                **_kfold(url, trajectories, loaded, step, folds, Path(dataset).name),
            }
        else:
            end_rul = dict(zip(trajectories, ruls, strict=True)) if ruls is not None else None
            report = {**head, **_scored(url, trajectories, end_rul, loaded, step)}
    report["duration_seconds"] = round(time.perf_counter() - started, 2)
    return report


@contextlib.contextmanager
def _database(database_url: str | None) -> Iterator[str]:
    """The given database, or a throw-away embedded PostgreSQL."""
    if database_url is not None:
        yield database_url
        return
    with tempfile.TemporaryDirectory(prefix="dynoline-evaluate-") as tmp:
        from workloads.store.embedded import EmbeddedPostgres

        server = EmbeddedPostgres(Path(tmp) / "pg")
        server.init()
        server.start()
        try:
            yield server.create_database("evaluate")
        finally:
            server.stop("immediate")


def _scored(
    url: str,
    trajectories: Trajectories,
    ruls: Mapping[int, int] | None,
    loaded: Sequence[LoadedRule],
    step: int,
) -> dict[str, Any]:
    """Replay into a line of its own (deleted afterwards) and score: all severities, each, the RUL error."""
    line = f"evaluate-{secrets.token_hex(4)}"
    rules = _retarget(loaded, line)
    spans, passes, samples = _run(url, line, trajectories, rules, step, cleanup=True)
    lives = {unit: (len(r), ruls[unit] if ruls is not None else 0) for unit, r in trajectories.items()}
    report: dict[str, Any] = {"passes": passes, "samples": samples, "alerts": len(spans)}
    report.update(summarise(lives, spans, [r.rule.name for r in rules], with_rul=ruls is not None))
    report["by_severity"] = by_severity(
        lives, spans, {r.rule.name: r.rule.severity for r in rules}, with_rul=ruls is not None
    )
    if ruls is not None:
        report["rul_estimates"] = crossval.rul_errors(trajectories, ruls, loaded)
    return report


def _kfold(
    url: str, trajectories: Trajectories, loaded: Sequence[LoadedRule], step: int, folds: int, source: str
) -> dict[str, Any]:
    """Each fold replayed with models refitted on the others, run to failure and truncated; the units'
    outcomes pooled over the folds and scored once (so every unit counts once, out of sample)."""
    held: dict[str, dict[int, Sequence[Reading]]] = {"run_to_failure": {}, "truncated": {}}
    ruls: dict[int, int] = {}
    spans: dict[str, list[AlertSpan]] = {"run_to_failure": [], "truncated": []}
    per_fold: list[dict[str, Any]] = []
    judged: list[LoadedRule] = list(loaded)
    rul_rules: list[LoadedRule] = []
    for k, units in enumerate(crossval.split(list(trajectories), folds)):
        training = {u: r for u, r in trajectories.items() if u not in units}
        test = {u: trajectories[u] for u in units}
        judged = crossval.refit(loaded, training, f"{source} without fold {k + 1} of {folds}")
        models = {r.model_source: r.model for r in judged if r.model is not None}
        per_fold.append(
            {"units": units, "models": {s: crossval.model_scores(m, test) for s, m in models.items()}}
        )
        cut, cut_ruls = crossval.truncate(test)
        ruls.update(cut_ruls)
        for name, data in (("run_to_failure", test), ("truncated", cut)):
            line = f"evaluate-{secrets.token_hex(4)}"
            found, _, _ = _run(url, line, data, _retarget(judged, line), step, cleanup=True)
            spans[name] += found
            held[name].update(data)
        errors = crossval.rul_errors(cut, cut_ruls, judged)
        per_fold[-1]["rul_estimates"] = errors
        rul_rules = [r for r in judged if r.rule.name in errors]
    severities = {r.rule.name: r.rule.severity for r in loaded}
    names = [r.rule.name for r in loaded]
    out: dict[str, Any] = {"per_fold": per_fold}
    for name in ("run_to_failure", "truncated"):
        with_rul = name == "truncated"
        lives = {u: (len(r), ruls[u] if with_rul else 0) for u, r in held[name].items()}
        out[name] = {
            **summarise(lives, spans[name], names, with_rul=with_rul),
            "by_severity": by_severity(lives, spans[name], severities, with_rul=with_rul),
        }
    errs = [f["rul_estimates"] for f in per_fold]
    out["truncated"]["rul_estimates"] = {
        r.rule.name: _pooled_rmse([e[r.rule.name] for e in errs]) for r in rul_rules
    }
    return out


def _pooled_rmse(parts: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """RMSEs of the folds pooled over their units."""
    n = sum(p["units"] for p in parts)

    def pool(key: str) -> float | None:
        if not n:
            return None
        return round(math.sqrt(sum(p["units"] * p[key] ** 2 for p in parts if p["units"]) / n), 2)

    return {"units": n, "rmse_cycles": pool("rmse_cycles"), "rmse_capped_cycles": pool("rmse_capped_cycles")}


def _run(
    url: str, line: str, trajectories: Trajectories, rules: Sequence[LoadedRule], step: int, *, cleanup: bool
) -> tuple[list[AlertSpan], int, int]:
    """Migrate, replay, and delete the line's rows again when `cleanup`."""
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
    for severity, tier in report.get("by_severity", {}).items():
        line = (
            f"  {severity:9s} tier      detected {tier['detection_rate']}, lead median"
            f" {tier['median_lead_cycles']} / p10 {tier['p10_lead_cycles']},"
            f" false alarms {tier['false_alarms_per_1000']} per 1,000"
        )
        if "precision" in tier:
            line += f"; RUL <= {tier['positive_rul']}: precision {tier['precision']} recall {tier['recall']}"
        lines.append(line)
    for rule, stats in sorted(report["per_rule"].items()):
        lines.append(
            f"  {rule:32s} opened {stats['opened']:4d}  false {stats['false_alarms']:3d}"
            f"  detected {stats['units_detected']:3d}  first {stats['first_to_detect']:3d}"
        )
    return "\n".join(lines)
