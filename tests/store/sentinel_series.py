"""Hand-built telemetry series and sentinel passes for the sentinel's store tests."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import yaml

from tests.store.epoch import EPOCH
from workloads.api.rule import Rule, model_ref
from workloads.catalog import sensor
from workloads.sentinel.engine import LineResult, run_line
from workloads.sentinel.health_index import resolve_model
from workloads.sentinel.rules import LoadedRule
from workloads.store.partitions import ensure_partitions
from workloads.store.writer import copy_rows

T0 = EPOCH
LINE = "line-t"
# A healthy FD001 reading (unit 1, cycle 1 of train_FD001).
HEALTHY = (
    518.67, 641.82, 1589.70, 1400.60, 14.62, 21.61, 554.36, 2388.06, 9046.19, 1.30, 47.47, 521.66, 2388.02,
    8138.62, 8.4195, 0.03, 392.0, 2388.0, 100.0, 39.06, 23.4190,
)  # fmt: skip


def at(second: float) -> datetime:
    return T0 + timedelta(seconds=second)


def write(
    url: str,
    unit: int,
    values: Sequence[float],
    *,
    sensor_name: str = "T50",
    start: int = 0,
    cycle_start: int = 1,
    line: str = LINE,
) -> None:
    """One sample per second from `start`: the sensor takes `values`, the others stay healthy."""
    idx = sensor(sensor_name).index - 1
    rows = []
    for i, v in enumerate(values):
        sensors = list(HEALTHY)
        sensors[idx] = float(v)
        rows.append((line, unit, cycle_start + i, at(start + i), 0.0, 0.0, 100.0, *sensors))
    with psycopg.connect(url) as conn:
        ensure_partitions(conn, T0, T0 + timedelta(days=1))
        copy_rows(conn, rows)
        conn.commit()


def rules(text: str, line: str = LINE, base: Path | None = None) -> list[LoadedRule]:
    """Rules from a YAML list of rule bodies (name and condition at least); models relative to `base`."""
    out = []
    for doc in yaml.safe_load(text):
        rule = Rule.model_validate({"line": line, **doc})
        model = source = None
        ref = model_ref(rule.condition)
        if ref is not None:
            model, source = resolve_model(ref, base)
        out.append(LoadedRule(rule, "test", model, source))
    return out


def run(url: str, loaded: Sequence[LoadedRule], until: float, *, line: str = LINE) -> LineResult:
    with psycopg.connect(url) as conn:
        return run_line(conn, line, loaded, until=at(until), grace=timedelta(0), backfill=None)


def alerts(url: str, line: str = LINE) -> list[dict[str, Any]]:
    with psycopg.connect(url) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT rule, unit_id, severity, statistic, first_sample_ts, last_sample_ts, worst_value, hits,"
            " resolved_sample_ts, resolved_at IS NULL AS open, evidence FROM alerts WHERE line = %s"
            " ORDER BY rule, unit_id, first_sample_ts",
            (line,),
        )
        names = [d.name for d in cur.description or ()]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def seconds_of(ts: object) -> float:
    assert isinstance(ts, datetime)
    return (ts - T0).total_seconds()


def fingerprint(url: str) -> tuple[tuple[str, object], ...]:
    """Everything the sentinel writes, so a test can prove a run changed nothing."""
    with psycopg.connect(url) as conn:
        out: list[tuple[str, object]] = []
        for table, order in (
            ("alerts", "id"),
            ("sentinel_watermarks", "rule, line"),
            ("sentinel_baselines", "line, unit_id, samples"),
            ("unit_state", "line, unit_id"),
        ):
            digest = f"md5(coalesce(string_agg(t::text, '|' ORDER BY {order}), ''))"
            row = conn.execute(f"SELECT count(*), {digest} FROM {table} t").fetchone()
            out.append((table, row))
        return tuple(out)
