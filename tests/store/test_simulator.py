from __future__ import annotations

import gc
import json
import math
import os
import signal
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import psycopg
import pytest
from psycopg import sql

from tests.store.epoch import EPOCH
from tests.store.sim_helpers import Background, RecordingSource, expected_keys, stored_keys
from tests.waiting import wait_for
from workloads.catalog import TELEMETRY_COLUMNS
from workloads.cli import main
from workloads.simulator.config import SimulatorConfig
from workloads.simulator.runner import Simulator
from workloads.simulator.spool import Spool
from workloads.sources.cmapss import CmapssSource, load_builtin
from workloads.store.embedded import free_port
from workloads.store.unit_state import quarantine, release

START = EPOCH + timedelta(hours=6)


def config(tmp_path: Path, **kw: object) -> SimulatorConfig:
    base: dict[str, object] = {
        "line": "t",
        "units": 4,
        "rate_hz": 10.0,
        "metrics_port": 0,
        "spool": tmp_path / "t.spool",
    }
    base.update(kw)
    return SimulatorConfig(**base)  # type: ignore[arg-type]


def test_backfill_stores_exactly_what_was_generated(tmp_path: Path, database_url: str) -> None:
    source = RecordingSource()
    sim = Simulator(
        config(tmp_path, units=5, pace=False, ticks=40, start=START, batch_rows=17),
        database_url,
        source=source,
    )
    stats = sim.run()
    assert stats.generated == stats.written == 200 and stats.spool_rows == 0
    assert Counter(stored_keys(database_url, "t")) == Counter(expected_keys(sim, source))
    assert min(ts for _, _, ts in stored_keys(database_url, "t")) == START
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT retention FROM lines WHERE line = 't'").fetchone() == (timedelta(days=7),)
        units = [r[0] for r in conn.execute("SELECT unit_id FROM unit_state WHERE line = 't' ORDER BY 1")]
    assert units == [0, 1, 2, 3, 4]


def test_backfill_of_cmapss_stores_each_reading_whole(tmp_path: Path, database_url: str) -> None:
    """The C-MAPSS fast path (`values`) stores exactly what `reading` describes, at the schedule's ts."""
    source = CmapssSource(load_builtin())
    sim = Simulator(
        config(tmp_path, units=150, pace=False, ticks=3, start=START, batch_rows=101),
        database_url,
        source=source,
    )
    assert sim.run().written == 450
    with psycopg.connect(database_url) as conn:
        stored = conn.execute(
            sql.SQL("SELECT {} FROM telemetry WHERE line = 't'").format(
                sql.SQL(", ").join(map(sql.Identifier, TELEMETRY_COLUMNS))
            )
        ).fetchall()
    expected = []
    for k in range(450):
        unit, tick = sim.schedule.unit(k), sim.schedule.tick(k)
        reading = source.reading(unit, tick)
        assert reading is not None
        expected.append(("t", unit, reading.cycle, sim.schedule.ts(k), *reading.settings, *reading.sensors))
    assert sorted(stored, key=lambda r: (r[3], r[1])) == sorted(expected, key=lambda r: (r[3], r[1]))


def test_a_library_run_leaves_the_collector_as_it_found_it(tmp_path: Path, database_url: str) -> None:
    """gc.freeze is process-wide: only the `simulate` command may do it (see cli.long_lived_heap)."""
    frozen, enabled = gc.get_freeze_count(), gc.isenabled()
    sim = Simulator(
        config(tmp_path, pace=False, ticks=2, start=START), database_url, source=RecordingSource()
    )
    assert sim.run().written == 8
    assert (gc.get_freeze_count(), gc.isenabled()) == (frozen, enabled)


def test_a_shard_streams_only_its_units(tmp_path: Path, database_url: str) -> None:
    source = RecordingSource()
    sim = Simulator(
        config(tmp_path, units=7, shards=3, shard=1, pace=False, ticks=5, start=START),
        database_url,
        source=source,
    )
    sim.run()
    assert {u for u, _, _ in stored_keys(database_url, "t")} == {1, 4}


