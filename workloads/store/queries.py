"""Read queries the product runs against telemetry, kept in one place so the benchmark times the real ones.

"Latest sample for every unit" reads `telemetry_latest` (migration 0005): one row per unit, kept in
the writer's transaction, so the question is a single range scan of its primary key (line, unit_id),
whatever the size of telemetry. Units registered in `unit_state` that have never sent a sample have
no row there and are left out of the answer (as they were before: a unit without a sample has no
"latest sample"); a quarantined unit keeps the last sample it sent.

The probes of telemetry itself are kept as the benchmark's baselines, each giving the same answer:
`LATEST_PER_UNIT_PROBE` drives one backward probe of telemetry's primary key (line, unit_id, ts) per
registered unit, bounded by a time hint; `LATEST_PER_UNIT_UNHINTED` is the same probe without the
hint; `LATEST_PER_UNIT_NAIVE` is DISTINCT ON, which reads every sample of the line.

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

import psycopg
from psycopg import sql

from workloads.catalog import TELEMETRY_COLUMNS

Conn = psycopg.Connection[tuple[object, ...]]
Row = tuple[object, ...]

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

# The product's query: a range scan of telemetry_latest's primary key, already in unit order.
LATEST_PER_UNIT = sql.SQL(
    "SELECT {cols} FROM telemetry_latest WHERE line = %(line)s ORDER BY unit_id"
).format(cols=_COLUMNS)

LATEST_PER_UNIT_NAIVE = sql.SQL(
    "SELECT DISTINCT ON (unit_id) {cols} FROM telemetry WHERE line = %(line)s ORDER BY unit_id, ts DESC"
).format(cols=_COLUMNS)


def latest_per_unit(conn: Conn, line: str) -> list[Row]:
    """The newest sample of every unit of `line` that has sent one, in unit order.

    Rows are in `catalog.TELEMETRY_COLUMNS` order. Fetched in binary: 10,000 rows of 24 doubles cost
    noticeably less to send and decode that way than as text.
    """
    with conn.cursor(binary=True) as cur:
        cur.execute(LATEST_PER_UNIT, params(line))
        return cur.fetchall()


def params(line: str, window: timedelta = HINT_WINDOW) -> dict[str, object]:
    """The parameters every query here takes (only the hinted probe uses `window`)."""
    return {"line": line, "window": window}
