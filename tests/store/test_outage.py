"""The database goes away mid-stream and comes back, or the simulator dies: nothing lost, nothing twice."""

from __future__ import annotations

import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.store.sim_helpers import Background, RecordingSource, expected_keys, stored_keys, wait_for
from workloads.simulator.config import SimulatorConfig
from workloads.simulator.runner import Simulator
from workloads.simulator.spool import Spool
from workloads.store.embedded import EmbeddedPostgres

OUTAGE_S = 12.0


@pytest.mark.slow
def test_outage_loses_nothing_and_duplicates_nothing(
    tmp_path: Path, database_url: str, pg_server: EmbeddedPostgres
) -> None:
    source = RecordingSource()
    cfg = SimulatorConfig(
        line="outage", units=4, rate_hz=50.0, metrics_port=0, spool=tmp_path / "o.spool", batch_rows=64
    )
    sim = Simulator(cfg, database_url, source=source)
    run = Background(sim)
    try:
        wait_for(lambda: sim.stats().written >= 400, "streaming before the outage")
        pg_server.stop()
        down_since = time.monotonic()
        wait_for(lambda: sim.stats().spooled >= 400, "batches to be spooled during the outage")
        time.sleep(max(0.0, OUTAGE_S - (time.monotonic() - down_since)))
        during = sim.stats()
        assert during.write_errors >= 1 and during.spool_rows > 0
        pg_server.start()
        # back: the spool drains in order and direct COPY resumes
        wait_for(lambda: sim.stats().replayed >= during.spooled, "the spool to be replayed", timeout=120)
        written = sim.stats().written
        wait_for(lambda: sim.stats().written >= written + 400, "streaming after the outage", timeout=120)
    finally:
        pg_server.start()
        stats = run.stop()

    assert stats.spool_rows == 0
    assert stats.generated == stats.written
    assert stats.replayed >= during.spooled
    generated = expected_keys(sim, source)
    assert len(generated) == stats.generated  # every sample the generator produced has its own key
    stored = Counter(stored_keys(database_url, "outage"))
    assert sum(stored.values()) == stats.generated
    assert set(stored) == generated
    assert max(stored.values()) == 1


@pytest.mark.slow
def test_a_killed_simulator_leaves_a_spool_the_next_one_replays(
    tmp_path: Path, database_url: str, pg_server: EmbeddedPostgres
) -> None:
    spool = tmp_path / "crash.spool"
    proc = subprocess.Popen(
        [sys.executable, "-m", "workloads", "simulate", "--line", "crash", "--units", "3", "--rate", "50",
         "--source", "synthetic", "--database-url", database_url, "--spool", str(spool),
         "--metrics-port", "0"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_for(lambda: len(stored_keys(database_url, "crash")) >= 100, "streaming before the outage")
        before = set(stored_keys(database_url, "crash"))
        pg_server.stop()
        wait_for(lambda: spool.exists() and spool.stat().st_size > 20_000, "batches to be spooled")
        proc.kill()  # SIGKILL: no flush, no goodbye
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
        pg_server.start()

    with Spool(spool) as s:
        _, rows = s.peek(max_rows=10**9)
    spooled = Counter((int(str(r[1])), int(str(r[2])), r[3]) for r in rows)
    assert spooled and max(spooled.values()) == 1
    assert not set(spooled) & before  # spooled while the database was down, so never stored

    sim = Simulator(
        SimulatorConfig(
            line="crash", units=3, rate_hz=50.0, metrics_port=0, spool=spool, pace=False, ticks=1
        ),
        database_url,
        source=RecordingSource(),
    )
    stats = sim.run()
    assert stats.recovered == sum(spooled.values())
    assert stats.spool_rows == 0
    stored = Counter(stored_keys(database_url, "crash"))
    assert max(stored.values()) == 1
    assert set(spooled) <= set(stored)
    assert before <= set(stored)
