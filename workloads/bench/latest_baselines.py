"""The ways of answering "latest sample for every unit" that the product replaced, kept as baselines.

They read telemetry itself and each gives the product's answer (`store.queries.LATEST_PER_UNIT`, a
read of `telemetry_latest`): `LATEST_PER_UNIT_PROBE` drives one backward probe of telemetry's
primary key (line, unit_id, ts) per registered unit, bounded by a time hint;
`LATEST_PER_UNIT_UNHINTED` is the same probe without the hint; `LATEST_PER_UNIT_NAIVE` is DISTINCT
ON, which reads every sample of the line; `EXACT_KEY_PROBE` is an experiment on a structure the
product does not have (each unit's last ts), the floor of any per-unit probe.

Why the probe carries a time hint: a backward index scan with LIMIT 1 still reads every entry of the
unit on the leaf page it lands on (about 250 at 1 Hz), which is most of its cost. Bounding the probe
by `ts > since`, where `since` is a little before the newest sample of a few units, leaves a handful of
entries per page; a unit with nothing that recent (stopped, lagging, new) falls through to the
unbounded probe. The answer is the same whatever the hint: the bounded probe can only find the
unit's newest row or nothing. Even so it costs ~5 µs per unit in the executor (~55 ms for 10,000),
which is why the product reads the latest table instead.
"""

from __future__ import annotations

from datetime import timedelta

from psycopg import sql

from workloads.catalog import TELEMETRY_COLUMNS

HINT_UNITS = 8  # units whose newest sample sets the hint (the lowest ids: one per shard up to 8 shards)
HINT_WINDOW = timedelta(seconds=10)

_T_COLUMNS = sql.SQL(", ").join(sql.Identifier("t", c) for c in TELEMETRY_COLUMNS)
_COLUMNS = sql.SQL(", ").join(sql.Identifier(c) for c in TELEMETRY_COLUMNS)

LATEST_PER_UNIT_PROBE = sql.SQL(
    "WITH hint AS MATERIALIZED ("
    " SELECT max(newest.ts) - %(window)s::interval AS since"
    " FROM (SELECT unit_id FROM unit_state WHERE line = %(line)s AND NOT quarantined"
    " ORDER BY unit_id LIMIT {hint_units}) h"
    " CROSS JOIN LATERAL (SELECT t.ts FROM telemetry t WHERE t.line = %(line)s AND t.unit_id = h.unit_id"
    " ORDER BY t.ts DESC LIMIT 1) newest"
    ")"
    " SELECT {t_cols} FROM unit_state u"
    " CROSS JOIN LATERAL ("
    "(SELECT {cols} FROM telemetry t WHERE t.line = u.line AND t.unit_id = u.unit_id"
    " AND t.ts > (SELECT since FROM hint) ORDER BY t.ts DESC LIMIT 1)"
    " UNION ALL"
    " (SELECT {cols} FROM telemetry t WHERE t.line = u.line AND t.unit_id = u.unit_id"
    " ORDER BY t.ts DESC LIMIT 1)"
    " LIMIT 1"
    ") t"
    " WHERE u.line = %(line)s ORDER BY u.unit_id"
).format(t_cols=_T_COLUMNS, cols=_COLUMNS, hint_units=sql.Literal(HINT_UNITS))

LATEST_PER_UNIT_UNHINTED = sql.SQL(
    "SELECT {t_cols} FROM unit_state u"
    " CROSS JOIN LATERAL ("
    "SELECT {cols} FROM telemetry t WHERE t.line = u.line AND t.unit_id = u.unit_id"
    " ORDER BY t.ts DESC LIMIT 1"
    ") t"
    " WHERE u.line = %(line)s ORDER BY u.unit_id"
).format(t_cols=_T_COLUMNS, cols=_COLUMNS)

LATEST_PER_UNIT_NAIVE = sql.SQL(
    "SELECT DISTINCT ON (unit_id) {cols} FROM telemetry WHERE line = %(line)s ORDER BY unit_id, ts DESC"
).format(cols=_COLUMNS)

# Experiment: a structure the product does not have, built in the benchmark's schema to price it.
EXACT_KEY_PROBE = sql.SQL(
    "SELECT {t_cols} FROM bench_unit_last u JOIN telemetry t"
    " ON t.line = u.line AND t.unit_id = u.unit_id AND t.ts = u.last_ts"
    " WHERE u.line = %(line)s ORDER BY u.unit_id"
).format(t_cols=_T_COLUMNS)


def params(line: str, window: timedelta = HINT_WINDOW) -> dict[str, object]:
    """The parameters every query here (and the product's) takes; only the hinted probe uses `window`."""
    return {"line": line, "window": window}
