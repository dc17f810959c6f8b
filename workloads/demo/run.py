"""The demo's orchestration: validate everything, start the database, the simulator and the sentinel,
show the view once a second, and stop them all (in that order, reversed) on Ctrl-C or `--duration`."""

from __future__ import annotations

import argparse
import contextlib
import logging
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, TextIO

import psycopg

from workloads.errors import DynolineError
from workloads.sentinel.rules import load_rules
from workloads.simulator.config import source_spec
from workloads.store import dsn
from workloads.store.connection import connect
from workloads.store.migrate import migrate
from workloads.store.rows import one

from . import server as demo_server
from . import snapshot as snap
from .plan import Plan, connection_help, make_plan
from .sentinel import SentinelLoop
from .source import demo_source
from .view import Seen, View, events, rate_between, render, stream_line

if TYPE_CHECKING:
    from workloads.simulator.runner import RunStats

log = logging.getLogger(__name__)


def run(args: argparse.Namespace) -> int:
    began = time.monotonic()
    plan = _plan(args)  # a bad flag or rule file stops here, before a server starts
    server: demo_server.DemoServer | None = None
    out = sys.stdout
    try:
        if args.database_url:
            url = dsn.resolve(args.database_url)
            where = f"{dsn.describe(url)} (--database-url)"
        else:
            server = demo_server.start(args.data_dir, args.port)
            url = server.url
            where = f"embedded, data in {server.server.datadir} (a fresh database each run)"
        applied = migrate(url)
        _header(out, plan, url, where, server.note if server else None, len(applied))
        return _stream(out, plan, url, began, verbose=bool(getattr(args, "verbose", False)))
    finally:
        if server is not None:
            server.server.stop()


def _plan(args: argparse.Namespace) -> Plan:
    try:
        rules = load_rules(args.rules)
    except DynolineError as exc:
        raise DynolineError(f"--rules: {exc}") from None
    return make_plan(
        line=args.line,
        units=args.units,
        rate_hz=args.rate,
        source=source_spec(args.source, args.seed),
        duration=args.duration,
        metrics_port=args.metrics_port,
        rules=rules,
        rules_where=str(args.rules),
        interval=args.interval,
        faults=not args.no_faults,
        fault_at_s=args.fault_at,
        fault_unit=args.fault_unit,
        spool=Path(".dynoline") / "demo-spool" / f"{args.line}.spool",
        full_lives=args.full_lives,
    )


def _header(out: TextIO, plan: Plan, url: str, where: str, note: str | None, migrations: int) -> None:
    c = plan.config
    lines = [
        f"dynoline demo: line {c.line}, {c.units} units at {c.rate_hz:g} Hz replaying {plan.source_label}",
        f"postgres: {where}",
        f"sentinel: {len(plan.rules)} rules of the pack every {plan.interval_s:g} s"
        + (f"; schema: {migrations} migrations applied" if migrations else ""),
    ]
    if plan.fault is not None:
        f = plan.fault
        lines.append(
            f"fault: unit {f.unit} starts a thermal runaway {f.start_after} in"
            f" (T50/T30 +{f.ramp_per_minute:g} °R/min); the sentinel should alert on it and quarantine it,"
            " and its rows stop"
        )
    else:
        lines.append("fault: none (--no-faults)")
    if note:
        lines.append(note)
    lines += connection_help(url, c.line, plan.fault.unit if plan.fault else None)
    lines.append("Ctrl-C stops everything")
    out.write("\n".join(lines) + "\n\n")
    out.flush()


@dataclass
class Outcome:
    """When (seconds since streaming started) each unit was first seen alerted and quarantined."""

    alerted: dict[int, tuple[float, str]] = field(default_factory=dict)
    quarantined: dict[int, tuple[float, str]] = field(default_factory=dict)

    before: frozenset[int] | None = None  # units already quarantined at the first read

    def observe(self, s: snap.Snapshot, elapsed: float) -> None:
        for a in s.fresh:
            self.alerted.setdefault(a.unit_id, (elapsed, a.rule))
        if self.before is None:
            self.before = frozenset(q.unit_id for q in s.quarantined)
        for q in s.quarantined:
            if q.unit_id not in self.before:
                self.quarantined.setdefault(q.unit_id, (elapsed, q.by or "?"))


class Reader:
    """The view's own connection; None (and a reconnect next time) while the database is away."""

    def __init__(self, url: str, line: str) -> None:
        self.url, self.line = url, line
        self._conn: psycopg.Connection[tuple[object, ...]] | None = None
        self._after: int | None = None  # alerts up to this id were announced (or predate the run)

    def start(self) -> None:
        """Before the sentinel's first pass: alerts up to now are not this run's."""
        self._conn = connect(self.url, timeout=1)
        self._after = snap.newest_id(self._conn)

    def read(self) -> snap.Snapshot | None:
        try:
            if self._conn is None:
                self._conn = connect(self.url, timeout=1)
            assert self._after is not None, "start() first"
            found = snap.read(self._conn, self.line, self._after)
            if found.fresh:
                self._after = found.fresh[-1].id
            return found
        except (DynolineError, psycopg.Error):
            self.close()
            return None

    def close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(psycopg.Error):
                self._conn.close()
            self._conn = None


