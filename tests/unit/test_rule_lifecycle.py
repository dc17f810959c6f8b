"""The alert lifecycle policy and the detection scoring, as pure functions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from workloads.sentinel.lifecycle import Observation, Open, OpenAlert, Resolve, Update, decide
from workloads.sentinel.scoring import AlertSpan, score, summarise

T = datetime(2026, 1, 1, tzinfo=UTC)


def at(s: int) -> datetime:
    return T + timedelta(seconds=s)


def obs(
    fired: bool, first: int | None, last: int | None, worst: float | None, clear: bool, end: int
) -> Observation:
    return Observation(
        "r", 1, fired, None if first is None else at(first), None if last is None else at(last), worst,
        1 if fired else 0, clear, at(end), worst,
    )  # fmt: skip


def alert(last: int, worst: float, evaluated_to: int) -> OpenAlert:
    return OpenAlert(7, "r", 1, at(last), worst, 3, at(evaluated_to))


def test_a_firing_observation_opens_an_alert() -> None:
    change = decide(None, None, obs(True, 5, 8, 1440.0, False, 10), upward=True, until=at(10))
    assert isinstance(change, Open) and not change.resolve


def test_an_alert_that_clears_in_the_same_pass_opens_resolved() -> None:
    change = decide(None, None, obs(True, 5, 5, 1440.0, True, 10), upward=True, until=at(10))
    assert isinstance(change, Open) and change.resolve


def test_nothing_happens_without_firing_or_an_open_alert() -> None:
    assert decide(None, None, obs(False, None, None, None, True, 10), upward=True, until=at(10)) is None


def test_an_open_alert_is_updated_while_it_holds() -> None:
    change = decide(
        alert(8, 1440.0, 10), None, obs(True, 12, 15, 1435.0, False, 20), upward=True, until=at(20)
    )
    assert isinstance(change, Update)
    assert change.last_sample_ts == at(15) and change.worst == 1440.0 and change.hits == 4
    assert change.resolve_at is None
    lower = decide(alert(8, 38.5, 10), None, obs(True, 12, 15, 38.2, False, 20), upward=False, until=at(20))
    assert isinstance(lower, Update) and lower.worst == 38.2


def test_an_open_alert_resolves_when_clear_and_waits_in_between() -> None:
    resolved = decide(
        alert(8, 1440.0, 10), None, obs(False, None, None, None, True, 20), upward=True, until=at(20)
    )
    assert isinstance(resolved, Resolve) and resolved.at == at(20)
    assert (
        decide(alert(8, 1440.0, 10), None, obs(False, None, None, None, False, 20), upward=True, until=at(20))
        is None
    )


def test_a_replayed_window_changes_nothing() -> None:
    # the open alert was already updated by a pass up to 20
    assert (
        decide(alert(15, 1440.0, 20), None, obs(True, 12, 15, 1450.0, False, 20), upward=True, until=at(20))
        is None
    )
    # an episode judged up to 30 is not opened again from samples at or before 30
    assert decide(None, at(30), obs(True, 12, 15, 1450.0, False, 20), upward=True, until=at(20)) is None
    again = decide(None, at(30), obs(True, 31, 35, 1450.0, False, 40), upward=True, until=at(40))
    assert isinstance(again, Open)


def test_scoring_false_alarms_detection_and_lead() -> None:
    # unit 1 lives 200 cycles (knee at cycle 75), unit 2 lives 150 (knee 25), unit 3 lives 130 (knee 5)
    lives = {1: (200, 0), 2: (150, 0), 3: (130, 0)}
    alerts = [
        AlertSpan("a", 1, 50, 60),  # healthy-time false alarm, resolved before the knee: no detection
        AlertSpan("a", 1, 150, None),  # detected at 150: lead 50
        AlertSpan("b", 1, 140, 145),  # detected earlier by b: lead 60
        AlertSpan("a", 2, 10, None),  # false alarm still open at the knee: detected from the knee, lead 125
        AlertSpan("a", 3, 130, None),  # opened on the failure cycle: not before failure
    ]
    s = score(lives, alerts, ["a", "b"])
    assert s["healthy_cycles"] == 74 + 24 + 4
    assert s["false_alarms"] == 2
    assert s["leads"] == {1: 60, 2: 125}
    assert s["per_rule"]["a"] == {"opened": 4, "false_alarms": 2, "units_detected": 2, "first_to_detect": 1}
    assert s["per_rule"]["b"]["first_to_detect"] == 1
    report = summarise(lives, alerts, ["a", "b"], with_rul=False)
    assert report["detection_rate"] == round(2 / 3, 4) and report["missed_units"] == [3]
    assert report["median_lead_cycles"] == 60  # nearest rank: the lower of the two leads, an observed one


def test_scoring_a_test_set_with_known_remaining_life() -> None:
    lives = {1: (100, 10), 2: (100, 80), 3: (50, 20)}  # unit 1 and 3 are positive (RUL ≤ 30)
    alerts = [AlertSpan("a", 1, 95, None), AlertSpan("a", 2, 90, None)]
    report = summarise(lives, alerts, ["a"], with_rul=True)
    assert report["confusion"] == {"tp": 1, "fp": 1, "fn": 1, "tn": 0}
    assert report["false_positive_ruls"] == [80]
    assert report["precision"] == 0.5 and report["recall"] == 0.5
    assert report["scored_units"] == 2 and report["detection_rate"] == 0.5
    assert report["median_lead_cycles"] == 15  # unit 1 fails at cycle 110, alerted at 95
