"""Per-(rule, line) watermarks: how far each rule has evaluated a line, and where its next pass ends.

The next pass reads samples in `(evaluated_to, until]`. `until` trails the line's newest sample by a
grace period, so samples from a shard that commits a little later than another still fall inside a
later pass rather than behind a watermark that has already moved on.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import psycopg

Conn = psycopg.Connection[tuple[object, ...]]

BEGINNING = datetime(1970, 1, 1, tzinfo=UTC)
"""Where a rule with no watermark and no back-fill limit starts."""


def read(conn: Conn, line: str, rules: Sequence[str]) -> dict[str, datetime]:
    rows = conn.execute(
        "SELECT rule, evaluated_to FROM sentinel_watermarks WHERE line = %s AND rule = ANY(%s::text[])",
        (line, list(rules)),
    ).fetchall()
    return {str(r[0]): r[1] for r in rows}  # type: ignore[misc]


def advance(conn: Conn, line: str, rules: Sequence[str], to: datetime) -> None:
    """Move the rules' watermarks to `to` (never backwards)."""
    conn.execute(
        "INSERT INTO sentinel_watermarks AS w (rule, line, evaluated_to)"
        " SELECT r, %s, %s FROM unnest(%s::text[]) AS r"
        " ON CONFLICT (rule, line) DO UPDATE SET evaluated_to = excluded.evaluated_to, updated_at = now()"
        " WHERE w.evaluated_to < excluded.evaluated_to",
        (line, to, list(rules)),
    )


def latest_sample(conn: Conn, line: str, after: datetime) -> datetime | None:
    """The line's newest sample time after `after`.

    One backwards probe of the primary key per registered unit (the simulator registers its units);
    lines written without registration fall back to scanning the new part of the key.
    """
    row = conn.execute(
        "SELECT max(l.ts) FROM unit_state u CROSS JOIN LATERAL"
        " (SELECT t.ts FROM telemetry t WHERE t.line = u.line AND t.unit_id = u.unit_id AND t.ts > %s"
        " ORDER BY t.ts DESC LIMIT 1) l WHERE u.line = %s",
        (after, line),
    ).fetchone()
    if row is not None and row[0] is not None:
        return row[0]  # type: ignore[return-value]
    row = conn.execute("SELECT max(ts) FROM telemetry WHERE line = %s AND ts > %s", (line, after)).fetchone()
    return row[0] if row else None  # type: ignore[return-value]


def upper_bound(latest: datetime | None, grace: timedelta) -> datetime | None:
    return None if latest is None else latest - grace
