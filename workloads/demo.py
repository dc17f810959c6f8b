"""`dynoline demo` (`make demo`): a line streaming into a real PostgreSQL on this machine, with live progress.

Starts an embedded PostgreSQL under a data directory (kept between runs), migrates it, streams a default
line (100 units at 1 Hz replaying C-MAPSS FD001) in-process and prints progress once a second until
Ctrl-C or `--duration`. `--database-url` uses any PostgreSQL instead of the embedded one.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, TextIO

from workloads.simulator.config import SimulatorConfig, source_spec
from workloads.store import dsn
from workloads.store.cli import add_database_argument
from workloads.store.connection import connect
from workloads.store.embedded import EmbeddedPostgres
from workloads.store.migrate import migrate
from workloads.store.rows import one

if TYPE_CHECKING:
    from workloads.simulator.runner import Progress, RunStats

DEFAULT_DATA_DIR = Path(".dynoline") / "demo-pg"


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "demo",
        help="stream a line into an embedded PostgreSQL and show live progress",
        description="Start an embedded PostgreSQL, migrate it, stream a line and show progress until Ctrl-C.",
    )
    p.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR, help=f"default {DEFAULT_DATA_DIR}")
    add_database_argument(p)
    p.add_argument("--line", default="demo", help="line name (default demo)")
    p.add_argument("--units", type=int, default=100, help="testers (default 100)")
    p.add_argument("--rate", type=float, default=1.0, help="samples per unit per second (default 1)")
    p.add_argument(
        "--source", choices=("cmapss", "synthetic"), default="cmapss", help="default cmapss (FD001)"
    )
    p.add_argument("--seed", type=int, default=None, help="seed of the synthetic source")
    p.add_argument("--duration", type=float, default=None, help="stop after S seconds (default: Ctrl-C)")
    p.add_argument("--metrics-port", type=int, default=0, help="serve /metrics here too (default 0: off)")
    p.set_defaults(handler=_demo)


def format_progress(p: Progress, rate: float, stored: int) -> str:
    def ms(v: float | None) -> str:
        return "-" if v is None else f"{v * 1000:.0f} ms"

    return (
        f"{p.elapsed_s:6.0f}s  {rate:8.1f} samples/s  lag p50 {ms(p.lag_p50_s)} p99 {ms(p.lag_p99_s)}"
        f"  stored {stored:,} rows  spool {p.spool_rows:,}  quarantined {p.quarantined}"
        f"  db {'up' if p.database_up else 'DOWN'}"
    )


class ProgressPrinter:
    """One refreshing line on a terminal, one line per report otherwise (logs, CI)."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.tty = out.isatty()
        self._last: tuple[float, int] = (0.0, 0)

    def report(self, p: Progress, baseline: int) -> None:
        """`p.written` over the interval since the previous report (since the start, the first time)."""
        then, written = self._last
        rate = (p.written - written) / (p.elapsed_s - then) if p.elapsed_s > then else 0.0
        self._last = (p.elapsed_s, p.written)
        line = format_progress(p, rate, baseline + p.written)
        if self.tty:
            self.out.write("\r" + line + "\x1b[K")
        else:
            self.out.write(line + "\n")
        self.out.flush()

    def done(self) -> None:
        if self.tty:
            self.out.write("\n")
            self.out.flush()


def _demo(args: argparse.Namespace) -> int:
    config = SimulatorConfig(
        line=args.line,
        units=args.units,
        rate_hz=args.rate,
        source=source_spec(args.source, args.seed),
        duration=args.duration,
        metrics_port=args.metrics_port,
        spool=Path(".dynoline") / "demo-spool" / f"{args.line}.spool",
    )
    server: EmbeddedPostgres | None = None
    if args.database_url:
        url = dsn.resolve(args.database_url)
    else:
        server = EmbeddedPostgres(args.data_dir)
        if server.running():  # left behind by a demo that was killed: restart it on a port we know
            server.stop()
        server.init()
        server.start()
        url = server.url()
        print(f"embedded PostgreSQL on 127.0.0.1:{server.port}, data in {server.datadir}", file=sys.stderr)
    try:
        return _stream(config, url)
    finally:
        if server is not None:
            server.stop()


def _stream(config: SimulatorConfig, url: str) -> int:
    from workloads.simulator.runner import Simulator

    applied = migrate(url)
    if applied:
        print(f"migrated: {', '.join(f'{m.version:04d}_{m.name}' for m in applied)}", file=sys.stderr)
    with connect(url) as conn:
        baseline = one(conn, int, "SELECT count(*) FROM telemetry WHERE line = %s", (config.line,)) or 0
    print(
        f"streaming line {config.line!r}: {config.units} units at {config.rate_hz:g} Hz"
        f" from {config.source.type} ({dsn.describe(url)}); Ctrl-C stops",
        file=sys.stderr,
    )

    sim = Simulator(config, url)
    stop = threading.Event()
    outcome: list[RunStats | BaseException] = []

    def run() -> None:
        try:
            outcome.append(sim.run(stop))
        except BaseException as exc:
            outcome.append(exc)

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    printer = ProgressPrinter(sys.stdout)
    worker = threading.Thread(target=run, name="simulator")
    try:
        worker.start()
        while worker.is_alive():
            worker.join(timeout=1.0)
            if sim.started and worker.is_alive():
                printer.report(sim.progress(), baseline)
    finally:
        stop.set()
        worker.join()
        printer.done()
        for s, handler in previous.items():
            signal.signal(s, handler)
    (result,) = outcome
    if isinstance(result, BaseException):
        raise result
    lag = result.lag

    def ms(key: str) -> str:
        value = lag.get(key)
        return "-" if value is None else f"{float(value) * 1000:.1f} ms"

    print(
        f"stopped: {result.written:,} samples written this run, {baseline + result.written:,} stored for line"
        f" {config.line!r}; lag p50 {ms('p50_s')} p99 {ms('p99_s')} max {ms('max_s')};"
        f" queue peak {result.queue_high_water:,} of {result.queue_bound:,} rows;"
        f" spool holds {result.spool_rows:,}",
        file=sys.stderr,
    )
    if result.spool_rows:
        print(
            f"{result.spool_rows:,} rows are still spooled; the next run replays them first", file=sys.stderr
        )
    return 0
