"""Read queries the product runs against telemetry, kept in one place so the benchmark times the real ones.

"Latest sample for every unit" is driven by `unit_state` (one row per registered unit) and probes
telemetry's primary key (line, unit_id, ts) backwards once per unit: O(units · log rows), never a
scan of the samples. The naive `DISTINCT ON` form reads every sample of the line and is kept only as
the benchmark's baseline.
"""

from __future__ import annotations

import psycopg
from psycopg import sql

from workloads.catalog import TELEMETRY_COLUMNS

Conn = psycopg.Connection[tuple[object, ...]]
Row = tuple[object, ...]

_T_COLUMNS = sql.SQL(", ").join(sql.Identifier("t", c) for c in TELEMETRY_COLUMNS)
_COLUMNS = sql.SQL(", ").join(sql.Identifier(c) for c in TELEMETRY_COLUMNS)

LATEST_PER_UNIT = sql.SQL(
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


def latest_per_unit(conn: Conn, line: str) -> list[Row]:
    """The newest sample of every registered unit of `line` that has one, in unit order.

    Rows are in `catalog.TELEMETRY_COLUMNS` order. Fetched in binary: 10,000 rows of 24 doubles
    cost noticeably less to send and decode that way than as text.
    """
    with conn.cursor(binary=True) as cur:
        cur.execute(LATEST_PER_UNIT, {"line": line})
        return cur.fetchall()
