"""`dynoline bench stream`: sustained, wall-clock-paced streaming through the real simulator.

While `Simulator.run` streams (`--units` x `--rate` Hz for `--seconds`), this samples its backlog
every second and a reader in a separate process checks when chosen samples become visible: it picks
a sample due shortly, waits for its generation time, then polls its primary key every 2 ms. So the
lag is reported twice: as the writer sees it (commit time - generation ts, every row) and as a reader
sees it (first visible - generation ts). A second reader process does the same on `telemetry_latest`,
which is behind telemetry by up to the simulator's `latestInterval` (reported, not a target).

Throughput is judged against the **offered** rate, not against what was generated: backpressure
throttles the generator when the writer cannot keep up, so generated - written stays flat while the
line falls behind its schedule. The backlog is therefore also sampled as offered-so-far - written,
the time the generator spent blocked on the full queue is reported, and `sustained` needs
written ≥ 99% of offered.
"""

from __future__ import annotations

import argparse
import logging
import math
import threading
import time
from collections.abc import Sequence
from typing import Any

from workloads.errors import DynolineError
from workloads.simulator.config import DEFAULT_LATEST_INTERVAL_S, check_latest_interval
from workloads.store.connection import connect
from workloads.store.rows import one

from .harness import (
    Result,
    Setting,
    add_common_arguments,
    bench_database,
    emit,
    machine,
    server_settings,
)
from .server_wal import wal_counters, wal_summary
from .stream_probes import LINE, PROBE_GIVE_UP, Reader, ServerCpu, Watch, own_cpu, peak_rss_mib, rss_mib
from .stream_report import Backlog, combine, render, summarise

log = logging.getLogger(__name__)

SCHEMA = "dynoline_bench_stream"
SAMPLE_EVERY = 1.0  # seconds between backlog samples


