"""Drift baselines → SQL: start a unit's life, and compute its baseline once the life has N samples."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from psycopg import sql

from workloads.catalog import SENSORS
from workloads.sentinel.statement import Binder, Statement


def baseline_lives(
    line: str, samples: int, starts: Sequence[tuple[int, datetime | None]], until: datetime
) -> Statement:
    """Start (or restart) units' lives at a given time or, when None, at the unit's latest cycle-1
    sample (a loop restart), else its first sample."""
    b = Binder()
    p_line = b.bind(line)
    query = sql.SQL(
        "INSERT INTO sentinel_baselines AS s (line, unit_id, samples, life_start)"
        " SELECT {line}, v.unit_id, {n}, coalesce(v.start,"
        " (SELECT t.ts FROM telemetry t WHERE t.line = {line} AND t.unit_id = v.unit_id AND t.ts <= {until}"
        " AND t.cycle = 1 ORDER BY t.ts DESC LIMIT 1),"
        " (SELECT min(t.ts) FROM telemetry t WHERE t.line = {line} AND t.unit_id = v.unit_id))"
        " FROM unnest({units}::integer[], {starts}::timestamptz[]) AS v(unit_id, start)"
        " ON CONFLICT (line, unit_id, samples) DO UPDATE SET life_start = excluded.life_start,"
        " means = NULL, sds = NULL, computed_at = NULL"
        " WHERE excluded.life_start > s.life_start"
    ).format(
        line=p_line,
        n=b.bind(samples),
        until=b.bind(until),
        units=b.bind([u for u, _ in starts]),
        starts=b.bind([s for _, s in starts]),
    )
    return Statement(query, b.params)


def baseline_fill(line: str, samples: int, until: datetime) -> Statement:
    """Compute pending baselines whose life has reached `samples` samples (each once per life)."""
    b = Binder()
    p_line = b.bind(line)
    query = sql.SQL(
        # MATERIALIZED: computed once, whatever the planner guesses about a freshly filled table.
        # Written back through ON CONFLICT (one primary-key probe per unit), not UPDATE … FROM: with
        # the rows just inserted in this transaction the planner estimates one of each and nests the
        # join, 10,000 x 10,000 comparisons on a new line of 10,000 units (minutes).
        "WITH f AS MATERIALIZED (SELECT p.unit_id, p.life_start, {means_named}, {sds_named}"
        " FROM sentinel_baselines p"
        " CROSS JOIN LATERAL (SELECT * FROM telemetry t WHERE t.line = p.line AND t.unit_id = p.unit_id"
        " AND t.ts >= p.life_start AND t.ts <= {until} ORDER BY t.ts LIMIT {n}) early"
        " WHERE p.line = {line} AND p.samples = {n} AND p.means IS NULL"
        " GROUP BY p.unit_id, p.life_start HAVING count(*) = {n})"
        " INSERT INTO sentinel_baselines AS s (line, unit_id, samples, life_start, means, sds, computed_at)"
        " SELECT {line}, f.unit_id, {n}, f.life_start, ARRAY[{means}], ARRAY[{sds}], now() FROM f"
        " ON CONFLICT (line, unit_id, samples) DO UPDATE SET means = excluded.means, sds = excluded.sds,"
        " computed_at = excluded.computed_at WHERE s.means IS NULL"
    ).format(
        means=sql.SQL(", ").join(sql.Identifier(f"m_{s.column}") for s in SENSORS),
        sds=sql.SQL(", ").join(sql.Identifier(f"d_{s.column}") for s in SENSORS),
        means_named=sql.SQL(", ").join(
            sql.SQL("avg({}) AS {}").format(sql.Identifier(s.column), sql.Identifier(f"m_{s.column}"))
            for s in SENSORS
        ),
        sds_named=sql.SQL(", ").join(
            sql.SQL("coalesce(stddev_samp({}), 0) AS {}").format(
                sql.Identifier(s.column), sql.Identifier(f"d_{s.column}")
            )
            for s in SENSORS
        ),
        until=b.bind(until),
        n=b.bind(samples),
        line=p_line,
    )
    return Statement(query, b.params)
