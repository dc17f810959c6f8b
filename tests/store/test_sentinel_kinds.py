"""Every condition kind on hand-built series in a real PostgreSQL: fires, holds, clears, no duplicates."""

from __future__ import annotations

import json
import math
from pathlib import Path

import psycopg

from tests.store.sentinel_series import alerts, fingerprint, rules, run, seconds_of, write
from workloads.sentinel import rul
from workloads.sentinel.alerts import list_alerts, render_table
from workloads.sentinel.rules import LoadedRule


def replay_changes_nothing(url: str, loaded: list[LoadedRule], until: float) -> None:
    """Running the same window again, and even replaying it all from scratch, leaves the alerts alone."""
    before = fingerprint(url)
    recorded = alerts(url)
    again = run(url, loaded, until)
    assert (again.samples, again.opened, again.updated, again.resolved) == (0, 0, 0, 0)
    assert fingerprint(url) == before
    with psycopg.connect(url) as conn:
        conn.execute("DELETE FROM sentinel_watermarks")
        conn.commit()
    replay = run(url, loaded, until)
    assert replay.samples > 0 and (replay.opened, replay.updated, replay.resolved) == (0, 0, 0)
    assert alerts(url) == recorded
    after = fingerprint(url)
    # alerts, baselines and unit state untouched; only the watermarks were made again
    assert (after[0], after[2], after[3]) == (before[0], before[2], before[3])


THRESHOLD = """
- name: t50-hot
  severity: critical
  condition: {type: threshold, sensor: T50, op: ">", value: 1430}
  clear: {op: "<", value: 1425}
"""


def test_threshold_fires_holds_through_hysteresis_and_clears(database_url: str) -> None:
    loaded = rules(THRESHOLD)
    write(database_url, 1, [1400] * 10 + [1435, 1436] + [1428] * 3 + [1420] * 5)
    write(database_url, 2, [1400] * 20)
    assert run(database_url, loaded, 9).opened == 0
    first = run(database_url, loaded, 11)
    assert first.samples == 4 and first.opened == 1
    (a,) = alerts(database_url)
    assert a["unit_id"] == 1 and a["open"] and a["severity"] == "critical" and a["statistic"] == "T50"
    assert (seconds_of(a["first_sample_ts"]), seconds_of(a["last_sample_ts"])) == (10, 11)
    assert a["worst_value"] == 1436 and a["hits"] == 2
    assert a["evidence"]["condition"] == {"type": "threshold", "sensor": "T50", "op": ">", "value": 1430.0}
    # 1428: no longer firing, not yet clear (hysteresis): the alert stays open, unchanged
    held = run(database_url, loaded, 14)
    assert (held.opened, held.updated, held.resolved) == (0, 0, 0)
    assert alerts(database_url)[0]["open"]
    cleared = run(database_url, loaded, 19)
    assert cleared.resolved == 1
    (a,) = alerts(database_url)
    assert not a["open"] and seconds_of(a["resolved_sample_ts"]) == 19 and a["hits"] == 2
    replay_changes_nothing(database_url, loaded, 19)


def test_threshold_updates_while_it_holds_and_opens_a_new_episode_later(database_url: str) -> None:
    loaded = rules(THRESHOLD)
    write(database_url, 1, [1431, 1440, 1433, 1432, 1433, 1420, 1420, 1445, 1420])
    run(database_url, loaded, 1)
    run(database_url, loaded, 4)  # holds: updated
    (a,) = alerts(database_url)
    assert a["open"] and a["hits"] == 5 and a["worst_value"] == 1440 and seconds_of(a["last_sample_ts"]) == 4
    run(database_url, loaded, 6)  # clears
    run(database_url, loaded, 8)  # fires again and clears within the pass: a new, resolved episode
    first, second = alerts(database_url)
    assert not first["open"] and not second["open"]
    assert seconds_of(second["first_sample_ts"]) == 7 and second["worst_value"] == 1445
    assert seconds_of(second["resolved_sample_ts"]) == 8
    replay_changes_nothing(database_url, loaded, 8)


def test_sustained_for_a_duration_is_exact_across_pass_boundaries(database_url: str) -> None:
    loaded = rules("""
- name: t50-sustained
  condition: {type: sustained, sensor: T50, op: ">", value: 1420, for: 5s}
""")
    # unit 1: a 4-second run (never 5 s long), then a run from second 10 that a pass boundary cuts at 12
    write(database_url, 1, [1400] * 2 + [1425] * 4 + [1400] * 4 + [1425] * 9 + [1400] * 3)
    # unit 2: above the value at every other sample only: never sustained
    write(database_url, 2, [1425, 1400] * 11)
    assert run(database_url, loaded, 12).opened == 0
    assert run(database_url, loaded, 16).opened == 1
    (a,) = alerts(database_url)
    assert a["unit_id"] == 1 and a["open"]
    assert seconds_of(a["first_sample_ts"]) == 15  # the run began at 10 and has lasted 5 s at 15
    assert a["hits"] == 2 and seconds_of(a["last_sample_ts"]) == 16
    assert run(database_url, loaded, 21).updated == 1
    (a,) = alerts(database_url)
    assert not a["open"] and seconds_of(a["last_sample_ts"]) == 18 and a["hits"] == 4
    replay_changes_nothing(database_url, loaded, 21)


