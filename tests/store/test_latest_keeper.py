"""telemetry_latest with an interval: behind committed telemetry until a flush, never ahead, never back.

The keeper and the catch-up are driven one call at a time on a real PostgreSQL; the kill case runs a
real `dynoline simulate` process and SIGKILLs it between a commit and the next flush.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from tests.store.epoch import EPOCH
from tests.store.sim_helpers import RecordingSource, distinct_on, latest, partitioned
from tests.waiting import wait_for
from workloads.simulator.config import SimulatorConfig
from workloads.simulator.delivery import Delivery
from workloads.simulator.health import Health
from workloads.simulator.latest import LatestKeeper
from workloads.simulator.metrics import SimulatorMetrics
from workloads.simulator.runner import Simulator
from workloads.simulator.spool import Spool
from workloads.simulator.stats import Counts
from workloads.store.embedded import free_port
from workloads.store.writer import Key, catch_up_latest, copy_rows, fold_newest

T0 = EPOCH + timedelta(hours=12)
Row = tuple[object, ...]


def sample(unit: int, second: int, line: str = "k") -> Row:
    return (line, unit, second + 1, T0 + timedelta(seconds=second), 0.5, 0.0, 100.0, *[600.0 + second] * 21)


def rows(units: range, seconds: range) -> list[Row]:
    return [sample(u, s) for s in seconds for u in units]


class Clock:
    """Wall time the test sets: the caught-up gauge's values are then exact."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def keeper(url: str, clock: Clock | None = None) -> LatestKeeper:
    return LatestKeeper(url, 60.0, SimulatorMetrics("k", 0), Health(), threading.Event(), clock or Clock())


def gauge(metrics: SimulatorMetrics, name: str) -> float | None:
    return metrics.registry.get_sample_value(f"dynoline_simulator_{name}", {"line": "k", "shard": "0"})


def pending_gauge(k: LatestKeeper) -> float | None:
    return gauge(k.metrics, "latest_pending_units")


def caught_up(k: LatestKeeper) -> float | None:
    return gauge(k.metrics, "latest_caught_up_timestamp_seconds")


def hand_over_while_away(
    conn: psycopg.Connection[tuple[object, ...]], k: LatestKeeper, batch: list[Row]
) -> None:
    """Commit a batch to telemetry, hand it to the keeper, fold it; then point the keeper at no database."""
    copy_rows(conn, batch)
    conn.commit()
    k.note(batch)
    k.fold_handed()
    k.url = f"postgresql://dynoline@127.0.0.1:{free_port()}/dynoline"


@pytest.fixture
def conn(database_url: str) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    with partitioned(database_url, T0) as c:
        yield c


def test_fold_keeps_the_newest_row_per_unit_whatever_the_order() -> None:
    newest: dict[Key, Row] = {}
    fold_newest(newest, rows(range(3), range(2, 4)))
    fold_newest(newest, rows(range(4), range(0, 2)))  # an older batch (a replayed spool) for 0-2, new unit 3
    assert newest == {
        ("k", 0): sample(0, 3),
        ("k", 1): sample(1, 3),
        ("k", 2): sample(2, 3),
        ("k", 3): sample(3, 1),
    }


def test_noted_batches_reach_the_table_at_the_flush_not_before(
    conn: psycopg.Connection[tuple[object, ...]], database_url: str
) -> None:
    k = keeper(database_url)
    try:
        first, second = rows(range(3), range(0, 2)), rows(range(1, 4), range(2, 4))
        for batch in (first, second):
            copy_rows(conn, batch)
            conn.commit()
            k.note(batch)
        k.fold_handed()
        assert latest(conn) == {}  # behind committed telemetry until the flush ...
        assert pending_gauge(k) == 4
        assert k.flush()
        assert latest(conn) == distinct_on(conn)  # ... then equal to it
        assert pending_gauge(k) == 0 and k.pending == {}
        assert k.flush()  # nothing pending: nothing sent
    finally:
        k.close()


def test_a_failed_flush_keeps_the_rows_and_the_next_one_carries_them(
    conn: psycopg.Connection[tuple[object, ...]], database_url: str
) -> None:
    k = keeper(database_url)
    hand_over_while_away(conn, k, rows(range(2), range(0, 3)))
    assert not k.flush()
    assert len(k.pending) == 2 and latest(conn) == {}
    k.url = database_url
    try:
        assert k.flush()
        assert latest(conn) == distinct_on(conn)
    finally:
        k.close()


