"""What the demo's view shows from the database, read once a second: open alerts, the newest alerts and
the quarantined units with how long their rows have been silent."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

from workloads.api.rule import SEVERITIES
from workloads.store.rows import every, one

Conn = psycopg.Connection[Any]
NEWEST = 3
FRESH_LIMIT = 1000


@dataclass(frozen=True)
class AlertRow:
    id: int
    rule: str
    unit_id: int
    severity: str
    statistic: str
    worst: float
    first_sample_ts: datetime
    action: str
    open: bool
    evidence: dict[str, Any]


@dataclass(frozen=True)
class QuarantinedUnit:
    unit_id: int
    by: str | None
    at: datetime | None
    silent_s: float | None  # since the unit's newest stored sample


@dataclass(frozen=True)
class Snapshot:
    open_by_severity: dict[str, int]
    newest: tuple[AlertRow, ...]  # newest first, for the view
    fresh: tuple[AlertRow, ...]  # opened since the previous read (id above `after`), oldest first
    quarantined: tuple[QuarantinedUnit, ...]


@dataclass(frozen=True)
class _SeverityCount:
    severity: str
    n: int


_ALERT = (
    "SELECT id, rule, unit_id, severity, statistic, worst_value::float8, first_sample_ts, action,"
    " resolved_at IS NULL, evidence FROM alerts"
)


def newest_id(conn: Conn) -> int:
    """The newest alert id now: alerts up to it are older than this run."""
    newest = one(conn, int, "SELECT coalesce(max(id), 0) FROM alerts")
    conn.commit()
    return newest or 0


def read(conn: Conn, line: str, after: int) -> Snapshot:
    counts: dict[str, int] = dict.fromkeys(SEVERITIES, 0)
    open_counts = every(
        conn,
        _SeverityCount,
        "SELECT severity, count(*) FROM alerts WHERE line = %s AND resolved_at IS NULL GROUP BY 1",
        (line,),
    )
    counts.update((c.severity, c.n) for c in open_counts)
    newest = every(conn, AlertRow, _ALERT + " WHERE line = %s ORDER BY id DESC LIMIT %s", (line, NEWEST))
    fresh = every(
        conn,
        AlertRow,
        _ALERT + " WHERE line = %s AND id > %s ORDER BY id LIMIT %s",
        (line, after, FRESH_LIMIT),
    )
    quarantined = every(
        conn, QuarantinedUnit,
        "SELECT s.unit_id, s.quarantined_by, s.quarantined_at,"
        " extract(epoch FROM clock_timestamp() - l.ts)::float8"
        " FROM unit_state s LEFT JOIN telemetry_latest l ON l.line = s.line AND l.unit_id = s.unit_id"
        " WHERE s.line = %s AND s.quarantined ORDER BY s.quarantined_at, s.unit_id",
        (line,),
    )  # fmt: skip
    conn.commit()
    return Snapshot(counts, tuple(newest), tuple(fresh), tuple(quarantined))