def _stream(out: TextIO, plan: Plan, url: str, began: float, *, verbose: bool) -> int:
    from workloads.simulator.runner import Simulator

    config = plan.config
    with connect(url) as conn:
        baseline = one(conn, int, "SELECT count(*) FROM telemetry WHERE line = %s", (config.line,)) or 0

    source = demo_source(config.source, config.faults, config.rate_hz, full_lives=plan.full_lives)
    sim = Simulator(config, url, source=source)
    sentinel = SentinelLoop(url, plan.rules, plan.interval_s)
    reader = Reader(url, config.line)
    stop = threading.Event()
    outcome_box: list[RunStats | BaseException] = []

    def simulate() -> None:
        try:
            outcome_box.append(sim.run(stop))
        except BaseException as exc:
            outcome_box.append(exc)

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    worker = threading.Thread(target=simulate, name="simulator")
    outcome = Outcome()
    started_at: float | None = None
    try:
        with _quiet_logs(verbose), _display(out) as show:
            reader.start()
            worker.start()
            sentinel.start()
            last = (0.0, 0)
            seen = Seen()
            while worker.is_alive():
                worker.join(timeout=1.0)
                if not (sim.started and worker.is_alive()):
                    continue
                if started_at is None:
                    started_at = time.monotonic()
                p = sim.progress()
                rate = rate_between(last, (p.elapsed_s, p.written))
                last = (p.elapsed_s, p.written)
                snapshot = reader.read()
                if snapshot is not None:
                    outcome.observe(snapshot, p.elapsed_s)
                view = View(
                    config.line, config.units, config.rate_hz, p, rate,
                    baseline + p.written, len(plan.rules), plan.interval_s, sentinel.status(), snapshot,
                    plan.fault,
                )  # fmt: skip
                show(view, events(snapshot, seen, p.elapsed_s) if snapshot is not None else [])
    finally:
        stop.set()
        worker.join()
        sentinel.stop()
        reader.close()
        for s, handler in previous.items():
            signal.signal(s, handler)
    (result,) = outcome_box
    if isinstance(result, BaseException):
        raise result
    _summary(out, plan, result, baseline, outcome, (started_at or began) - began)
    return 0


def _summary(out: TextIO, plan: Plan, result: RunStats, baseline: int, o: Outcome, startup_s: float) -> None:
    lag = result.lag

    def ms(key: str) -> str:
        value = lag.get(key)
        return "-" if value is None else f"{float(value) * 1000:.1f} ms"

    lines = [
        f"stopped: {result.written:,} samples written this run, {baseline + result.written:,} stored for line"
        f" {plan.config.line!r}; lag p50 {ms('p50_s')} p99 {ms('p99_s')} max {ms('max_s')};"
        f" {result.skipped_quarantined:,} samples of quarantined units not sent;"
        f" spool holds {result.spool_rows:,}"
    ]
    fault = plan.fault
    if fault is not None:
        alerted, stopped = o.alerted.get(fault.unit), o.quarantined.get(fault.unit)

        def at(event: tuple[float, str] | None, what: str) -> str:
            if event is None:
                return f"not {what}"
            since_command = event[0] + startup_s
            return f"{what} at {event[0]:.0f} s ({event[1]}; {since_command:.0f} s after the command began)"

        lines.append(
            f"fault on unit {fault.unit} from {fault.start_after}:"
            f" {at(alerted, 'alerted')}, {at(stopped, 'quarantined')}"
        )
    others_alerted = sorted(u for u in o.alerted if fault is None or u != fault.unit)
    others_stopped = sorted(u for u in o.quarantined if fault is None or u != fault.unit)
    lines.append(
        f"other units alerted: {', '.join(map(str, others_alerted)) or 'none'};"
        f" quarantined: {', '.join(map(str, others_stopped)) or 'none'}"
    )
    if result.spool_rows:
        lines.append(f"{result.spool_rows:,} rows are still spooled; the next run replays them first")
    out.write("\n".join(lines) + "\n")
    out.flush()


@contextlib.contextmanager
def _quiet_logs(verbose: bool) -> Iterator[None]:
    """The simulator's INFO lines say what the view already shows: keep them for -v."""
    logger = logging.getLogger("workloads")
    before = logger.level
    if not verbose:
        logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(before)


@contextlib.contextmanager
def _display(out: TextIO) -> Iterator[Callable[[View, list[str]], None]]:
    """A rich Live display on a terminal, else one plain line a second (and one per event)."""
    if not out.isatty():

        def plain(view: View, happened: list[str]) -> None:
            out.write("".join(line + "\n" for line in happened) + stream_line(view) + "\n")
            out.flush()

        yield plain
        return
    from rich.console import Console
    from rich.live import Live
    from rich.text import Text

    console = Console(file=out)
    with Live(Text("starting…"), console=console, refresh_per_second=4) as live, _logs_to(sys.stderr):

        def live_view(view: View, happened: list[str]) -> None:
            for line in happened:
                live.console.print(line, highlight=False)
            live.update(render(view))

        yield live_view


@contextlib.contextmanager
def _logs_to(stream: TextIO) -> Iterator[None]:
    """Point the root log handlers at `stream` (rich's redirected stderr): a warning lands above the view."""
    handlers = [
        h
        for h in logging.getLogger().handlers
        if isinstance(h, logging.StreamHandler) and h.stream is sys.__stderr__
    ]
    for h in handlers:
        h.setStream(stream)
    try:
        yield
    finally:
        for h in handlers:
            h.setStream(sys.__stderr__)
