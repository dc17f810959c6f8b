"""Read queries the product runs against telemetry, kept in one place so the benchmark times the real ones.

"Latest sample for every unit" is driven by `unit_state` (one row per registered unit) and probes
telemetry's primary key (line, unit_id, ts) backwards once per unit: O(units · log rows), never a
scan of the samples. The naive `DISTINCT ON` form reads every sample of the line and is kept only as
the benchmark's baseline.

Why the probe carries a time hint: a backward index scan with LIMIT 1 still reads every entry of the
unit on the leaf page it lands on (about 250 at 1 Hz), which is most of its cost. Bounding the probe
by `ts > since`, where `since` is a little before the newest sample of a few units, leaves a handful of
entries per page; a unit with nothing that recent (stopped, lagging, new) falls through to the
unbounded probe. The answer is the same whatever the hint: the bounded probe can only find the
unit's newest row or nothing.
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

LATEST_PER_UNIT = sql.SQL(
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


def latest_per_unit(conn: Conn, line: str, *, window: timedelta = HINT_WINDOW) -> list[Row]:
    """The newest sample of every registered unit of `line` that has one, in unit order.

    Rows are in `catalog.TELEMETRY_COLUMNS` order. `window` only tunes speed (see the module
    docstring), never the answer. Fetched in binary: 10,000 rows of 24 doubles cost noticeably less
    to send and decode that way than as text.
    """
    with conn.cursor(binary=True) as cur:
        cur.execute(LATEST_PER_UNIT, params(line, window))
        return cur.fetchall()


def params(line: str, window: timedelta = HINT_WINDOW) -> dict[str, object]:
    """The parameters every query here takes (the unhinted and naive ones ignore `window`)."""
    return {"line": line, "window": window}
