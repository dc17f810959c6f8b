"""Opening connections with errors a person can act on (and never a silent fallback)."""

from __future__ import annotations

import psycopg

from workloads.errors import DatabaseUnavailable
from workloads.store.dsn import describe


def connect(
    url: str, *, autocommit: bool = False, timeout: float = 5.0
) -> psycopg.Connection[tuple[object, ...]]:
    """Connect or raise DatabaseUnavailable naming the database and libpq's first line of reason."""
    try:
        conn = psycopg.connect(
            url, autocommit=autocommit, connect_timeout=max(1, int(timeout)), application_name="dynoline"
        )
    except psycopg.OperationalError as exc:
        raise DatabaseUnavailable(f"cannot reach database {describe(url)}: {first_line(exc)}") from None
    try:
        in_utc(conn)
    except psycopg.Error as exc:
        conn.close()
        raise DatabaseUnavailable(f"cannot reach database {describe(url)}: {first_line(exc)}") from None
    return conn


def in_utc(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    """Put the session in the time zone "UTC", unless it is already; leaves no transaction open.

    The store's days are UTC days (partitions) and every timestamp it returns is then aware in UTC,
    whatever the server's TimeZone. It is also faster: psycopg decodes timestamptz for a session in
    "UTC" without a zoneinfo conversion, and the server images' usual "Etc/UTC" is not that name
    (docs/benchmarks.md, issue 11: 10,000 timestamps 1.3 ms instead of 4 ms).
    """
    if conn.info.parameter_status("TimeZone") == "UTC":
        return
    conn.execute("SET TIME ZONE 'UTC'")
    if not conn.autocommit:
        conn.commit()


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
