"""Scoring a replay's alerts against the known remaining life: pure functions, no database.

* healthy cycle: RUL > 125 (the knee of the usual piecewise-linear RUL target);
* false alarm: an alert that opens on a healthy cycle (`false_alarms_per_1000` per healthy unit-cycle);
* detection: an alert is open on some cycle of the degradation window (RUL 1..125); the unit is
  detected at the first such cycle, and its lead is the RUL there (so a lead never exceeds 125);
* severities are scored on their own alerts; the critical tier also as a classifier of "RUL ≤ 30 at
  the last observed cycle" (`imminent`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from workloads.api.rule import SEVERITIES
from workloads.quantile import percentile

KNEE = 125
POSITIVE_RUL = 30


@dataclass(frozen=True)
class AlertSpan:
    rule: str
    unit_id: int
    opened: int  # cycle of the first sample at which it held
    resolved: int | None  # cycle of the pass that resolved it
    severity: str = "warning"

    def open_at(self, cycle: int) -> bool:
        return self.opened <= cycle and (self.resolved is None or self.resolved > cycle)


def score(
    lives: Mapping[int, tuple[int, int]], alerts: Sequence[AlertSpan], rules: Sequence[str]
) -> dict[str, Any]:
    """Pure scoring. `lives`: unit → (last cycle replayed, true RUL at that cycle; 0 for run-to-failure)."""
    by_unit: dict[int, list[AlertSpan]] = defaultdict(list)
    for a in alerts:
        by_unit[a.unit_id].append(a)
    healthy = 0
    false_alarms = 0
    per_rule = {r: {"opened": 0, "false_alarms": 0, "units_detected": 0, "first_to_detect": 0} for r in rules}
    leads: dict[int, int] = {}
    for unit, (last, rul_end) in lives.items():
        failure = last + rul_end
        knee_cycle = failure - KNEE  # first cycle of the degradation window
        healthy += max(0, min(last, knee_cycle - 1))  # cycles 1..knee_cycle-1 have RUL > 125
        first: dict[str, int] = {}
        for a in by_unit.get(unit, ()):
            per_rule[a.rule]["opened"] += 1
            if failure - a.opened > KNEE:
                false_alarms += 1
                per_rule[a.rule]["false_alarms"] += 1
            # open on some cycle of [knee, failure - 1] that was replayed?
            window_end = min(last, failure - 1)
            start = max(a.opened, knee_cycle)
            if start <= window_end and (a.resolved is None or a.resolved > start):
                first[a.rule] = min(first.get(a.rule, start), start)
        if first:
            detected_at = min(first.values())
            leads[unit] = failure - detected_at
            for rule, cycle in first.items():
                per_rule[rule]["units_detected"] += 1
                if cycle == detected_at:
                    per_rule[rule]["first_to_detect"] += 1
    return {
        "healthy_cycles": healthy,
        "false_alarms": false_alarms,
        "false_alarms_per_1000": round(1000.0 * false_alarms / healthy, 3) if healthy else None,
        "leads": leads,
        "per_rule": per_rule,
    }


def summarise(lives: Mapping[int, tuple[int, int]], alerts: Sequence[AlertSpan], rules: Sequence[str], *,
              with_rul: bool) -> dict[str, Any]:  # fmt: skip
    scored = score(lives, alerts, rules)
    leads: dict[int, int] = scored.pop("leads")
    if with_rul:
        positives = {u for u, (_, rul) in lives.items() if rul <= POSITIVE_RUL}
        alerted = {a.unit_id for a in alerts}
        tp, fp = len(alerted & positives), len(alerted - positives)
        fn = len(positives - alerted)
        tn = len(lives) - tp - fp - fn
        population = sorted(positives)
        extra: dict[str, Any] = {
            "precision": round(tp / (tp + fp), 4) if tp + fp else None,
            "recall": round(tp / (tp + fn), 4) if tp + fn else None,
            "confusion": {"tp": tp, "fp": fp, "fn": fn, "tn": tn},
            "false_positive_ruls": sorted(lives[u][1] for u in alerted - positives),
            "positive_rul": POSITIVE_RUL,
        }
    else:
        population = sorted(lives)
        extra = {}
    detected = [u for u in population if u in leads]
    values = [float(leads[u]) for u in detected]
    median = percentile(values, 0.5)
    p10 = percentile(values, 0.1)
    return {
        "units": len(lives),
        "scored_units": len(population),
        "detection_rate": round(len(detected) / len(population), 4) if population else None,
        "median_lead_cycles": None if median is None else round(median, 1),
        "p10_lead_cycles": None if p10 is None else round(p10, 1),
        **{k: scored[k] for k in ("false_alarms_per_1000", "false_alarms", "healthy_cycles")},
        **extra,
        "missed_units": [u for u in population if u not in leads],
        "per_rule": scored["per_rule"],
    }


def imminent(lives: Mapping[int, tuple[int, int]], alerts: Sequence[AlertSpan]) -> dict[str, Any]:
    """The critical tier as a classifier of "RUL ≤ 30 at the last observed cycle": a unit is predicted
    positive when an alert is open at its last observed cycle (stop it now), whenever it opened."""
    positives = {u for u, (_, rul) in lives.items() if rul <= POSITIVE_RUL}
    alerted = {a.unit_id for a in alerts if a.open_at(lives[a.unit_id][0])}
    tp, fp = len(alerted & positives), len(alerted - positives)
    fn = len(positives - alerted)
    return {
        "precision": round(tp / (tp + fp), 4) if tp + fp else None,
        "recall": round(tp / (tp + fn), 4) if tp + fn else None,
        "confusion": {"tp": tp, "fp": fp, "fn": fn, "tn": len(lives) - tp - fp - fn},
        "false_positive_ruls": sorted(lives[u][1] for u in alerted - positives),
        "missed_ruls": sorted(lives[u][1] for u in positives - alerted),
        "positive_rul": POSITIVE_RUL,
    }


def by_severity(
    lives: Mapping[int, tuple[int, int]],
    alerts: Sequence[AlertSpan],
    severities: Mapping[str, str],
    *,
    with_rul: bool,
) -> dict[str, Any]:
    """Each severity scored on its own alerts: as early warning (detection before failure, leads,
    false alarms), and the critical tier also as a classifier of imminent failure (with `--rul`)."""
    out: dict[str, Any] = {}
    for severity in SEVERITIES:
        rules = sorted(r for r, s in severities.items() if s == severity)
        if not rules:
            continue
        mine = [a for a in alerts if a.severity == severity]
        tier = summarise(lives, mine, rules, with_rul=with_rul)
        for key in ("precision", "recall", "confusion", "false_positive_ruls"):
            tier.pop(key, None)  # "any alert opened" is the all-severity classifier, not a tier's
        tier["rules"] = rules
        if with_rul and severity == "critical":
            tier.update(imminent(lives, mine))
        out[severity] = tier
    return out
