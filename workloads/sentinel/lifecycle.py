"""The alert lifecycle: one open alert per (rule, line, unit), updated while it holds, resolved when clear.

`decide` is the whole policy as a pure function of (the open alert, what this pass observed); `apply`
writes its outcome. A pass and its watermark commit together, so a crash re-runs the window; and a
re-run of a window that was already applied changes nothing (`evaluated_to`, `last_sample_ts` guards).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

import psycopg
from psycopg.types.json import Jsonb

from workloads.store import unit_state
from workloads.store.rows import every

Conn = psycopg.Connection[tuple[object, ...]]


@dataclass(frozen=True)
class Observation:
    """What one pass saw for one rule on one unit."""

    rule: str
    unit_id: int
    fired: bool  # the condition held at some evaluated sample of this pass
    first_ts: datetime | None  # first/last sample at which it held
    last_ts: datetime | None
    worst: float | None  # most extreme statistic while it held
    hits: int  # samples (per-sample kinds) or 1 (windowed kinds) at which it held
    clear: bool  # at the pass's newest sample, the alert may resolve
    at: datetime  # the unit's newest evaluated sample
    statistic: float | None  # the statistic at `at`
    evidence: dict[str, Any] | None = None  # kind-specific facts at `at` (rul: estimate and interval)


@dataclass(frozen=True)
class OpenAlert:
    id: int
    rule: str
    unit_id: int
    last_sample_ts: datetime
    worst: float
    hits: int
    evaluated_to: datetime


@dataclass(frozen=True)
class Open:
    obs: Observation
    resolve: bool


@dataclass(frozen=True)
class Update:
    alert: OpenAlert
    last_sample_ts: datetime
    worst: float
    hits: int
    resolve_at: datetime | None
    evidence: dict[str, Any] | None = None  # merged into the alert's evidence (the newest estimate)


@dataclass(frozen=True)
class Resolve:
    alert: OpenAlert
    at: datetime


Change = Open | Update | Resolve


def worse(a: float, b: float, upward: bool) -> float:
    return max(a, b) if upward else min(a, b)


def decide(
    alert: OpenAlert | None,
    judged_to: datetime | None,
    obs: Observation,
    *,
    upward: bool,
    until: datetime,
) -> Change | None:
    """The change one observation makes, or None.

    `judged_to` is how far this rule's alerts on this unit have been evaluated (open or resolved): an
    observation entirely at or before it replays a window already recorded.
    """
    if alert is not None:
        if until <= alert.evaluated_to:
            return None  # this window was applied already
        if obs.fired and obs.last_ts is not None and obs.worst is not None:
            return Update(
                alert,
                max(alert.last_sample_ts, obs.last_ts),
                worse(alert.worst, obs.worst, upward),
                alert.hits + obs.hits,
                obs.at if obs.clear else None,
                obs.evidence,
            )
        return Resolve(alert, obs.at) if obs.clear else None
    if not obs.fired or obs.last_ts is None or obs.first_ts is None or obs.worst is None:
        return None
    if judged_to is not None and obs.last_ts <= judged_to:
        return None
    return Open(obs, resolve=obs.clear)


@dataclass(frozen=True)
class RuleFacts:
    """What `apply` needs to know about the rule behind a change."""

    name: str
    line: str
    severity: str
    kind: str
    statistic: str
    action: str
    evidence: dict[str, Any]


@dataclass
class Applied:
    opened: int = 0
    updated: int = 0
    resolved: int = 0
    quarantined: list[int] = field(default_factory=list)
    opened_by_rule: dict[str, int] = field(default_factory=dict)


def apply(
    conn: Conn, changes: Sequence[tuple[RuleFacts, Change]], *, since: datetime, until: datetime
) -> Applied:
    """Write the changes (in the caller's transaction); quarantine units whose rule says so."""
    out = Applied()
    inserts: list[tuple[object, ...]] = []
    updates: list[tuple[object, ...]] = []
    resolves: list[tuple[object, ...]] = []
    to_quarantine: list[tuple[RuleFacts, Observation]] = []
    for facts, change in changes:
        if isinstance(change, Open):
            o = change.obs
            evidence = {
                **facts.evidence,
                "statistic": facts.statistic,
                "first_sample_ts": o.first_ts.isoformat() if o.first_ts else None,
                "last_sample_ts": o.last_ts.isoformat() if o.last_ts else None,
                "worst_value": o.worst,
                "value_at_open": o.statistic,
                "window": {"since": since.isoformat(), "until": until.isoformat()},
                **(o.evidence or {}),
            }
            resolved = o.at if change.resolve else None
            inserts.append(
                (
                    facts.name, facts.line, o.unit_id, facts.severity, facts.kind, facts.statistic,
                    facts.action, o.first_ts, o.last_ts, o.worst, o.hits, until, resolved,
                    Jsonb(evidence),
                )
            )  # fmt: skip
            out.opened += 1
            out.opened_by_rule[facts.name] = out.opened_by_rule.get(facts.name, 0) + 1
            if change.resolve:
                out.resolved += 1
            if facts.action == "quarantine":
                to_quarantine.append((facts, o))
        elif isinstance(change, Update):
            updates.append(
                (change.last_sample_ts, change.worst, change.hits, until,
                 change.resolve_at, Jsonb(change.evidence or {}), change.alert.id)
            )  # fmt: skip
            out.updated += 1
            if change.resolve_at is not None:
                out.resolved += 1
        else:
            resolves.append((change.at, until, change.alert.id))
            out.resolved += 1
    # One statement per kind of change, rows as parallel arrays: a pass of 10,000s of alerts costs the
    # server one plan and one executor run each, not one per row. The arrays go in binary (`%b`): the
    # text form quotes every element of the evidence array through a regex, slower than the rows.
    with conn.cursor() as cur:
        if inserts:
            cur.execute(
                "INSERT INTO alerts (rule, line, unit_id, severity, kind, statistic, action,"
                " first_sample_ts, last_sample_ts, worst_value, hits, evaluated_to, resolved_sample_ts,"
                " resolved_at, evidence)"
                " SELECT rule, line, unit_id, severity, kind, statistic, action, first_ts, last_ts, worst,"
                " hits, until, resolved, CASE WHEN resolved IS NOT NULL THEN now() END, evidence"
                " FROM unnest(%b::text[], %b::text[], %b::integer[], %b::text[], %b::text[], %b::text[],"
                " %b::text[], %b::timestamptz[], %b::timestamptz[], %b::float8[], %b::bigint[],"
                " %b::timestamptz[], %b::timestamptz[], %b::jsonb[])"
                " AS u(rule, line, unit_id, severity, kind, statistic, action, first_ts, last_ts, worst,"
                " hits, until, resolved, evidence)",
                _columns(inserts),
            )
        if updates:
            cur.execute(
                "UPDATE alerts AS a SET last_sample_ts = u.last_ts, worst_value = u.worst, hits = u.hits,"
                " evaluated_to = u.until, last_seen_at = now(), resolved_sample_ts = u.resolved,"
                " resolved_at = CASE WHEN u.resolved IS NOT NULL THEN now() END,"
                " evidence = a.evidence || u.evidence"
                " FROM unnest(%b::timestamptz[], %b::float8[], %b::bigint[], %b::timestamptz[],"
                " %b::timestamptz[], %b::jsonb[], %b::bigint[])"
                " AS u(last_ts, worst, hits, until, resolved, evidence, id)"
                " WHERE a.id = u.id AND a.resolved_at IS NULL",
                _columns(updates),
            )
        if resolves:
            cur.execute(
                "UPDATE alerts AS a"
                " SET resolved_sample_ts = u.at, resolved_at = now(), evaluated_to = u.until"
                " FROM unnest(%b::timestamptz[], %b::timestamptz[], %b::bigint[]) AS u(at, until, id)"
                " WHERE a.id = u.id AND a.resolved_at IS NULL",
                _columns(resolves),
            )
    by_line: dict[str, list[tuple[int, str, str]]] = {}
    for facts, o in to_quarantine:
        reason = f"sentinel rule {facts.name}: {facts.statistic} reached {o.worst:.6g} at {o.first_ts}"
        by_line.setdefault(facts.line, []).append((o.unit_id, reason, f"sentinel:{facts.name}"))
    for line, units in by_line.items():
        out.quarantined.extend(unit_state.quarantine_many(conn, line, units))
    return out


def _columns(rows: Sequence[tuple[object, ...]]) -> list[list[object]]:
    """Rows as one list per column, for `unnest` of parallel arrays."""
    return [list(column) for column in zip(*rows, strict=True)]


def open_alerts(
    conn: Conn, line: str, rules: Sequence[str], units: Sequence[int]
) -> dict[tuple[str, int], OpenAlert]:
    alerts = every(
        conn,
        OpenAlert,  # the columns in its field order
        "SELECT id, rule, unit_id, last_sample_ts, worst_value, hits, evaluated_to FROM alerts"
        " WHERE line = %s AND resolved_at IS NULL AND rule = ANY(%s::text[])"
        " AND unit_id = ANY(%s::integer[])",
        (line, list(rules), list(units)),
    )
    return {(alert.rule, alert.unit_id): alert for alert in alerts}


class Judged(NamedTuple):
    rule: str
    unit_id: int
    evaluated_to: datetime | None  # None: no alert of this (rule, unit) yet


def previous_episodes(
    conn: Conn, line: str, keys: Sequence[tuple[str, int]]
) -> dict[tuple[str, int], datetime]:
    """How far each (rule, unit)'s alerts have been judged: samples up to there were seen already.

    A normal pass starts after every alert's `evaluated_to` (the watermark moved with them), so this
    only ever holds back a replay of windows that were evaluated before.
    """
    if not keys:
        return {}
    judged = every(
        conn,
        Judged,
        "SELECT k.rule, k.unit_id, (SELECT max(a.evaluated_to) FROM alerts a WHERE a.line = %s"
        " AND a.unit_id = k.unit_id AND a.rule = k.rule)"
        " FROM unnest(%s::text[], %s::integer[]) AS k(rule, unit_id)",
        (line, [k[0] for k in keys], [k[1] for k in keys]),
    )
    return {(j.rule, j.unit_id): j.evaluated_to for j in judged if j.evaluated_to is not None}
