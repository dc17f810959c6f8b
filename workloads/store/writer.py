"""Getting telemetry rows into PostgreSQL: plain binary COPY normally, an idempotent path for retries.

COPY has no ON CONFLICT, so a batch whose commit outcome is unknown (the connection dropped during
COMMIT) cannot simply be COPYed again. `insert_rows_idempotent` stages the rows in a temporary table
and inserts them with ON CONFLICT DO NOTHING, so rows that did make it are skipped, not duplicated.
Neither function commits: the caller owns the transaction (and decides what a failure means).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import psycopg
from psycopg import sql

from workloads.catalog import SENSOR_COLUMNS, SETTING_COLUMNS, TELEMETRY_COLUMNS

Conn = psycopg.Connection[tuple[object, ...]]
Row = Sequence[object]

# PostgreSQL types of TELEMETRY_COLUMNS, for binary COPY (which sends no type information itself).
COPY_TYPES: tuple[str, ...] = ("text", "int4", "int4", "timestamptz") + ("float8",) * (
    len(SETTING_COLUMNS) + len(SENSOR_COLUMNS)
)
assert len(COPY_TYPES) == len(TELEMETRY_COLUMNS)

STAGE_TABLE = "dynoline_stage"

_COLUMNS = sql.SQL(", ").join(sql.Identifier(c) for c in TELEMETRY_COLUMNS)
_COPY_TELEMETRY = sql.SQL("COPY telemetry ({}) FROM STDIN (FORMAT BINARY)").format(_COLUMNS)
_COPY_STAGE = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(sql.Identifier(STAGE_TABLE), _COLUMNS)
_CREATE_STAGE = sql.SQL("CREATE TEMPORARY TABLE IF NOT EXISTS {} (LIKE telemetry INCLUDING DEFAULTS)").format(
    sql.Identifier(STAGE_TABLE)
)
_MERGE_STAGE = sql.SQL(
    "INSERT INTO telemetry ({cols}) SELECT {cols} FROM {stage} ON CONFLICT DO NOTHING"
).format(cols=_COLUMNS, stage=sql.Identifier(STAGE_TABLE))


def _copy(conn: Conn, statement: sql.Composed, rows: Iterable[Row]) -> int:
    count = 0
    with conn.cursor() as cur, cur.copy(statement) as copy:
        copy.set_types(list(COPY_TYPES))
        for row in rows:
            copy.write_row(row)
            count += 1
    return count


def copy_rows(conn: Conn, rows: Iterable[Row]) -> int:
    """Binary COPY rows (TELEMETRY_COLUMNS order) into telemetry; returns how many were sent.

    Fails as a whole on any key that is already stored; retry such a batch with `insert_rows_idempotent`.
    """
    return _copy(conn, _COPY_TELEMETRY, rows)


def insert_rows_idempotent(conn: Conn, rows: Iterable[Row]) -> int:
    """Store rows that are not stored yet, skip the rest; returns how many were new.

    The staging table lives as long as the session and is truncated after each use (a temporary table
    is never autovacuumed, so DELETE would leave it bloated).
    """
    conn.execute(_CREATE_STAGE)
    _copy(conn, _COPY_STAGE, rows)
    with conn.cursor() as cur:
        cur.execute(_MERGE_STAGE)
        inserted = cur.rowcount
        cur.execute(sql.SQL("TRUNCATE {}").format(sql.Identifier(STAGE_TABLE)))
    return max(inserted, 0)
