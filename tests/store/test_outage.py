"""The database goes away mid-stream and comes back, or the simulator dies: nothing lost, nothing twice."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import httpx
import psycopg
import pytest

from tests.store.sim_helpers import (
    Background,
    RecordingSource,
    distinct_on,
    expected_keys,
    latest,
    stored_keys,
)
from tests.waiting import wait_for
from workloads.simulator.config import SimulatorConfig
from workloads.simulator.runner import Simulator
from workloads.simulator.spool import Spool
from workloads.store.embedded import EmbeddedPostgres, free_port

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
        wait_for("streaming before the outage", lambda: sim.stats().written >= 400)
        pg_server.stop()
        down_since = time.monotonic()
        wait_for("batches to be spooled during the outage", lambda: sim.stats().spooled >= 400)
        time.sleep(max(0.0, OUTAGE_S - (time.monotonic() - down_since)))
        during = sim.stats()
        assert during.write_errors >= 1 and during.spool_rows > 0
        pg_server.start()
        # back: the spool drains in order and direct COPY resumes
        wait_for("the spool to be replayed", lambda: sim.stats().replayed >= during.spooled, timeout=120)
        written = sim.stats().written
        wait_for("streaming after the outage", lambda: sim.stats().written >= written + 400, timeout=120)
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
    with psycopg.connect(database_url) as conn:  # the keeper's interval flushes failed while away
        assert len(latest(conn, "outage")) == 4 and latest(conn, "outage") == distinct_on(conn, "outage")


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
        wait_for("streaming before the outage", lambda: len(stored_keys(database_url, "crash")) >= 100)
        before = set(stored_keys(database_url, "crash"))
        pg_server.stop()
        wait_for("batches to be spooled", lambda: spool.exists() and spool.stat().st_size > 20_000)
        proc.kill()  # SIGKILL: no flush, no goodbye
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
        pg_server.start()

    with Spool(spool) as s:
        _, rows = s.peek(max_rows=10**9)
    spooled = Counter((r[1], r[2], r[3]) for r in rows)
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
    with psycopg.connect(database_url) as conn:  # caught up at the start, then the replay carried over
        assert latest(conn, "crash") == distinct_on(conn, "crash")


def full_spool(tmp_path: Path) -> Path:
    """A spool on a full volume: every append fails with ENOSPC, whoever runs it (root included)."""
    path = tmp_path / "full.spool"
    os.symlink("/dev/full", path)
    return path


def metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} not exported")


def test_sigterm_ends_a_simulator_that_can_neither_store_nor_spool(
    tmp_path: Path, database_url: str, pg_server: EmbeddedPostgres
) -> None:
    port = free_port()
    readyz = f"http://127.0.0.1:{port}/readyz"
    proc = subprocess.Popen(
        [sys.executable, "-m", "workloads", "simulate", "--line", "full", "--units", "3", "--rate", "20",
         "--source", "synthetic", "--seed", "1", "--database-url", database_url,
         "--spool", str(full_spool(tmp_path)), "--metrics-port", str(port), "--batch-rows", "8"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        wait_for("rows", lambda: len(stored_keys(database_url, "full")) >= 30 or proc.poll() is not None)
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        assert httpx.get(readyz).status_code == 200
        pg_server.stop()
        wait_for("/readyz to fail", lambda: httpx.get(readyz).status_code == 503)
        ready = httpx.get(readyz).text.strip()
        scrape = httpx.get(f"http://127.0.0.1:{port}/metrics").text
        proc.send_signal(signal.SIGTERM)
        # a liveness bound, not a timing claim: before the fix this waited for SIGKILL forever
        out, err = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
        pg_server.start()
    assert ready.startswith(f"spool {tmp_path / 'full.spool'} unwritable: No space left on device"), ready
    assert metric(scrape, "dynoline_simulator_spool_writable") == 0
    assert metric(scrape, "dynoline_simulator_database_up") == 0
    assert proc.returncode == 1, err
    stats = json.loads(out.strip().splitlines()[-1])
    assert stats["lost"] > 0 and stats["spooled"] == stats["spool_rows"] == 0
    assert stats["generated"] == stats["written"] + stats["lost"]
    assert stats["written"] == len(stored_keys(database_url, "full"))
    problems = [line for line in err.splitlines() if "cannot append to spool" in line]
    assert len(problems) == 1, err  # said once, not once a second
    assert (
        err.strip().splitlines()[-1] == f"dynoline: error: {stats['lost']} samples lost (see the log above)"
    )