def test_sustained_k_of_n_counts_samples_before_the_watermark(database_url: str) -> None:
    loaded = rules("""
- name: t50-3-of-5
  condition: {type: sustained, sensor: T50, op: ">", value: 1420, k: 3, n: 5}
  clear: {op: "<", value: 1410}
""")
    # firing at 4, 6 (before the first watermark at 6) and 8: the third makes 3 of the last 5 at 8
    write(database_url, 1, [1400] * 4 + [1425, 1415, 1425, 1415, 1425] + [1415] * 4 + [1400] * 3)
    write(database_url, 2, [1425, 1400, 1400, 1400] * 4)  # 1 in 4: never 3 of 5
    assert run(database_url, loaded, 6).opened == 0
    assert run(database_url, loaded, 10).opened == 1
    (a,) = alerts(database_url)
    assert a["unit_id"] == 1 and seconds_of(a["first_sample_ts"]) == 8 and a["worst_value"] == 1425
    assert run(database_url, loaded, 12).resolved == 0  # 1415: not held, not yet clear (hysteresis)
    assert run(database_url, loaded, 15).resolved == 1
    replay_changes_nothing(database_url, loaded, 15)


def test_rate_of_change_fires_on_a_ramp_and_resolves_when_it_flattens(database_url: str) -> None:
    loaded = rules("""
- name: t50-rising
  severity: critical
  condition: {type: rateOfChange, sensor: T50, window: 10s, op: ">", value: 8}
""")
    ramp = [1400.0] * 20 + [1400.0 + 1.0 * i for i in range(1, 16)] + [1415.0] * 20
    write(database_url, 1, ramp)
    write(database_url, 2, [1400.0 + (i % 2) * 6 for i in range(55)])  # noisy but flat
    assert run(database_url, loaded, 19).opened == 0
    run(database_url, loaded, 26)
    run(database_url, loaded, 30)
    (a,) = alerts(database_url)
    assert a["unit_id"] == 1 and a["open"] and a["statistic"] == "change(T50, 10s)"
    assert 8 < a["worst_value"] <= 10.5  # a 1 °R/s ramp fitted over 10 s: about 10 °R
    assert a["hits"] == 2
    run(database_url, loaded, 54)
    (a,) = alerts(database_url)
    assert not a["open"] and seconds_of(a["resolved_sample_ts"]) == 54
    replay_changes_nothing(database_url, loaded, 54)


def test_drift_from_each_units_own_baseline_and_a_new_life_gets_a_new_one(database_url: str) -> None:
    loaded = rules("""
- name: ps30-drift
  condition: {type: drift, sensor: Ps30, baselineSamples: 10, window: 5s, threshold: 3, direction: up}
  clear: {op: "<", value: 1}
""")
    noise = [0.0, 0.1, -0.1, 0.05, -0.05, 0.1, -0.1, 0.0, 0.05, -0.05]  # sd 0.072
    unit1 = [47.5 + n for n in noise] + [47.5 + n for n in noise] + [48.0 + n for n in noise]
    unit2 = [48.0 + n for n in noise] * 3  # starts high, never moves: its own baseline says all is well
    write(database_url, 1, unit1, sensor_name="Ps30")
    write(database_url, 2, unit2, sensor_name="Ps30")
    run(database_url, loaded, 9)  # the baselines' lives begin
    run(database_url, loaded, 19)  # baselines are complete; still on them
    assert alerts(database_url) == []
    run(database_url, loaded, 29)
    (a,) = alerts(database_url)
    assert a["unit_id"] == 1 and a["open"] and a["worst_value"] > 5  # (48.0 - 47.5) / 0.072 ≈ 7
    with psycopg.connect(database_url) as conn:
        (life, means) = conn.execute(
            "SELECT life_start, means[11] FROM sentinel_baselines WHERE unit_id = 1 AND samples = 10"
        ).fetchone() or (None, None)
    assert seconds_of(life) == 0 and abs(float(str(means)) - 47.5) < 1e-9
    # unit 1 is replaced by a new engine (cycle 1 again) running at 48.0: a new life, a new baseline
    write(database_url, 1, [48.0 + n for n in noise] * 2, sensor_name="Ps30", start=30)
    run(database_url, loaded, 39)
    run(database_url, loaded, 49)
    with psycopg.connect(database_url) as conn:
        (life, means) = conn.execute(
            "SELECT life_start, means[11] FROM sentinel_baselines WHERE unit_id = 1 AND samples = 10"
        ).fetchone() or (None, None)
    assert seconds_of(life) == 30 and abs(float(str(means)) - 48.0) < 1e-9
    (a,) = alerts(database_url)
    assert not a["open"]  # judged against the new engine's own baseline, it is back to normal
    replay_changes_nothing(database_url, loaded, 49)


