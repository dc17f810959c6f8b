"""The table `dynoline bench query` reads: ≥ 20 M rows of one line, nine more lines, telemetry_latest.

Filled server-side (INSERT … SELECT from generate_series: minutes, not the hours a client would take),
ANALYZEd, and recorded in `bench_build` so a later run against the same `--database-url` reuses it.
A factory runs many lines into one database: besides the benchmarked line, `--lines` minus one other
lines of as many units get a couple of ticks each, so telemetry_latest holds a row per unit of every
line, as it would in production (and the query has to pick its line out of them).
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import NamedTuple

from psycopg import sql

from workloads.catalog import TELEMETRY_COLUMNS
from workloads.store.partitions import ensure_partitions
from workloads.store.queries import LATEST_PER_UNIT
from workloads.store.rows import every, one
from workloads.store.unit_state import record_line, register_units

from .fd001 import FD001_MOMENTS
from .harness import Conn
from .latest_baselines import LATEST_PER_UNIT_PROBE, params

log = logging.getLogger(__name__)

LINE = "bench-query"
RETENTION_DAYS = 7  # partitions made for a week back and two days ahead, as a running line has them
DAYS_AHEAD = 2
CHUNK_ROWS = 1_000_000  # rows per INSERT … SELECT statement (one transaction each)
OTHER_TICKS = 2  # ticks of each other line: they are there for telemetry_latest, not for size

_COLS = sql.SQL(", ").join(sql.Identifier(c) for c in TELEMETRY_COLUMNS)

_BUILD_TABLE = sql.SQL(
    "CREATE TABLE IF NOT EXISTS bench_build ("
    " line text PRIMARY KEY, units integer NOT NULL, ticks integer NOT NULL, rows bigint NOT NULL,"
    " first_ts timestamptz NOT NULL, last_ts timestamptz NOT NULL, seconds double precision NOT NULL,"
    " built_at timestamptz NOT NULL DEFAULT now())"
)

_BUILD_ROW = (
    "SELECT units, ticks, rows, first_ts, last_ts, seconds, built_at FROM bench_build WHERE line = %s"
)


class BuildRow(NamedTuple):
    """A row of bench_build."""

    units: int
    ticks: int
    rows: int
    first_ts: datetime
    last_ts: datetime
    seconds: float
    built_at: datetime


class _Size(NamedTuple):
    heap_bytes: Decimal  # sum(bigint) is numeric
    index_bytes: Decimal
    partitions: int


@dataclass(frozen=True)
class Build:
    """The benchmark's telemetry as built (or reused); `lines` and `latest_rows` once those are filled."""

    rows: int
    units: int
    ticks_per_unit: int
    first_ts: str
    last_ts: str
    partitions: int
    heap_bytes: int
    index_bytes: int
    build_seconds: float
    build_rows_per_s: int | None
    built_at: str
    reused: bool
    lines: int = 1
    latest_rows: int = 0


def build_experiments(conn: Conn) -> None:
    """The experiment's structure, from the current data: each unit's last ts."""
    last = sql.SQL(
        "CREATE TABLE bench_unit_last AS SELECT line, unit_id, ts AS last_ts FROM ({}) latest"
    ).format(LATEST_PER_UNIT)
    with conn.transaction():
        conn.execute("DROP TABLE IF EXISTS bench_unit_last, bench_latest")
        conn.execute(last, params(LINE))
        conn.execute("ALTER TABLE bench_unit_last ADD PRIMARY KEY (line, unit_id)")
    conn.execute("VACUUM ANALYZE bench_unit_last")


