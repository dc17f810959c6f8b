"""`lifecycle.apply` on a real PostgreSQL: each kind of change lands as the policy decided, in one
statement per kind (opens, updates, resolves, quarantines)."""

from __future__ import annotations

from datetime import timedelta

import psycopg

from tests.store.epoch import EPOCH
from workloads.sentinel import lifecycle
from workloads.sentinel.lifecycle import Observation, Open, Resolve, RuleFacts, Update
from workloads.store.unit_state import list_units

LINE = "lifecycle"


def facts(name: str, action: str = "none") -> RuleFacts:
    return RuleFacts(name, LINE, "critical", "threshold", "T50", action, {"condition": {"value": 1}})


def seen(rule: str, unit: int, second: int, worst: float) -> Observation:
    ts = EPOCH + timedelta(seconds=second)
    return Observation(rule, unit, True, ts, ts, worst, 1, False, ts, worst)


def row(conn: psycopg.Connection[tuple[object, ...]], rule: str, unit: int) -> tuple[object, ...]:
    found = conn.execute(
        "SELECT last_sample_ts, worst_value, hits, evaluated_to, resolved_sample_ts, resolved_at IS NOT NULL,"
        " evidence FROM alerts WHERE line = %s AND rule = %s AND unit_id = %s",
        (LINE, rule, unit),
    ).fetchone()
    assert found is not None
    return found


def test_apply_writes_every_kind_of_change_and_quarantines_a_unit_once(database_url: str) -> None:
    first, second = EPOCH + timedelta(seconds=10), EPOCH + timedelta(seconds=20)
    with psycopg.connect(database_url) as conn:
        opened = lifecycle.apply(
            conn,
            [
                (facts("a"), Open(seen("a", 1, 5, 1450.0), resolve=False)),
                (facts("a"), Open(seen("a", 2, 6, 1460.0), resolve=True)),
                (facts("q1", "quarantine"), Open(seen("q1", 3, 7, 1470.0), resolve=False)),
                (facts("q2", "quarantine"), Open(seen("q2", 3, 8, 1480.0), resolve=False)),
            ],
            since=EPOCH,
            until=first,
        )
        assert (opened.opened, opened.resolved, opened.quarantined) == (4, 1, [3])
        assert opened.opened_by_rule == {"a": 2, "q1": 1, "q2": 1}
        (unit,) = list_units(conn, LINE, quarantined_only=True)
        assert (unit.unit_id, unit.quarantined_by) == (3, "sentinel:q1")  # the first cause is kept
        at6 = EPOCH + timedelta(seconds=6)
        assert row(conn, "a", 2)[4:6] == (at6, True)  # opened and resolved in the same pass
        a1 = row(conn, "a", 1)
        assert a1[3:6] == (first, None, False)
        assert isinstance(a1[6], dict) and a1[6]["value_at_open"] == 1450.0

        open_now = lifecycle.open_alerts(conn, LINE, ["a", "q1", "q2"], [1, 2, 3])
        assert set(open_now) == {("a", 1), ("q1", 3), ("q2", 3)}
        at15 = EPOCH + timedelta(seconds=15)
        changes: list[tuple[RuleFacts, lifecycle.Change]] = [
            (facts("a"), Update(open_now[("a", 1)], at15, 1490.0, 2, None, {"rul": {"estimate": 3}})),
            (facts("q1"), Update(open_now[("q1", 3)], at15, 1475.0, 4, at15)),
            (facts("q2"), Resolve(open_now[("q2", 3)], at15)),
        ]
        applied = lifecycle.apply(conn, changes, since=first, until=second)
        assert (applied.opened, applied.updated, applied.resolved) == (0, 2, 2)
        a1 = row(conn, "a", 1)
        assert a1[:6] == (at15, 1490.0, 2, second, None, False)
        assert isinstance(a1[6], dict) and a1[6]["rul"] == {"estimate": 3} and "value_at_open" in a1[6]
        assert row(conn, "q1", 3)[:6] == (at15, 1475.0, 4, second, at15, True)
        assert row(conn, "q2", 3)[3:6] == (second, at15, True)

        # Resolved alerts are not touched again by a late update or resolve of the same id.
        later = EPOCH + timedelta(seconds=30)
        lifecycle.apply(conn, [(facts("q2"), Resolve(open_now[("q2", 3)], later))], since=second, until=later)
        assert row(conn, "q2", 3)[3:6] == (second, at15, True)
        assert lifecycle.apply(conn, [], since=second, until=later) == lifecycle.Applied()
