"""The demo's pure parts: what a run injects and checks, and how its view reads."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from rich.console import Console

from workloads.api.line import CmapssSource
from workloads.demo.plan import Plan, connection_help, fault, fault_unit, interval_seconds, make_plan
from workloads.demo.sentinel import SentinelStatus
from workloads.demo.snapshot import AlertRow, QuarantinedUnit, Snapshot
from workloads.demo.view import Seen, View, alert_text, events, rate_between, render, stream_line
from workloads.errors import DynolineError
from workloads.sentinel.rules import load_rules
from workloads.simulator.runner import Progress

RULES = load_rules(Path(__file__).resolve().parents[2] / "examples" / "rules")
AT = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)  # a fixed instant only ever compared with itself


def _plan(**changes: object) -> Plan:
    options: dict[str, object] = dict(
        line="line-a", units=100, rate_hz=1.0, source=CmapssSource(type="cmapss"), duration=None,
        metrics_port=0, rules=RULES, rules_where="examples/rules", interval="5s", faults=True,
        fault_at_s=60.0, fault_unit=None, spool=Path("spool"),
    )  # fmt: skip
    options.update(changes)
    return make_plan(**options)  # type: ignore[arg-type]


def test_the_default_plan_runs_the_whole_pack_and_one_runaway_a_minute_in() -> None:
    plan = _plan()
    assert len(plan.rules) == len(RULES)
    assert plan.interval_s == 5
    (f,) = plan.config.faults
    assert (f.unit, f.kind, f.start_after, f.ramp_per_minute) == (17, "thermalRunaway", "60s", 30.0)
    assert _plan(faults=False).config.faults == ()


def test_the_fault_lands_on_a_unit_the_line_has() -> None:
    assert fault_unit(100, None) == 17
    assert fault_unit(6, None) == 5
    assert fault_unit(1, None) == 0
    with pytest.raises(DynolineError, match=r"--fault-unit 6: the line has units 0\.\.5"):
        fault_unit(6, 6)
    assert fault(6, 2.5, None).start_after == "2500ms"
    assert fault(6, 0, None).start_after == "1ms"
    with pytest.raises(DynolineError, match="--fault-at"):
        fault(6, -1, None)


def test_a_pack_for_another_line_and_a_bad_interval_are_refused() -> None:
    with pytest.raises(DynolineError, match=r"no rule names line 'demo' \(they name line-a\)"):
        _plan(line="demo")
    with pytest.raises(DynolineError, match="--interval"):
        interval_seconds("soon")
    with pytest.raises(DynolineError, match="at least 1s"):
        interval_seconds("10ms")


def test_the_header_names_a_pasteable_url_in_every_command() -> None:
    url = "postgresql://postgres@127.0.0.1:25432/demo"
    lines = connection_help(url, "line-a", 17)
    assert lines[0] == f"database: {url}"
    assert f"  dynoline unit release --line line-a --unit 17 --database-url {url}" in lines
    assert all(url in line for line in lines if line.startswith("  dynoline"))


def _alert(id_: int, unit: int, rule: str = "t50-rising-fast", *, open_: bool = True) -> AlertRow:
    return AlertRow(
        id_, rule, unit, "critical", "change(T50, 60s)", 21.34, AT, "quarantine", open_,
        {"condition": {"type": "rateOfChange", "sensor": "T50", "window": "60s", "op": ">", "value": 15},
         "description": "LPT outlet temperature rising fast"},
    )  # fmt: skip


def _snapshot(alerts: tuple[AlertRow, ...], quarantined: tuple[int, ...]) -> Snapshot:
    return Snapshot(
        {"critical": len(alerts), "warning": 0, "info": 0},
        tuple(reversed(alerts)),
        alerts,
        tuple(QuarantinedUnit(u, "sentinel:t50-rising-fast", AT, 12.0) for u in quarantined),
    )


def _view(snapshot: Snapshot | None) -> View:
    progress = Progress(97.2, 9700, 9690, 10, 0, 1, True, 0.003, 0.0081)
    return View(
        "line-a", 100, 1.0, progress, 99.0, 9690, 7, 5.0, SentinelStatus(19, 0, None, 0.04, 9000),
        snapshot, fault(100, 60, None),
    )  # fmt: skip


def test_an_alert_reads_as_one_line_with_its_evidence() -> None:
    assert alert_text(_alert(1, 17)) == (
        "critical t50-rising-fast unit 17: change(T50, 60s) reached 21.34 (fires > 15) from 05:06:07,"
        " action quarantine (LPT outlet temperature rising fast)"
    )
    drift = AlertRow(2, "ps30-drift-up", 3, "warning", "z(Ps30, 20s, up)", 3.5, AT, "none", False,
                     {"condition": {"type": "drift", "threshold": 3}})  # fmt: skip
    assert (
        alert_text(drift)
        == "warning ps30-drift-up unit 3: z(Ps30, 20s, up) reached 3.5 (fires > 3) from 05:06:07 [resolved]"
    )


def test_the_plain_line_carries_the_stream_the_alerts_and_the_quarantined_units() -> None:
    line = stream_line(_view(_snapshot((_alert(1, 17),), (17,))))
    assert line == (
        "    97s      99.0 samples/s  lag p50 3 ms p99 8 ms  stored 9,690 rows  spool 0  db up"
        "  alerts 1 critical 0 warning 0 info  quarantined 17"
    )
    assert stream_line(_view(None)).endswith("db up  alerts ?  quarantined ?")
    assert rate_between((1.0, 100), (3.0, 300)) == 100.0
    assert rate_between((3.0, 300), (3.0, 300)) == 0.0


def test_each_alert_and_quarantine_is_told_once() -> None:
    seen = Seen()
    assert events(_snapshot((), (4,)), seen, 1) == ["     1s  already quarantined before this run: units 4"]
    assert events(_snapshot((), (4,)), seen, 2) == []
    told = events(_snapshot((_alert(7, 17),), (4, 17)), seen, 3)
    assert told == [
        f"     3s  ALERT {alert_text(_alert(7, 17))}",
        "     3s  QUARANTINED unit 17 by sentinel:t50-rising-fast: its rows stop",
    ]
    assert events(_snapshot((), (17,)), seen, 4) == ["     4s  RELEASED unit 4: it streams again"]


def test_the_terminal_view_shows_the_newest_alert_and_the_stopped_unit() -> None:
    console = Console(width=140, record=True, color_system=None)
    console.print(render(_view(_snapshot((_alert(1, 3, "ps30-high"), _alert(2, 17)), (17,)))))
    text = console.export_text()
    assert "dynoline demo · line line-a · 100 units at 1 Hz · 97 s" in text and "Ctrl-C stops" in text
    assert "unit 17: thermal runaway (T50, T30 +30 °R/min) from 60 s, running for 37 s" in text
    assert "2 critical   0 warning   0 info" in text
    assert "rule      t50-rising-fast (critical, action quarantine)" in text
    assert "evidence  change(T50, 60s) reached 21.34, fires > 15; first at 05:06:07" in text
    assert "earlier: critical ps30-high unit 3" in text
    assert "sentinel:t50-rising-fast" in text and "12 s" in text
    console = Console(width=140, record=True, color_system=None)
    console.print(render(_view(None)))
    assert "database unreadable" in console.export_text()


def test_units_replay_the_healthy_start_of_their_engine_and_the_fault_rides_on_top() -> None:
    from workloads.demo.source import HEALTHY_CYCLES, demo_source

    spec = CmapssSource(type="cmapss")
    (runaway,) = _plan(fault_at_s=0).config.faults
    source = demo_source(spec, [runaway], 1.0, full_lives=False)
    whole = demo_source(spec, [], 1.0, full_lives=True)
    for unit in (3, 17):
        assert [source.reading(unit, t).cycle for t in (0, HEALTHY_CYCLES - 1, HEALTHY_CYCLES)] == [  # type: ignore[union-attr]
            1, HEALTHY_CYCLES, 1,
        ]  # fmt: skip
    assert whole.reading(3, HEALTHY_CYCLES).cycle == HEALTHY_CYCLES + 1  # type: ignore[union-attr]
    healthy, hot = whole.reading(17, 5), source.reading(17, 5)  # same engine cycle 6, one with the fault
    assert healthy is not None and hot is not None and hot.cycle == healthy.cycle == 6
    assert hot.sensors[3] > healthy.sensors[3]  # T50 ramps up
    assert source.reading(16, 5) == whole.reading(16, 5)  # other units untouched
    assert _plan().source_label == f"FD001, each engine's first {HEALTHY_CYCLES} cycles on a loop"
    assert _plan(full_lives=True).source_label == "FD001 run-to-failure lives"