def test_rows_already_stored_go_through_the_idempotent_path(tmp_path: Path, database_url: str) -> None:
    # the second run overlaps the first: its COPY fails on the primary key, the batch is spooled and
    # replayed through the staged INSERT … ON CONFLICT DO NOTHING, so the union is stored once
    Simulator(
        config(tmp_path, pace=False, ticks=10, start=START), database_url, source=RecordingSource()
    ).run()
    source = RecordingSource()
    sim = Simulator(config(tmp_path, pace=False, ticks=20, start=START), database_url, source=source)
    stats = sim.run()
    assert stats.write_errors >= 1 and stats.replayed > 0 and stats.spool_rows == 0
    assert stats.written == stats.generated == 80
    assert Counter(stored_keys(database_url, "t")) == Counter(expected_keys(sim, source))


def test_paced_run_with_metrics_and_health(tmp_path: Path, database_url: str) -> None:
    port = free_port()
    sim = Simulator(
        config(tmp_path, units=3, rate_hz=20.0, metrics_port=port), database_url, source=RecordingSource()
    )
    run = Background(sim)
    wait_for("rows to be written", lambda: sim.stats().written >= 30)
    base = f"http://127.0.0.1:{port}"
    assert httpx.get(f"{base}/healthz").status_code == 200
    ready = httpx.get(f"{base}/readyz")
    assert (ready.status_code, ready.text.strip()) == (200, "ok")
    text = httpx.get(f"{base}/metrics").text
    assert httpx.get(f"{base}/nope").status_code == 404
    stats = run.stop()

    def sample(name: str) -> float:
        for line in text.splitlines():
            if line.startswith(name + "{") and 'line="t"' in line and 'shard="0"' in line:
                return float(line.rsplit(" ", 1)[1])
        raise AssertionError(f"{name} not exported")

    assert sample("dynoline_simulator_samples_written_total") > 0
    assert sample("dynoline_simulator_lag_seconds_count") > 0
    assert sample("dynoline_simulator_lag_seconds_sum") > 0
    assert sample("dynoline_simulator_samples_generated_total") >= sample(
        "dynoline_simulator_samples_written_total"
    )
    assert sample("dynoline_simulator_spool_depth_rows") == 0
    assert sample("dynoline_simulator_database_up") == 1
    # lag sanity: populated and consistent, no claims about speed
    lag = stats.lag
    assert lag["count"] == stats.written
    p50, p99, top = lag["p50_s"], lag["p99_s"], lag["max_s"]
    assert isinstance(p50, float) and isinstance(p99, float) and isinstance(top, float)
    assert 0 <= p50 <= p99 <= top and math.isfinite(top)
    assert stats.written == stats.generated
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{base}/healthz", timeout=1)  # closed with the simulator


def test_quarantine_stops_a_unit_within_one_tick_and_release_resumes(
    tmp_path: Path, database_url: str
) -> None:
    rate = 10.0
    tick = timedelta(seconds=1 / rate)
    sim = Simulator(config(tmp_path, units=3, rate_hz=rate), database_url, source=RecordingSource())
    run = Background(sim)

    def latest(unit: int) -> datetime | None:
        stamps = [ts for u, _, ts in stored_keys(database_url, "t") if u == unit]
        return max(stamps) if stamps else None

    wait_for("unit 1 to stream", lambda: latest(1) is not None)
    with psycopg.connect(database_url) as conn:
        quarantine(conn, "t", 1, "test", by="test")
        conn.commit()
    quarantined_at = datetime.now(UTC)
    wait_for("other units to stream on", lambda: (latest(0) or quarantined_at) > quarantined_at + 5 * tick)
    last_of_1 = latest(1)
    assert last_of_1 is not None and last_of_1 <= quarantined_at + tick
    assert sim.progress().quarantined == 1

    with psycopg.connect(database_url) as conn:
        release(conn, "t", 1)
        conn.commit()
    released_at = datetime.now(UTC)
    wait_for("unit 1 to resume", lambda: (latest(1) or released_at) > released_at)
    stats = run.stop()
    assert stats.skipped_quarantined > 0
    assert stats.written == stats.generated


