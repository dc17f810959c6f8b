"""Getting telemetry rows into PostgreSQL: plain binary COPY normally, an idempotent path for retries.

COPY has no ON CONFLICT, so a batch whose commit outcome is unknown (the connection dropped during
COMMIT) cannot simply be COPYed again. `insert_rows_idempotent` stages the rows in a temporary table
and inserts them with ON CONFLICT DO NOTHING, so rows that did make it are skipped, not duplicated.
`upsert_latest` moves `telemetry_latest` (one row per unit, see migration 0005) forward, never back: the
simulator calls it in the transaction of either path (`latestInterval: 0s`), or every interval on a
connection of its own for the batches committed since (workloads/simulator/latest.py). `catch_up_latest`
repairs what a killed process had committed but not yet carried over.
None of these functions commits: the caller owns the transaction (and decides what a failure means).

The two staging tables are temporary, so they live as long as the session. `prepare_session` creates
them once on a new connection (the caller commits right after; the simulator's delivery does on every
connect and reconnect) and marks that connection, so its batches send no `CREATE … IF NOT EXISTS`.
A table whose creation committed survives later rollbacks, so the mark stays true for the session.
On a connection that was never prepared, each call creates the table if needed, as a one-off caller
(a benchmark, a test) expects.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable, Sequence
from typing import TypeVar

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
LATEST_STAGE_TABLE = "dynoline_latest_stage"

_COLUMNS = sql.SQL(", ").join(sql.Identifier(c) for c in TELEMETRY_COLUMNS)
_COPY_TELEMETRY = sql.SQL("COPY telemetry ({}) FROM STDIN (FORMAT BINARY)").format(_COLUMNS)
_COPY_STAGE = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(sql.Identifier(STAGE_TABLE), _COLUMNS)
_CREATE_STAGE = sql.SQL("CREATE TEMPORARY TABLE IF NOT EXISTS {} (LIKE telemetry INCLUDING DEFAULTS)").format(
    sql.Identifier(STAGE_TABLE)
)
_MERGE_STAGE = sql.SQL(
    "INSERT INTO telemetry ({cols}) SELECT {cols} FROM {stage} ON CONFLICT DO NOTHING"
).format(cols=_COLUMNS, stage=sql.Identifier(STAGE_TABLE))
_TRUNCATE_STAGE = sql.SQL("TRUNCATE {}").format(sql.Identifier(STAGE_TABLE))

_COPY_LATEST_STAGE = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(
    sql.Identifier(LATEST_STAGE_TABLE), _COLUMNS
)
# ON COMMIT DELETE ROWS: the commit empties it in place, so the hot path needs no TRUNCATE round trip
# (and no new relfilenode per batch), and a temporary table, which autovacuum never visits, cannot bloat.
_CREATE_LATEST_STAGE = sql.SQL(
    "CREATE TEMPORARY TABLE IF NOT EXISTS {} (LIKE telemetry_latest INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
).format(sql.Identifier(LATEST_STAGE_TABLE))
_NEWER_WINS = sql.SQL(", ").join(
    sql.SQL("{c} = excluded.{c}").format(c=sql.Identifier(c)) for c in TELEMETRY_COLUMNS[2:]
)
# Only a strictly newer sample replaces the stored one: a replayed older batch never moves a unit back.
# The staged rows are consumed (DELETE … RETURNING) by the same statement, so a second call in the same
# transaction never sees them again.
_MERGE_LATEST = sql.SQL(
    "WITH staged AS (DELETE FROM {stage} RETURNING {cols})"
    " INSERT INTO telemetry_latest AS l ({cols}) SELECT {cols} FROM staged"
    " ON CONFLICT (line, unit_id) DO UPDATE SET {updates} WHERE l.ts < excluded.ts"
).format(
    cols=_COLUMNS,
    stage=sql.Identifier(LATEST_STAGE_TABLE),
    updates=_NEWER_WINS,
)
_TS = TELEMETRY_COLUMNS.index("ts")
# For each given unit, its newest telemetry row if newer than its latest-table row: one backward probe
# of the primary key per unit (run-time pruning skips partitions older than the stored latest sample).
_CATCH_UP_LATEST = sql.SQL(
    "INSERT INTO telemetry_latest AS l ({cols})"
    " SELECT {picked} FROM unnest(%(units)s::int[]) AS u(unit_id)"
    " CROSS JOIN LATERAL (SELECT * FROM telemetry x WHERE x.line = %(line)s AND x.unit_id = u.unit_id"
    " AND x.ts > coalesce((SELECT y.ts FROM telemetry_latest y WHERE y.line = %(line)s"
    " AND y.unit_id = u.unit_id), '-infinity') ORDER BY x.ts DESC LIMIT 1) t"
    " ON CONFLICT (line, unit_id) DO UPDATE SET {updates} WHERE l.ts < excluded.ts"
).format(
    cols=_COLUMNS,
    picked=sql.SQL(", ").join(sql.Identifier("t", c) for c in TELEMETRY_COLUMNS),
    updates=_NEWER_WINS,
)


# Connections whose staging tables exist and are committed (`prepare_session`); weak, so a closed
# connection leaves, and a reconnect, a new connection object, starts unprepared.
_prepared: weakref.WeakSet[Conn] = weakref.WeakSet()


def prepare_session(conn: Conn) -> None:
    """Create this session's staging tables; commit right after, then its batches skip the CREATE.

    Call it on a connection with no work of its own in the transaction: the mark is set here, and it
    is only true once this transaction commits (a failed commit leaves a connection to be closed).
    """
    conn.execute(_CREATE_STAGE)
    conn.execute(_CREATE_LATEST_STAGE)
    _prepared.add(conn)


def _ensure(conn: Conn, create: sql.Composed) -> None:
    if conn not in _prepared:
        conn.execute(create)


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
    _ensure(conn, _CREATE_STAGE)
    _copy(conn, _COPY_STAGE, rows)
    with conn.cursor() as cur:
        cur.execute(_MERGE_STAGE)
        inserted = cur.rowcount
        cur.execute(_TRUNCATE_STAGE)
    return max(inserted, 0)


Key = tuple[object, object]  # (line, unit_id)


R = TypeVar("R", bound=Row)


def fold_newest(newest: dict[Key, R], rows: Iterable[R]) -> None:
    """Keep in `newest`, per (line, unit_id), the row with the greatest ts seen so far (ties: the first)."""
    get = newest.get
    ts = _TS
    for row in rows:
        key = (row[0], row[1])
        held = get(key)
        if held is None or held[ts] < row[ts]:  # type: ignore[operator]
            newest[key] = row


def newest_per_unit(rows: Iterable[Row]) -> list[Row]:
    """The newest row of each (line, unit_id) among rows, in one pass (ties: the first one seen)."""
    newest: dict[Key, Row] = {}
    fold_newest(newest, rows)
    return list(newest.values())


def upsert_latest(conn: Conn, rows: Iterable[Row]) -> int:
    """Move `telemetry_latest` forward to the newest row per unit of a batch; returns rows staged.

    Call it in the transaction that stores the batch. One COPY of at most (distinct units) rows into a
    session-lived staging table, then one statement that moves them into `telemetry_latest`.
    """
    return upsert_newest(conn, newest_per_unit(rows))


def upsert_newest(conn: Conn, newest: Sequence[Row]) -> int:
    """`upsert_latest` for rows already one per unit at most (the keeper's `fold_newest`): no second pass."""
    if not newest:
        return 0
    _ensure(conn, _CREATE_LATEST_STAGE)
    _copy(conn, _COPY_LATEST_STAGE, newest)
    conn.execute(_MERGE_LATEST)
    return len(newest)


def catch_up_latest(conn: Conn, line: str, units: Sequence[int]) -> int:
    """Bring the given units' `telemetry_latest` rows up to their newest telemetry row; returns rows moved.

    For a writer that starts: the one before it may have been killed between committing a batch and
    carrying it into the latest table. Nothing to do (0) after a clean stop.
    """
    with conn.cursor() as cur:
        cur.execute(_CATCH_UP_LATEST, {"line": line, "units": list(units)})
        return max(cur.rowcount, 0)