def register(bench_sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = bench_sub.add_parser(
        "stream",
        help="sustained paced streaming: backlog trend, generation-to-queryable lag, CPU",
        description="Stream --units x --rate Hz for --seconds through the simulator and measure backlog,"
        " lag (writer-side and reader-side) and CPU.",
    )
    add_common_arguments(p)
    p.add_argument("--units", type=int, default=10_000, help="units streaming (default 10000)")
    p.add_argument("--rate", type=float, default=1.0, help="samples per unit per second (default 1)")
    p.add_argument("--seconds", type=float, default=60.0, help="how long to stream (default 60)")
    p.add_argument(
        "--shards",
        type=int,
        default=1,
        help="simulator shards splitting the units, each with its own writer connection, in this process"
        " (default 1)",
    )
    p.add_argument(
        "--latest-interval-ms",
        type=float,
        default=None,
        help="the simulator's latestInterval in ms; 0: telemetry_latest in every batch (default: the"
        " product's, 1000)",
    )
    p.set_defaults(handler=run_command)


def run_command(args: argparse.Namespace) -> int:
    if args.units < 1:
        raise DynolineError(f"--units must be at least 1, got {args.units}")
    if not (math.isfinite(args.rate) and args.rate > 0):
        raise DynolineError(f"--rate must be a positive number of Hz, got {args.rate}")
    if not (math.isfinite(args.seconds) and args.seconds > 0):
        raise DynolineError(f"--seconds must be a positive number, got {args.seconds}")
    if not 1 <= args.shards <= 16:
        raise DynolineError(f"--shards must be between 1 and 16, got {args.shards}")
    if args.shards > args.units:
        raise DynolineError(f"--shards {args.shards} must not exceed --units {args.units}")
    interval = args.latest_interval_ms
    latest_interval = interval / 1000 if interval is not None else DEFAULT_LATEST_INTERVAL_S
    check_latest_interval(latest_interval)  # before a database is started for the run
    result = run(
        args.database_url, args.units, args.rate, args.seconds, args.shards, latest_interval,
        settings=server_settings(args),
    )  # fmt: skip
    emit(result, args.json, render)
    return 0


def run(
    url: str | None,
    units: int,
    rate_hz: float,
    seconds: float,
    shards: int = 1,
    latest_interval: float = DEFAULT_LATEST_INTERVAL_S,
    *,
    settings: Sequence[Setting] = (),
) -> Result:
    from workloads.simulator.config import SimulatorConfig
    from workloads.simulator.runner import Simulator

    with bench_database(url, SCHEMA, settings=settings) as db, connect(db.url, autocommit=True) as conn:
        info = machine(conn)
        sims = [
            Simulator(
                SimulatorConfig(
                    line=LINE,
                    units=units,
                    rate_hz=rate_hz,
                    duration=seconds,
                    metrics_port=0,
                    spool=db.workdir / f"spool-{shard}",
                    shard=shard,
                    shards=shards,
                    latest_interval=latest_interval,
                ),
                db.url,
            )
            for shard in range(shards)
        ]
        outcome: dict[int, Any] = {}
        errors: list[BaseException] = []

        def stream(i: int) -> None:
            try:
                outcome[i] = sims[i].run()
            except BaseException as exc:
                errors.append(exc)

        cpu = ServerCpu(conn)
        wal0 = wal_counters(conn)
        own0 = own_cpu()
        began = time.monotonic()
        streamers = [
            threading.Thread(target=stream, args=(i,), name=f"bench-stream-{i}", daemon=True)
            for i in range(shards)
        ]
        reader = Reader(db.url, seconds)
        # a dashboard's read: when the sample shows in telemetry_latest (polled every 20 ms)
        latest_reader = Reader(
            db.url, seconds, Watch("telemetry_latest", poll=0.02, give_up=PROBE_GIVE_UP + latest_interval)
        )
        for t in streamers:
            t.start()

        def done() -> bool:
            return not any(t.is_alive() for t in streamers)

        while not done():
            if sims[0].progress().generated:  # the schedule is fixed once the first rows are out
                reader.start(sims[0].schedule)  # the readers watch shard 0's samples
                latest_reader.start(sims[0].schedule)
                break
            time.sleep(0.01)
        backlog = Backlog()
        offered_per_s = units * rate_hz
        rss_before = rss_mib()
        while not done():
            time.sleep(SAMPLE_EVERY)
            ps = [sim.progress() for sim in sims]
            elapsed = max(p.elapsed_s for p in ps)
            if elapsed > 0:
                written = sum(p.written for p in ps)
                offered_by_now = min(round(offered_per_s * elapsed), round(offered_per_s * seconds))
                backlog.samples.append(
                    (
                        elapsed,
                        sum(p.generated for p in ps) - written,
                        sum(p.queue_rows for p in ps),
                        sum(p.spool_rows for p in ps),
                        max(0, offered_by_now - written),
                    )
                )
            cpu.sample()
        for t in streamers:
            t.join()
        probes = reader.join()
        latest_probes = latest_reader.join()
        wall = time.monotonic() - began
        own = own_cpu() - own0
        memory = {
            "rss_before_mib": round(rss_before, 1) if rss_before is not None else None,
            "rss_after_mib": round(rss, 1) if (rss := rss_mib()) is not None else None,
            "peak_rss_mib": round(peak_rss_mib(), 1),
            "what": "the benchmark's process, which runs the simulator (the reader is a process of its own)",
        }
        if errors:
            raise errors[0]
        stats = combine([outcome[i].as_dict() for i in range(shards)])
        wal = wal_summary(wal0, wal_counters(conn), stats["written"])
        stored = one(conn, int, "SELECT count(*) FROM telemetry WHERE line = %s", (LINE,)) or 0
        database = db.describe()
    result = summarise(
        units=units,
        rate_hz=rate_hz,
        seconds=seconds,
        stats=stats,
        stored=stored,
        backlog=backlog,
        reader=probes.summary(),
        latest_reader=latest_probes.summary(),
        latest_interval_s=latest_interval,
        client_cpu_s=own,
        server_cpu_s=cpu.seconds(),
        server_cpu_by_kind_s=cpu.seconds_by_kind(),
        wall_s=wall,
        database=database,
        info=info,
        memory=memory,
    )
    result["shards"] = shards
    result["wal"] = wal
    result["lag_latest"].update(latest_upkeep(sims))
    return result


def latest_upkeep(sims: list[Any]) -> Result:
    """The latest keepers' upserts over the run, from their own histograms (all shards)."""
    count = total = 0.0
    for sim in sims:
        labels = {"line": sim.config.line, "shard": str(sim.config.shard)}
        get = sim.metrics.registry.get_sample_value
        count += get("dynoline_simulator_latest_flush_seconds_count", labels) or 0.0
        total += get("dynoline_simulator_latest_flush_seconds_sum", labels) or 0.0
    return {
        "upserts": int(count),
        "upsert_mean_ms": round(total / count * 1000, 1) if count else None,
    }
