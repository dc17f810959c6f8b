"""Getting telemetry rows into PostgreSQL: plain binary COPY normally, an idempotent path for retries.

COPY has no ON CONFLICT, so a batch whose commit outcome is unknown (the connection dropped during
COMMIT) cannot simply be COPYed again. `insert_rows_idempotent` stages the rows in a temporary table
and inserts them with ON CONFLICT DO NOTHING, so rows that did make it are skipped, not duplicated.
`upsert_latest` keeps `telemetry_latest` (one row per unit, see migration 0005) current: called in the
same transaction as either path, so the latest table never disagrees with telemetry.
None of these functions commits: the caller owns the transaction (and decides what a failure means).

The two staging tables are temporary, so they live as long as the session: each is created the first
time a connection needs it and remembered for that connection object (`_created`), so the hot path
sends no `CREATE … IF NOT EXISTS` per batch. A reconnect is a new connection, which creates its own.
If the transaction that created one is rolled back after the call returned, the next use on that
connection fails once (the table is gone with the rollback); any error inside these functions drops
the connection's marks, so the caller's retry creates the tables again.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager

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
    updates=sql.SQL(", ").join(
        sql.SQL("{c} = excluded.{c}").format(c=sql.Identifier(c)) for c in TELEMETRY_COLUMNS[2:]
    ),
)
_TS = TELEMETRY_COLUMNS.index("ts")


# Staging tables created per connection object; weak, so a closed connection takes its marks along.
_created: weakref.WeakKeyDictionary[Conn, set[str]] = weakref.WeakKeyDictionary()


@contextmanager
def _staging(conn: Conn, table: str, create: sql.Composed) -> Iterator[None]:
    """Create `table` on this connection unless already done; forget every mark if the body fails."""
    made = _created.setdefault(conn, set())
    try:
        if table not in made:
            conn.execute(create)
            made.add(table)
        yield
    except BaseException:
        made.clear()  # the caller rolls back, which may take a creation with it: create again next time
        raise


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
    with _staging(conn, STAGE_TABLE, _CREATE_STAGE):
        _copy(conn, _COPY_STAGE, rows)
        with conn.cursor() as cur:
            cur.execute(_MERGE_STAGE)
            inserted = cur.rowcount
            cur.execute(_TRUNCATE_STAGE)
    return max(inserted, 0)


def newest_per_unit(rows: Iterable[Row]) -> list[Row]:
    """The newest row of each (line, unit_id) among rows, in one pass (ties: the first one seen)."""
    newest: dict[tuple[object, object], Row] = {}
    get = newest.get
    ts = _TS
    for row in rows:
        key = (row[0], row[1])
        held = get(key)
        if held is None or held[ts] < row[ts]:  # type: ignore[operator]
            newest[key] = row
    return list(newest.values())


def upsert_latest(conn: Conn, rows: Iterable[Row]) -> int:
    """Move `telemetry_latest` forward to the newest row per unit of a batch; returns rows staged.

    Call it in the transaction that stores the batch. One COPY of at most (distinct units) rows into a
    session-lived staging table, then one statement that moves them into `telemetry_latest`.
    """
    latest = newest_per_unit(rows)
    if not latest:
        return 0
    with _staging(conn, LATEST_STAGE_TABLE, _CREATE_LATEST_STAGE):
        _copy(conn, _COPY_LATEST_STAGE, latest)
        conn.execute(_MERGE_LATEST)
    return len(latest)
