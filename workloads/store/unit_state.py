"""Per-unit state on a line: registration, quarantine and release.

The simulator registers its units and skips quarantined ones; the sentinel's quarantine action and
`dynoline unit …` set and clear the flag. Functions do not commit, so a caller can quarantine in the
same transaction that opens an alert.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import psycopg

from workloads.errors import DynolineError
from workloads.store.rows import every

Conn = psycopg.Connection[tuple[object, ...]]


@dataclass(frozen=True)
class UnitState:
    line: str
    unit_id: int
    quarantined: bool
    reason: str | None
    quarantined_by: str | None
    quarantined_at: datetime | None
    registered_at: datetime
    updated_at: datetime


def record_line(conn: Conn, line: str, retention: timedelta) -> None:
    """Create or update the line's row; retention keeps the longest any line on the database asks for."""
    conn.execute(
        "INSERT INTO lines (line, retention) VALUES (%s, %s)"
        " ON CONFLICT (line) DO UPDATE SET retention = excluded.retention, updated_at = now()"
        " WHERE lines.retention IS DISTINCT FROM excluded.retention",
        (line, retention),
    )


def register_units(conn: Conn, line: str, unit_ids: Iterable[int]) -> int:
    """Register units, leaving existing rows (and their quarantine flags) alone; returns how many were new."""
    ids = sorted(set(unit_ids))
    with conn.cursor() as cur:
        cur.execute(
            "INSERT INTO unit_state (line, unit_id) SELECT %s, u FROM unnest(%s::integer[]) AS u"
            " ON CONFLICT (line, unit_id) DO NOTHING",
            (line, ids),
        )
        return max(cur.rowcount, 0)


def quarantined_units(conn: Conn, line: str) -> frozenset[int]:
    """The line's quarantined unit ids: one index scan on the partial index `unit_state_quarantined`."""
    return frozenset(
        every(conn, int, "SELECT unit_id FROM unit_state WHERE line = %s AND quarantined", (line,))
    )


def quarantine(conn: Conn, line: str, unit_id: int, reason: str, by: str) -> bool:
    """Quarantine a unit (registering it if need be); returns False when it already was quarantined.

    An already-quarantined unit keeps its original reason, author and time: the first cause is the one
    an operator needs to see.
    """
    return bool(quarantine_many(conn, line, [(unit_id, reason, by)]))


def quarantine_many(conn: Conn, line: str, units: Sequence[tuple[int, str, str]]) -> list[int]:
    """`quarantine` for (unit, reason, by) triples in one statement; returns the units it quarantined,
    in the order given. A unit given twice keeps its first reason, as two calls would."""
    first: dict[int, tuple[str, str]] = {}
    for unit_id, reason, by in units:
        _check(line, unit_id)
        if not reason.strip():
            raise DynolineError("a quarantine needs a reason")
        first.setdefault(unit_id, (reason.strip(), by))
    if not first:
        return []
    done = every(
        conn,
        int,
        "INSERT INTO unit_state AS s (line, unit_id, quarantined, reason, quarantined_by, quarantined_at)"
        " SELECT %s, u, true, r, b, now() FROM unnest(%b::integer[], %b::text[], %b::text[]) AS q(u, r, b)"
        " ON CONFLICT (line, unit_id) DO UPDATE SET quarantined = true, reason = excluded.reason,"
        " quarantined_by = excluded.quarantined_by, quarantined_at = excluded.quarantined_at,"
        " updated_at = now()"
        " WHERE NOT s.quarantined"
        " RETURNING unit_id",
        (line, list(first), [r for r, _ in first.values()], [b for _, b in first.values()]),
    )
    changed = set(done)
    return [u for u in first if u in changed]


def release(conn: Conn, line: str, unit_id: int) -> bool:
    """Release a quarantined unit so the simulator resumes it; returns False when it was not quarantined.

    Raises DynolineError for a unit that was never registered on the line (most likely a typo).
    """
    _check(line, unit_id)
    row = conn.execute(
        "SELECT quarantined FROM unit_state WHERE line = %s AND unit_id = %s FOR UPDATE", (line, unit_id)
    ).fetchone()
    if row is None:
        raise DynolineError(f"unit {unit_id} is not registered on line {line!r}")
    if not row[0]:
        return False
    conn.execute(
        "UPDATE unit_state SET quarantined = false, updated_at = now() WHERE line = %s AND unit_id = %s",
        (line, unit_id),
    )
    return True


def list_units(conn: Conn, line: str, *, quarantined_only: bool = False) -> list[UnitState]:
    rows = conn.execute(
        "SELECT line, unit_id, quarantined, reason, quarantined_by, quarantined_at, registered_at, updated_at"
        " FROM unit_state WHERE line = %s AND (quarantined OR NOT %s) ORDER BY unit_id",
        (line, quarantined_only),
    ).fetchall()
    return [UnitState(*r) for r in rows]  # type: ignore[arg-type]


def _check(line: str, unit_id: int) -> None:
    if not line:
        raise DynolineError("line name must not be empty")
    if unit_id < 0:
        raise DynolineError(f"unit id must be ≥ 0, got {unit_id}")
