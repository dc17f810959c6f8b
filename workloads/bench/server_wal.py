"""The server's write-ahead log over a run: bytes per row, full-page images, checkpoints.

At 100,000 units, after each checkpoint the first change to a page logs a whole image of it: one
primary-key leaf per unit, and, with data checksums on, every heap page whose hint bits or
visibility-map bit are set. With checkpoints every ~25 s that is most of the WAL (docs/benchmarks.md,
issue 11, sixth and seventh rounds), and these counters say how much there was. They are
the server's (pg_stat_wal, the checkpointer's view), so on a shared server other work adds into them;
the bench's own server has none.
"""

from __future__ import annotations

import psycopg

from .harness import Conn, Result

Counters = dict[str, int | None]

_WAL = "SELECT wal_records, wal_fpi, wal_bytes::bigint, wal_buffers_full FROM pg_stat_wal"
_CHECKPOINTS = (
    "SELECT num_timed, num_requested FROM pg_stat_checkpointer",  # PostgreSQL 17 and later
    "SELECT checkpoints_timed, checkpoints_req FROM pg_stat_bgwriter",  # before 17
)
_NAMES = (
    "records",
    "full_page_images",
    "bytes",
    "buffers_full",
    "checkpoints_timed",
    "checkpoints_requested",
)


def wal_counters(conn: Conn) -> Counters:
    """The server's cumulative WAL and checkpoint counters now (None where this server has no view).

    On an autocommit connection, as the benches use: a missing view is then one failed statement,
    not an aborted transaction.
    """
    values: list[int | None] = [None] * len(_NAMES)
    try:
        row = conn.execute(_WAL).fetchone()
        if row is not None:
            values[:4] = [_integer(v) for v in row]
    except psycopg.errors.UndefinedTable:  # PostgreSQL before 14
        pass
    for query in _CHECKPOINTS:
        try:
            row = conn.execute(query).fetchone()
        except (psycopg.errors.UndefinedTable, psycopg.errors.UndefinedColumn):
            continue
        if row is not None:
            values[4:] = [_integer(v) for v in row]
        break
    return dict(zip(_NAMES, values, strict=True))


def _integer(value: object) -> int | None:
    return value if isinstance(value, int) else None


def wal_summary(before: Counters, after: Counters, rows: int) -> Result:
    """What the run added to each counter, and the WAL per stored row."""

    def added(name: str) -> int | None:
        a, b = before.get(name), after.get(name)
        return b - a if a is not None and b is not None else None

    def per_row(value: int | None, scale: int, digits: int) -> float | None:
        return round(value * scale / rows, digits) if value is not None and rows else None

    delta = {name: added(name) for name in _NAMES}
    return {
        **delta,
        "bytes_per_row": per_row(delta["bytes"], 1, 1),
        "full_page_images_per_1000_rows": per_row(delta["full_page_images"], 1000, 2),
        "what": "the server's pg_stat_wal and checkpoint counters over the run (server-wide)",
    }


def render_wal(w: Result) -> str:
    """One line for the human form of a result."""
    if w.get("bytes") is None:
        return "wal: this server has no pg_stat_wal"
    mib = w["bytes"] / 2**20
    return (
        f"wal: {mib:,.0f} MiB ({w['bytes_per_row']} bytes per row), {w['full_page_images']:,} full-page"
        f" images ({w['full_page_images_per_1000_rows']} per 1,000 rows), WAL buffers full"
        f" {w['buffers_full']:,} times; checkpoints {w['checkpoints_timed']} timed +"
        f" {w['checkpoints_requested']} requested"
    )
