"""Read queries the product runs against telemetry, kept in one place so the benchmark times the real ones.

"Latest sample for every unit" reads `telemetry_latest` (migration 0005): one row per unit, kept by the
simulator (docs/telemetry-latest.md), so the question is a single range scan of its primary key (line,
unit_id), whatever the size of telemetry. Units registered in `unit_state` that have never sent a sample
have no row there and are left out of the answer (as they were before: a unit without a sample has no
"latest sample"); a quarantined unit keeps the last sample it sent. The probes of telemetry that it
replaced are the benchmark's baselines (`workloads/bench/latest_baselines.py`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import lru_cache

import psycopg
from psycopg import sql

from workloads.catalog import TELEMETRY_COLUMNS
from workloads.errors import DynolineError

Conn = psycopg.Connection[tuple[object, ...]]
Row = tuple[object, ...]

# Rows per chunk of a chunked fetch (docs/benchmarks.md, `bench query`: 10,000 rows of 28 columns came
# back in 0.8x the time of one whole result; 64-512 rows per chunk were within 3% of each other).
FETCH_CHUNK_ROWS = 256

_COLUMNS = sql.SQL(", ").join(sql.Identifier(c) for c in TELEMETRY_COLUMNS)

# The product's query: a range scan of telemetry_latest's primary key, already in unit order.
LATEST_PER_UNIT = sql.SQL(
    "SELECT {cols} FROM telemetry_latest WHERE line = %(line)s ORDER BY unit_id"
).format(cols=_COLUMNS)


@lru_cache(maxsize=64)
def latest_per_unit_query(columns: tuple[str, ...]) -> sql.Composed:
    """LATEST_PER_UNIT reading only `columns` (telemetry column names, in the order wanted)."""
    unknown = [c for c in columns if c not in TELEMETRY_COLUMNS]
    if unknown or not columns:
        raise DynolineError(
            f"latest sample: unknown column(s) {', '.join(unknown) or '(none asked)'};"
            f" telemetry has {', '.join(TELEMETRY_COLUMNS)}"
        )
    if columns == TELEMETRY_COLUMNS:
        return LATEST_PER_UNIT
    cols = sql.SQL(", ").join(sql.Identifier(c) for c in columns)
    return sql.SQL("SELECT {cols} FROM telemetry_latest WHERE line = %(line)s ORDER BY unit_id").format(
        cols=cols
    )


def latest_per_unit(conn: Conn, line: str, columns: Sequence[str] = TELEMETRY_COLUMNS) -> list[Row]:
    """The newest sample of every unit of `line` that has sent one, in unit order.

    Rows hold `columns` (default: all of `catalog.TELEMETRY_COLUMNS`) in the order given. Fetched in
    binary, in chunks (`fetch_binary`) and only the columns asked for: shipping and decoding 10,000
    rows is most of the round trip (the server's part is ~2 ms), and a double costs less to decode from
    8 bytes than from text.
    """
    return fetch_binary(conn, latest_per_unit_query(tuple(columns)), {"line": line})


def fetch_binary(
    conn: Conn, query: sql.Composed, params: Mapping[str, object], chunk: int | None = FETCH_CHUNK_ROWS
) -> list[Row]:
    """All rows of `query`, in binary, `chunk` rows at a time (None: as one result).

    In chunks the server (another process, another core) keeps encoding and sending the next rows while
    this one decodes the last ones; with one result the two take turns. libpq before 17 has no chunked
    mode: there the result comes whole.
    """
    with conn.cursor(binary=True) as cur:
        if chunk is None or not psycopg.capabilities.has_stream_chunked():
            cur.execute(query, params)
            return cur.fetchall()
        return list(cur.stream(query, params, size=chunk))