def ensure_data(conn: Conn, units: int, rows: int) -> Build:
    """Reuse a matching earlier build, or (re)fill telemetry for the bench line; returns its description."""
    conn.execute(_BUILD_TABLE)
    found = one(conn, BuildRow, _BUILD_ROW, (LINE,))
    if found is not None and found[0] == units and found.rows >= rows:
        log.info("reusing the %s-row telemetry built at %s", found.rows, found.built_at)
        return describe_build(conn, found, reused=True)
    log.info("building telemetry: %d rows for %d units (server-side INSERT … SELECT)", rows, units)
    conn.execute("TRUNCATE bench_build")  # every line is rebuilt with the new bench line
    conn.execute("TRUNCATE telemetry, telemetry_latest")  # the bench schema's own tables
    conn.execute("TRUNCATE unit_state")
    ticks = math.ceil(rows / units)
    last = datetime.now(UTC).replace(microsecond=0)
    first = last - timedelta(seconds=ticks - 1)
    ensure_partitions(conn, last - timedelta(days=RETENTION_DAYS), last + timedelta(days=DAYS_AHEAD))
    record_line(conn, LINE, timedelta(days=RETENTION_DAYS))
    register_units(conn, LINE, range(units))
    began = time.monotonic()
    step = max(1, CHUNK_ROWS // units)
    for lo in range(0, ticks, step):
        hi = min(ticks, lo + step) - 1
        conn.execute(fill_sql(), {"line": LINE, "first": first, "lo": lo, "hi": hi, "units": units})
        log.info("  ticks %d..%d of %d stored", lo, hi, ticks)
    conn.execute("ANALYZE telemetry")
    conn.execute("ANALYZE unit_state")
    seconds = time.monotonic() - began
    conn.execute(
        "INSERT INTO bench_build (line, units, ticks, rows, first_ts, last_ts, seconds)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s)",
        (LINE, units, ticks, ticks * units, first, last, seconds),
    )
    found = one(conn, BuildRow, _BUILD_ROW, (LINE,))
    assert found is not None
    return describe_build(conn, found, reused=False)


def other_line(k: int) -> str:
    return f"{LINE}-{k}"


def ensure_other_lines(conn: Conn, units: int, lines: int, build: Build) -> int:
    """The factory's other lines: --units units each, OTHER_TICKS ticks ending with the bench line's."""
    last = datetime.fromisoformat(build.last_ts)
    first = last - timedelta(seconds=OTHER_TICKS - 1)
    for k in range(2, lines + 1):
        line = other_line(k)
        found = conn.execute("SELECT units FROM bench_build WHERE line = %s", (line,)).fetchone()
        if found is not None and found[0] == units:
            continue
        log.info("adding line %s: %d units, %d ticks", line, units, OTHER_TICKS)
        with conn.transaction():
            conn.execute("DELETE FROM telemetry WHERE line = %s", (line,))
            conn.execute("DELETE FROM bench_build WHERE line = %s", (line,))
            record_line(conn, line, timedelta(days=RETENTION_DAYS))
            register_units(conn, line, range(units))
            conn.execute(
                fill_sql(), {"line": line, "first": first, "lo": 0, "hi": OTHER_TICKS - 1, "units": units}
            )
            conn.execute(
                "INSERT INTO bench_build (line, units, ticks, rows, first_ts, last_ts, seconds)"
                " VALUES (%s, %s, %s, %s, %s, %s, 0)",
                (line, units, OTHER_TICKS, OTHER_TICKS * units, first, last),
            )
    with conn.transaction():  # lines beyond --lines from an earlier run
        extra = [
            str(r[0])
            for r in conn.execute(
                "SELECT line FROM bench_build WHERE line LIKE %s AND line <> ALL(%s)",
                (f"{LINE}-%", [other_line(k) for k in range(2, lines + 1)]),
            )
        ]
        for line in extra:
            conn.execute("DELETE FROM telemetry WHERE line = %s", (line,))
            conn.execute("DELETE FROM unit_state WHERE line = %s", (line,))
            conn.execute("DELETE FROM bench_build WHERE line = %s", (line,))
    conn.execute("ANALYZE unit_state")
    return lines


def fill_latest(conn: Conn) -> int:
    """telemetry_latest as the writer leaves it: the newest row of every unit of every line.

    Filled server-side after the build (the build bypasses the writer) by the telemetry probe of each
    line, which gives the same rows as DISTINCT ON in a fraction of its time; then VACUUM ANALYZE.
    """
    insert = sql.SQL("INSERT INTO telemetry_latest ({}) SELECT * FROM ({}) latest").format(
        _COLS, LATEST_PER_UNIT_PROBE
    )
    with conn.transaction():
        conn.execute("TRUNCATE telemetry_latest")
        for line in every(conn, str, "SELECT DISTINCT line FROM unit_state ORDER BY 1"):
            conn.execute(insert, params(line))
    conn.execute("VACUUM ANALYZE telemetry_latest")
    count = one(conn, int, "SELECT count(*) FROM telemetry_latest")
    assert count is not None
    return count


def fill_sql() -> sql.Composed:
    """Ticks lo..hi of every unit, tick-major like a streaming line writes them, in one statement."""
    values = [
        sql.SQL("{} + {} * (random() - 0.5) * 3.4641").format(sql.Literal(mean), sql.Literal(sd))
        if sd
        else sql.Literal(mean)
        for mean, sd in FD001_MOMENTS.values()
    ]
    return sql.SQL(
        "INSERT INTO telemetry ({cols})"
        " SELECT %(line)s, u, k + 1, %(first)s::timestamptz + make_interval(secs => k), {values}"
        " FROM generate_series(%(lo)s::int, %(hi)s::int) AS k,"
        " generate_series(0, %(units)s::int - 1) AS u"
    ).format(
        cols=sql.SQL(", ").join(sql.Identifier(c) for c in TELEMETRY_COLUMNS),
        values=sql.SQL(", ").join(values),
    )


def describe_build(conn: Conn, found: BuildRow, *, reused: bool) -> Build:
    size = one(
        conn,
        _Size,
        "SELECT coalesce(sum(pg_table_size(inhrelid)), 0), coalesce(sum(pg_indexes_size(inhrelid)), 0),"
        " count(*) FROM pg_inherits WHERE inhparent = 'telemetry'::regclass",
    )
    assert size is not None
    units, ticks, rows, first, last, seconds, built_at = found
    return Build(
        rows=rows,
        units=units,
        ticks_per_unit=ticks,
        first_ts=first.isoformat(),
        last_ts=last.isoformat(),
        partitions=size.partitions,
        heap_bytes=int(size.heap_bytes),
        index_bytes=int(size.index_bytes),
        build_seconds=round(seconds, 1),
        build_rows_per_s=round(rows / seconds) if seconds else None,
        built_at=built_at.isoformat(),
        reused=reused,
    )
