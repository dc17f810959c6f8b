"""What `dynoline bench stream` watches from outside the simulator: a reader process, CPU and memory.

The reader is a process of its own, like a dashboard, so its polling shares neither the simulator's
interpreter lock nor its connection. Server CPU comes from /proc when the server runs on this
machine; the simulator's CPU and memory from this process (it runs the simulator in a thread).
"""

from __future__ import annotations

import math
import multiprocessing
import os
import random
import resource
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg

from workloads.errors import DynolineError
from workloads.simulator.pacing import Schedule
from workloads.store.connection import connect
from workloads.store.rows import one

from .harness import Conn, Result, percentile

LINE = "bench-stream"
PROBE_AHEAD = 0.2  # the reader picks a sample due this long from now
PROBE_POLL = 0.002
PROBE_GIVE_UP = 5.0
# Where a reader looks for its sample: telemetry itself, or the latest-sample table (a dashboard's read,
# behind by up to the simulator's latestInterval, so polled less often and given longer).
PROBE_SQL = {
    "telemetry": "SELECT 1 FROM telemetry WHERE line = %s AND unit_id = %s AND ts = %s",
    "telemetry_latest": "SELECT 1 FROM telemetry_latest WHERE line = %s AND unit_id = %s AND ts >= %s",
}


@dataclass(frozen=True)
class Watch:
    """What a reader polls for its sample (a PROBE_SQL table), how often, and when it gives up on it."""

    table: str = "telemetry"
    poll: float = PROBE_POLL
    give_up: float = PROBE_GIVE_UP


@dataclass
class Probes:
    """What the reader saw: lag (s) of each sample it watched for, how many never showed up, any error."""

    lags: list[float] = field(default_factory=list)
    timeouts: int = 0
    error: str | None = None
    poll: float = PROBE_POLL

    def summary(self) -> Result:
        ms = [x * 1000 for x in self.lags]
        return {
            "probes": len(ms),
            "timeouts": self.timeouts,
            "p50_ms": round(percentile(ms, 0.5), 1) if ms else None,
            "p99_ms": round(percentile(ms, 0.99), 1) if ms else None,
            "max_ms": round(max(ms), 1) if ms else None,
            "poll_interval_ms": self.poll * 1000,
            "reader": "a separate process with its own connection",
            "error": self.error,
        }


def read_lags(url: str, sched: Schedule, duration: float, out: Any, watch: Watch = Watch()) -> None:
    """The reader process: watch for samples due shortly until the run's last second; send Probes back.

    A process of its own, like a dashboard, so its polling neither shares the simulator's interpreter
    lock nor its connection.
    """
    probes = Probes(poll=watch.poll)
    try:
        with connect(url, autocommit=True) as conn:
            start = sched.ts(0).timestamp()
            rng = random.Random(7)
            while True:
                due = time.time() - start + PROBE_AHEAD + rng.uniform(0, 0.1)
                k = math.floor(due * sched.width * sched.rate_hz)
                if sched.offset(k) >= duration - 1:
                    break  # samples this late may never be generated
                unit, ts = sched.key(k)
                while (left := ts.timestamp() - time.time()) > 0:
                    time.sleep(left)
                lag = _poll(conn, unit, ts, watch)
                if lag is None:
                    probes.timeouts += 1
                else:
                    probes.lags.append(lag)
    except (psycopg.Error, DynolineError) as exc:
        probes.error = str(exc).splitlines()[0]
    out.send(probes)
    out.close()


def _poll(conn: Conn, unit: int, ts: datetime, watch: Watch) -> float | None:
    born, query = ts.timestamp(), PROBE_SQL[watch.table]
    while time.time() - born < watch.give_up:
        if conn.execute(query, (LINE, unit, ts)).fetchone():
            return time.time() - born
        time.sleep(watch.poll)
    return None


class Reader:
    """Starts `read_lags` in a spawned process once the simulator's schedule is fixed; collects it."""

    def __init__(self, url: str, duration: float, watch: Watch = Watch()) -> None:
        self.url = url
        self.duration = duration
        self.watch = watch
        self._process: Any = None
        self._pipe: Any = None
        self.probes = Probes()

    def start(self, sched: Schedule) -> None:
        ctx = multiprocessing.get_context("spawn")
        self._pipe, child = ctx.Pipe(duplex=False)
        self._process = ctx.Process(
            target=read_lags,
            args=(self.url, sched, self.duration, child, self.watch),
            name=f"bench-reader-{self.watch.table}",
            daemon=True,
        )
        self._process.start()
        child.close()

    def join(self) -> Probes:
        if self._process is None:
            self.probes.error = "the reader never started (no sample was generated)"
            return self.probes
        if self._pipe.poll(self.watch.give_up + 10):
            self.probes = self._pipe.recv()
        else:
            self.probes.error = "the reader process did not report"
        self._process.join(5)
        if self._process.is_alive():
            self._process.terminate()
        return self.probes


class ServerCpu:
    """CPU seconds of the server's processes, from /proc, when the server runs on this machine, in
    total and by `backend_type` (client backends, autovacuum, WAL writer, checkpointer, I/O workers):
    which of the server's processes the CPU per row goes to. A process counts up to its last sample:
    a short-lived one (an autovacuum worker) loses what it used after that, under a second's worth."""

    def __init__(self, conn: Conn) -> None:
        self.conn = conn
        self.tick = os.sysconf("SC_CLK_TCK")
        pid = one(conn, int, "SELECT pg_backend_pid()")
        self.local = pid is not None and _comm(pid) == "postgres"
        self.first: dict[int, float] = {}
        self.last: dict[int, float] = {}
        self.kind: dict[int, str] = {}
        self.sample(initial=True)

    def sample(self, *, initial: bool = False) -> None:
        if not self.local:
            return
        for pid, kind in self.conn.execute(
            "SELECT pid, coalesce(backend_type, '?') FROM pg_stat_activity WHERE pid IS NOT NULL"
        ).fetchall():
            assert isinstance(pid, int)
            used = _cpu_seconds(pid, self.tick)
            if used is None:
                continue
            self.first.setdefault(pid, used if initial else 0.0)
            self.last[pid] = used
            self.kind[pid] = str(kind)

    def seconds(self) -> float | None:
        by_kind = self.seconds_by_kind()
        return None if by_kind is None else sum(by_kind.values())

    def seconds_by_kind(self) -> dict[str, float] | None:
        if not self.local:
            return None
        out: dict[str, float] = {}
        for p, used in self.last.items():
            out[self.kind[p]] = out.get(self.kind[p], 0.0) + used - self.first.get(p, 0.0)
        return out


def _comm(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return None


def _cpu_seconds(pid: int, tick: int) -> float | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / tick  # utime, stime (fields 14 and 15 of stat)


def own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def peak_rss_mib() -> float:
    """Peak resident memory of this process (the simulator runs in it; the reader does not)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def rss_mib() -> float | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        pass
    return None
