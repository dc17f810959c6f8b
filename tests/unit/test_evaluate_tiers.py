"""Severity tiers in `dynoline evaluate`: critical as imminent failure, warning as early warning."""

from __future__ import annotations

from workloads.sentinel.scoring import AlertSpan, by_severity, imminent

# unit → (last cycle observed, true RUL there): units 1, 2 are within 30 cycles of failure, 3 and 4 are not
LIVES = {1: (200, 10), 2: (150, 25), 3: (120, 60), 4: (100, 140)}


def test_critical_counts_alerts_open_at_the_last_observed_cycle() -> None:
    alerts = [
        AlertSpan("stop", 1, opened=190, resolved=None, severity="critical"),  # open at the end: TP
        AlertSpan("stop", 2, opened=100, resolved=120, severity="critical"),  # resolved before the end: FN
        AlertSpan("stop", 3, opened=110, resolved=None, severity="critical"),  # RUL 60 at the end: FP
    ]
    got = imminent(LIVES, alerts)
    assert got["confusion"] == {"tp": 1, "fp": 1, "fn": 1, "tn": 1}
    assert got["precision"] == 0.5 and got["recall"] == 0.5
    assert got["false_positive_ruls"] == [60] and got["missed_ruls"] == [25]


def test_each_severity_is_scored_on_its_own_alerts() -> None:
    alerts = [
        AlertSpan("early", 1, opened=150, resolved=None, severity="warning"),  # RUL 60 there: lead 60
        AlertSpan("early", 4, opened=5, resolved=None, severity="warning"),  # RUL 235: a false alarm
        AlertSpan("stop", 1, opened=195, resolved=None, severity="critical"),
    ]
    tiers = by_severity(
        LIVES, alerts, {"early": "warning", "stop": "critical", "note": "info"}, with_rul=True
    )
    assert set(tiers) == {"critical", "warning", "info"}
    warning, critical = tiers["warning"], tiers["critical"]
    assert warning["rules"] == ["early"] and warning["false_alarms"] == 1
    assert warning["median_lead_cycles"] == 60.0 and "precision" not in warning
    assert critical["confusion"] == {"tp": 1, "fp": 0, "fn": 1, "tn": 2} and critical["false_alarms"] == 0
    assert tiers["info"]["detection_rate"] == 0.0 and tiers["warning"]["scored_units"] == 2  # RUL <= 30
    assert "precision" not in by_severity(LIVES, alerts, {"stop": "critical"}, with_rul=False)["critical"]