def test_health_index_matches_the_model_and_clears(database_url: str, tmp_path: Path) -> None:
    model = {
        "format": "dynoline.dev/health-index/v1",
        "intercept": 0.0,
        "sensors": [{"name": "T50", "center": 1400.0, "scale": 10.0, "weight": 0.1}],
    }
    (tmp_path / "m.json").write_text(json.dumps(model))
    hi = rules(
        """
- name: hi
  condition: {type: healthIndex, model: m.json, window: 3s, op: ">", value: 0.5}
  clear: {op: "<", value: 0.2}
""",
        base=tmp_path,
    )
    hi_model = hi[0].model
    assert hi_model is not None
    # score = 0.1 * (T50 - 1400) / 10: over 0.5 once the 3-second mean of T50 passes 1450
    write(database_url, 1, [1400] * 5 + [1460, 1470, 1480] + [1400] * 5)
    run(database_url, hi, 6)
    assert alerts(database_url) == []  # seconds 4..6: mean 1443.3, score 0.433
    run(database_url, hi, 7)
    (a,) = alerts(database_url)
    assert a["open"] and a["statistic"] == "hi(m.json, 3s)"
    assert abs(a["worst_value"] - hi_model.score({"T50": (1460 + 1470 + 1480) / 3})) < 1e-9
    run(database_url, hi, 8)  # mean 1450: score 0.5, neither over 0.5 nor under 0.2: held open
    (a,) = alerts(database_url)
    assert a["open"] and a["hits"] == 1
    run(database_url, hi, 12)
    assert not alerts(database_url)[0]["open"]
    replay_changes_nothing(database_url, hi, 12)


def test_a_unit_selector_and_other_lines_are_respected(database_url: str) -> None:
    loaded = rules("""
- name: t50-hot-unit-2
  units: [2]
  condition: {type: threshold, sensor: T50, op: ">", value: 1430}
""")
    for unit in (1, 2, 3):
        write(database_url, unit, [1440] * 3)
    write(database_url, 2, [1440] * 3, line="other")
    run(database_url, loaded, 2)
    assert [(a["rule"], a["unit_id"]) for a in alerts(database_url)] == [("t50-hot-unit-2", 2)]
    assert alerts(database_url, "other") == []


def test_rul_matches_the_reference_estimator_and_keeps_the_interval(
    database_url: str, tmp_path: Path
) -> None:
    model = {
        "format": "dynoline.dev/health-index/v1",
        "intercept": 0.0,
        "sensors": [{"name": "T50", "center": 1400.0, "scale": 10.0, "weight": 0.1}],
    }
    (tmp_path / "m.json").write_text(json.dumps(model))
    loaded = rules(
        """
- name: rul-low
  severity: critical
  condition: {type: rul, model: m.json, window: 20s, op: "<=", value: 30}
""",
        base=tmp_path,
    )
    hi_model = loaded[0].model
    assert hi_model is not None
    # health index 0.01 * (T50 - 1400): rising exponentially with a deterministic wobble, 60 cycles
    scores = [0.05 * math.exp(0.045 * c) + 0.02 * math.sin(c) for c in range(1, 61)]
    write(database_url, 1, [1400 + 100 * h for h in scores])
    write(database_url, 2, [1400.0] * 60)  # flat and healthy: never fires
    for until in (20, 35, 50, 59):
        run(database_url, loaded, until)
    (a,) = alerts(database_url)
    assert a["unit_id"] == 1 and a["statistic"] == "rul_low(m.json, 20s)" and a["open"]
    # the window (until - 20 s, until] holds the samples of seconds until-19 .. until, cycles +1
    cycles = [float(s + 1) for s in range(40, 60)]
    expected = rul.estimate(cycles, [scores[int(c) - 1] for c in cycles], horizon=125.0, confidence=0.9)
    assert expected is not None and expected.low <= 30
    got = a["evidence"]["rul"]
    assert got["estimate"] == round(expected.cycles, 1) and got["low"] == round(expected.low, 1)
    assert got["high"] == round(expected.high, 1) and got["low"] <= got["estimate"] <= got["high"]
    first = seconds_of(a["first_sample_ts"])
    assert first in (50, 59)  # opened at the first pass whose lower bound reached 30 cycles
    rendered = render_table(list_alerts(database_url))
    assert f"RUL ≈ {expected.cycles:.0f} cycles ({expected.low:.0f}\u2013{expected.high:.0f})" in rendered
