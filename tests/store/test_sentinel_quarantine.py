"""Stop the line: a quarantine rule flags the unit, the simulator stops it, `unit release` lifts it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from tests.store.sentinel_series import alerts, rules, run, write
from tests.store.sim_helpers import Background, stored_keys
from tests.waiting import wait_for
from workloads.cli import main
from workloads.sample import Reading
from workloads.sentinel.runner import run_once
from workloads.simulator.config import SimulatorConfig
from workloads.simulator.runner import Simulator
from workloads.store.rows import every

QUARANTINE = """
- name: t50-runaway
  severity: critical
  action: quarantine
  condition: {type: threshold, sensor: T50, op: ">", value: 1450}
"""


def quarantined(url: str, line: str) -> dict[int, tuple[bool, str | None, str | None]]:
    def state(
        unit: int, q: bool, reason: str | None, by: str | None
    ) -> tuple[int, tuple[bool, str | None, str | None]]:
        return unit, (q, reason, by)

    with psycopg.connect(url) as conn:
        return dict(
            every(
                conn,
                state,
                "SELECT unit_id, quarantined, reason, quarantined_by FROM unit_state WHERE line = %s",
                (line,),
            )
        )


def test_a_quarantine_rule_flags_the_unit_once_and_release_lifts_it(
    database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    loaded = rules(QUARANTINE)
    write(database_url, 3, [1400, 1460, 1470])
    write(database_url, 4, [1400, 1400, 1400])
    result = run(database_url, loaded, 2)
    assert result.quarantined == [3]
    state = quarantined(database_url, "line-t")
    assert state[3][0] and state[3][2] == "sentinel:t50-runaway" and "t50-runaway" in (state[3][1] or "")
    assert 4 not in state
    write(database_url, 3, [1480], start=3)
    assert run(database_url, loaded, 3).quarantined == []  # the same open alert: no second quarantine
    assert main(["unit", "release", "--line", "line-t", "--unit", "3", "--database-url", database_url]) == 0
    assert '"quarantined": false' in capsys.readouterr().out
    assert not quarantined(database_url, "line-t")[3][0]
    assert len(alerts(database_url)) == 1  # releasing the unit does not touch its alert


class SpikingSource:
    """Healthy readings; unit 1's T50 jumps to 1500 from tick 20 on (a stand-in for a thermal runaway)."""

    def reading(self, unit_id: int, tick: int) -> Reading:
        sensors = [500.0] * 21
        sensors[3] = 1500.0 if unit_id == 1 and tick >= 20 else 1400.0
        return Reading(unit_id, tick + 1, (0.0, 0.0, 100.0), tuple(sensors))


def test_the_simulator_stops_a_quarantined_unit_within_a_tick_and_resumes_on_release(
    tmp_path: Path, database_url: str
) -> None:
    rate = 10.0
    tick = timedelta(seconds=1 / rate)
    config = SimulatorConfig(line="line-q", units=3, rate_hz=rate, metrics_port=0, spool=tmp_path / "q.spool")
    sim = Simulator(config, database_url, source=SpikingSource())
    loaded = rules(QUARANTINE, line="line-q")
    background = Background(sim)
    try:

        def latest(unit: int) -> datetime | None:
            stamps = [ts for u, _, ts in stored_keys(database_url, "line-q") if u == unit]
            return max(stamps) if stamps else None

        def sentinel_quarantined() -> bool:
            summary = run_once(database_url, loaded, grace=timedelta(0), backfill=None)
            return 1 in summary.lines["line-q"].quarantined

        wait_for("the sentinel to quarantine unit 1", sentinel_quarantined)
        quarantined_at = datetime.now(UTC)
        wait_for(
            "other units to stream on", lambda: (latest(0) or quarantined_at) > quarantined_at + 5 * tick
        )
        last_of_1 = latest(1)
        assert last_of_1 is not None and last_of_1 <= quarantined_at + tick
        assert (
            main(["unit", "release", "--line", "line-q", "--unit", "1", "--database-url", database_url]) == 0
        )
        released_at = datetime.now(UTC)
        wait_for("unit 1 to resume", lambda: (latest(1) or released_at) > released_at)
    finally:
        stats = background.stop()
    assert stats.skipped_quarantined > 0
    (a,) = [a for a in alerts(database_url, "line-q") if a["unit_id"] == 1]
    assert a["rule"] == "t50-runaway" and a["worst_value"] == 1500
