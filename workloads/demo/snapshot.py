"""What the demo's view shows from the database, read once a second: open alerts, the newest alerts and
the quarantined units with how long their rows have been silent."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

from workloads.api.rule import SEVERITIES

Conn = psycopg.Connection[tuple[object, ...]]
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


_ALERT = (
    "SELECT id, rule, unit_id, severity, statistic, worst_value, first_sample_ts, action,"
    " resolved_at IS NULL, evidence FROM alerts"
)


def _alerts(rows: list[tuple[object, ...]]) -> tuple[AlertRow, ...]:
    return tuple(
        AlertRow(
            int(str(r[0])), str(r[1]), int(str(r[2])), str(r[3]), str(r[4]), float(str(r[5])),
            r[6], str(r[7]), bool(r[8]), dict(r[9]),  # type: ignore[arg-type, call-overload]
        )
        for r in rows
    )  # fmt: skip


def newest_id(conn: Conn) -> int:
    """The newest alert id now: alerts up to it are older than this run."""
    row = conn.execute("SELECT coalesce(max(id), 0) FROM alerts").fetchone()
    conn.commit()
    return int(str(row[0])) if row else 0


def read(conn: Conn, line: str, after: int) -> Snapshot:
    counts: dict[str, int] = dict.fromkeys(SEVERITIES, 0)
    for severity, n in conn.execute(
        "SELECT severity, count(*) FROM alerts WHERE line = %s AND resolved_at IS NULL GROUP BY 1", (line,)
    ).fetchall():
        counts[str(severity)] = int(str(n))
    newest = _alerts(
        conn.execute(_ALERT + " WHERE line = %s ORDER BY id DESC LIMIT %s", (line, NEWEST)).fetchall()
    )
    fresh = _alerts(
        conn.execute(
            _ALERT + " WHERE line = %s AND id > %s ORDER BY id LIMIT %s", (line, after, FRESH_LIMIT)
        ).fetchall()
    )
    quarantined = tuple(
        QuarantinedUnit(
            int(str(r[0])), None if r[1] is None else str(r[1]), r[2],  # type: ignore[arg-type]
            None if r[3] is None else float(str(r[3])),
        )
        for r in conn.execute(
            "SELECT s.unit_id, s.quarantined_by, s.quarantined_at,"
            " extract(epoch FROM clock_timestamp() - l.ts)"
            " FROM unit_state s LEFT JOIN telemetry_latest l ON l.line = s.line AND l.unit_id = s.unit_id"
            " WHERE s.line = %s AND s.quarantined ORDER BY s.quarantined_at, s.unit_id",
            (line,),
        ).fetchall()
    )  # fmt: skip
    conn.commit()
    return Snapshot(counts, newest, fresh, quarantined)
