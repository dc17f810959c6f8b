"""A tiny deterministic source for simulator tests, and helpers comparing what was generated and stored."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

import psycopg

from workloads.catalog import TELEMETRY_COLUMNS
from workloads.sample import Reading
from workloads.simulator.runner import RunStats, Simulator
from workloads.store.partitions import ensure_partitions
from workloads.store.rows import every


class RecordingSource:
    """Readings derived from (unit, tick); remembers every one it handed out."""

    def __init__(self) -> None:
        self.handed_out: list[tuple[int, int]] = []

    def reading(self, unit_id: int, tick: int) -> Reading | None:
        self.handed_out.append((unit_id, tick))
        return Reading(
            unit_id,
            tick + 1,
            (0.001 * unit_id, 0.0, 100.0),
            tuple(600.0 + unit_id + tick / 1000 + i for i in range(21)),
        )


def expected_keys(sim: Simulator, source: RecordingSource) -> set[tuple[int, int, datetime]]:
    """(unit_id, cycle, ts) of every sample the generator produced."""
    sched = sim.schedule
    slot = {u: i for i, u in enumerate(sim.units)}
    return {(u, t + 1, sched.ts(t * sched.width + slot[u])) for u, t in source.handed_out}


def stored_keys(url: str, line: str) -> list[tuple[int, int, datetime]]:
    def key(unit: int, cycle: int, ts: datetime) -> tuple[int, int, datetime]:
        return unit, cycle, ts

    with psycopg.connect(url) as conn:
        return every(conn, key, "SELECT unit_id, cycle, ts FROM telemetry WHERE line = %s", (line,))


def partitions_around(conn: psycopg.Connection[tuple[object, ...]], at: datetime) -> None:
    """Daily partitions from the day before `at` to the day after, committed: room for a test's rows."""
    ensure_partitions(conn, at - timedelta(days=1), at + timedelta(days=1))
    conn.commit()


@contextmanager
def partitioned(url: str, at: datetime) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    """A connection to `url` with `partitions_around(at)` in place."""
    with psycopg.connect(url) as conn:
        partitions_around(conn, at)
        yield conn


Keyed = dict[tuple[object, object], tuple[object, ...]]
_COLS = ", ".join(TELEMETRY_COLUMNS)


def latest(conn: psycopg.Connection[tuple[object, ...]], line: str | None = None) -> Keyed:
    """telemetry_latest by (line, unit_id), of one line or all."""
    rows = conn.execute(
        f"SELECT {_COLS} FROM telemetry_latest WHERE %(line)s::text IS NULL OR line = %(line)s",
        {"line": line},
    ).fetchall()
    return {(r[0], r[1]): r for r in rows}


def distinct_on(conn: psycopg.Connection[tuple[object, ...]], line: str | None = None) -> Keyed:
    """What telemetry_latest must equal once everything committed is carried over: the newest row per unit."""
    rows = conn.execute(
        f"SELECT DISTINCT ON (line, unit_id) {_COLS} FROM telemetry"
        " WHERE %(line)s::text IS NULL OR line = %(line)s ORDER BY line, unit_id, ts DESC",
        {"line": line},
    ).fetchall()
    return {(r[0], r[1]): r for r in rows}


class Background:
    """Run a simulator on a thread; `stop()` ends it and returns its stats."""

    def __init__(self, sim: Simulator) -> None:
        self.sim = sim
        self.stop_event = threading.Event()
        self.result: list[RunStats | BaseException] = []
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            self.result.append(self.sim.run(self.stop_event))
        except BaseException as exc:
            self.result.append(exc)

    def stop(self) -> RunStats:
        self.stop_event.set()
        self.thread.join(timeout=120)
        assert not self.thread.is_alive(), "simulator did not stop"
        (result,) = self.result
        if isinstance(result, BaseException):
            raise result
        return result