def test_the_caught_up_gauge_moves_only_when_nothing_is_left_behind(
    conn: psycopg.Connection[tuple[object, ...]], database_url: str
) -> None:
    """What DynolineSimulatorLatestStale reads: a keeper that keeps failing must show its age."""
    clock = Clock()
    k = keeper(database_url, clock)
    assert caught_up(k) == 1_000.0  # at start nothing is behind
    # a shard without a keeper (latestInterval 0s) exports no such series, not a 0 the alert would age
    assert gauge(SimulatorMetrics("k", 0), "latest_caught_up_timestamp_seconds") is None
    clock.now = 1_010.0
    assert k.flush()  # nothing handed over: still caught up, now
    assert caught_up(k) == 1_010.0
    hand_over_while_away(conn, k, rows(range(2), range(0, 3)))
    for clock.now in (1_020.0, 1_030.0):
        assert not k.flush()
        assert caught_up(k) == 1_010.0  # failures leave it behind
    k.url = database_url
    clock.now = 1_040.0
    try:
        assert k.flush()
        assert caught_up(k) == 1_040.0
        assert latest(conn) == distinct_on(conn)
    finally:
        k.close()


def test_the_writer_notes_only_what_it_committed(
    tmp_path: Path, conn: psycopg.Connection[tuple[object, ...]], database_url: str
) -> None:
    k = keeper(database_url)
    config = SimulatorConfig(line="k", units=4, rate_hz=1.0, metrics_port=0, spool=tmp_path / "k.spool")
    d = Delivery(config, database_url, k.metrics, Health(), Counts(), threading.Event(), k)
    d.spool = Spool(tmp_path / "k.spool")
    try:
        d.deliver(rows(range(2), range(0, 1)))
        # one key already stored: COPY refuses the whole batch, which is spooled, not committed
        d.deliver([sample(0, 0), sample(1, 5)])
        k.fold_handed()
        assert k.pending == {
            ("k", 0): sample(0, 0),
            ("k", 1): sample(1, 0),
        }  # not unit 1's uncommitted second 5
        d.replay(deadline=None)  # stored idempotently now: committed, so noted
        k.fold_handed()
        assert k.pending == {("k", 0): sample(0, 0), ("k", 1): sample(1, 5)}
        assert latest(conn) == {}  # in interval mode the writer's transactions leave the table alone
        assert k.flush()
        assert latest(conn) == distinct_on(conn) == {("k", 0): sample(0, 0), ("k", 1): sample(1, 5)}
    finally:
        d.close()
        k.close()


def test_catch_up_moves_the_given_units_forward_only(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    copy_rows(conn, rows(range(4), range(0, 5)))
    conn.commit()
    assert catch_up_latest(conn, "k", [0, 1, 2]) == 3  # unit 3 is another shard's
    conn.commit()
    assert latest(conn) == {("k", u): sample(u, 4) for u in range(3)}
    assert catch_up_latest(conn, "k", [0, 1, 2]) == 0  # nothing newer: nothing rewritten
    copy_rows(conn, [sample(0, 7), sample(1, 2, line="other")])
    conn.commit()
    assert catch_up_latest(conn, "k", range(4)) == 2  # unit 0's new row and unit 3; never another line
    conn.commit()
    assert latest(conn) == distinct_on(conn, "k")


@pytest.mark.slow
def test_a_killed_simulator_leaves_latest_behind_and_the_next_start_catches_up(
    tmp_path: Path, database_url: str
) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "workloads", "simulate", "--line", "kill", "--units", "3", "--rate", "20",
         "--source", "synthetic", "--database-url", database_url, "--spool", str(tmp_path / "s.spool"),
         "--metrics-port", "0", "--latest-interval-ms", "60000"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        with psycopg.connect(database_url, autocommit=True) as c:
            wait_for("samples to be committed", lambda: len(distinct_on(c, "kill")) == 3)
            proc.kill()  # SIGKILL: the keeper's interval (60 s) has not come round
            proc.wait(timeout=60)
            assert latest(c, "kill") != distinct_on(c, "kill")  # the kill left the table behind
    finally:
        if proc.poll() is None:
            proc.kill()
    # the next start writes only older samples (a backfill a day back), which move no unit forward:
    # so only the catch-up can make the table whole again
    day_before = datetime.now(UTC) - timedelta(days=1)
    cfg = SimulatorConfig(
        line="kill", units=3, rate_hz=20.0, metrics_port=0, spool=tmp_path / "s.spool", pace=False,
        ticks=2, start=day_before,
    )  # fmt: skip
    Simulator(cfg, database_url, source=RecordingSource()).run()
    with psycopg.connect(database_url) as c:
        assert latest(c, "kill") == distinct_on(c, "kill")