def test_a_spool_left_by_a_previous_run_is_replayed_first(tmp_path: Path, database_url: str) -> None:
    # a previous run spooled two ticks and died; this run must store them before streaming on
    leftover = [
        ("t", u, 1, START + timedelta(seconds=0.1 * u), 0.0, 0.0, 100.0, *[1.0] * 21) for u in range(4)
    ]
    with Spool(tmp_path / "t.spool") as spool:
        spool.append(leftover[:2])
        spool.append(leftover[2:])
    source = RecordingSource()
    later = START + timedelta(minutes=1)
    sim = Simulator(config(tmp_path, pace=False, ticks=3, start=later), database_url, source=source)
    stats = sim.run()
    assert stats.recovered == 4 and stats.spool_rows == 0
    stored = Counter(stored_keys(database_url, "t"))
    assert stored == Counter(expected_keys(sim, source) | {(r[1], r[2], r[3]) for r in leftover})


def test_sigterm_flushes_and_exits_zero(tmp_path: Path, database_url: str) -> None:
    spool = tmp_path / "sig.spool"
    proc = subprocess.Popen(
        [sys.executable, "-m", "workloads", "simulate", "--line", "sig", "--units", "3", "--rate", "20",
         "--source", "synthetic", "--seed", "1", "--database-url", database_url, "--spool", str(spool),
         "--metrics-port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        wait_for("rows", lambda: len(stored_keys(database_url, "sig")) >= 30 or proc.poll() is not None)
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    stats = json.loads(out.strip().splitlines()[-1])
    assert stats["generated"] == stats["written"] == len(stored_keys(database_url, "sig"))
    assert stats["spool_rows"] == 0 and os.path.getsize(spool) == 0


def _nothing_written(url: str, spool: Path) -> None:
    with psycopg.connect(url) as conn:
        for table in ("telemetry", "unit_state", "lines"):
            assert conn.execute(f"SELECT count(*) FROM {table}").fetchone() == (0,), table
    assert not spool.exists()


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--rate", "0"], "--rate must be a positive finite number of Hz, got 0.0"),
        (["--rate", "-1"], "--rate must be a positive finite number of Hz, got -1.0"),
        (["--rate", "NaN"], "--rate must be a positive finite number of Hz, got nan"),
        (["--shard", "4", "--shards", "4"], "--shard 4 is out of range: shards are 0..3"),
        (["--units", "-3"], "--units must be at least 1, got -3"),
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(
    flags: list[str], message: str, tmp_path: Path, database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    spool = tmp_path / "bad.spool"
    argv = [
        "simulate",
        "--line",
        "bad",
        "--units",
        "8",
        "--database-url",
        database_url,
        "--spool",
        str(spool),
    ]
    assert main([*argv, "--metrics-port", "0", *flags]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"dynoline: error: {message}"
    _nothing_written(database_url, spool)


@pytest.mark.parametrize(
    ("url", "code", "message"),
    [
        ("postgresql://postgres@127.0.0.1:{port}/x", 4, "cannot reach database 127.0.0.1:{port}/x"),
        ("postgresql://postgres:pw@127.0.0.1:70000/x", 2, "port '70000' is not 1..65535"),
        ("mysql://root@localhost/x", 2, "scheme 'mysql' is not postgresql://"),
        ("host=127.0.0.1 port=5432 dbname", 2, "malformed database URL"),
    ],
)
def test_bad_database_url_is_one_line_and_writes_nothing(
    url: str, code: int, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    port = free_port()
    spool = tmp_path / "bad.spool"
    argv = ["simulate", "--line", "bad", "--units", "2", "--metrics-port", "0", "--spool", str(spool)]
    assert main([*argv, "--database-url", url.format(port=port)]) == code
    err = capsys.readouterr().err.strip()
    assert message.format(port=port) in err and "\n" not in err and "pw" not in err
    assert not spool.exists()


def test_an_unmigrated_database_is_refused(
    tmp_path: Path, empty_database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    spool = tmp_path / "bad.spool"
    argv = ["simulate", "--line", "bad", "--metrics-port", "0", "--spool", str(spool)]
    assert main([*argv, "--database-url", empty_database_url]) == 2
    assert "run `dynoline db migrate` first" in capsys.readouterr().err
    assert not spool.exists()
