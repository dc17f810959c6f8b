"""Partition upkeep: made ahead of the writers, dropped whole for retention.

Neither function commits: the caller owns the transaction, as with everything on the writer path
(writer.py). The callers commit where the reason to is: the simulator's delivery path
(simulator/delivery.py) commits new partitions in a short transaction of their own before the batch
that needs them; `dynoline db migrate` and `dynoline db retention` (store/cli.py) commit their work.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import psycopg

from workloads.store.rows import one

Conn = psycopg.Connection[tuple[object, ...]]


def ensure_partitions(conn: Conn, start: datetime, end: datetime) -> int:
    """Create the daily partitions covering [start, end]; returns how many were new."""
    return one(conn, int, "SELECT dynoline_ensure_partitions(%s, %s)", (start, end)) or 0


def drop_expired(conn: Conn, keep: timedelta, *, now: datetime | None = None) -> list[str]:
    """Drop partitions older than the longest retention any line asked for, and at least `keep`.

    Ages are measured back from `now`: by default the database's own clock, the same for every retention
    Job wherever it runs; a caller (a test, a replay) passes the instant it means.
    """
    row = conn.execute(
        "SELECT greatest(%s::interval, coalesce(max(retention), %s::interval)) FROM lines", (keep, keep)
    ).fetchone()
    longest = row[0] if row else keep
    return [
        str(r[0])
        for r in conn.execute(
            "SELECT dynoline_drop_partitions_before(coalesce(%s::timestamptz, now()) - %s)", (now, longest)
        )
    ]
