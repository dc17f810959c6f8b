"""`dynoline simulate`: stream one shard of a line until SIGTERM/SIGINT, then flush and exit.

Exit 0 when everything generated is stored or spooled; 1 when samples were lost (stopped while the
database was away and the spool could not be written).
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any

from workloads.errors import DynolineError
from workloads.store import dsn
from workloads.store.cli import add_database_argument

from .config import (
    CONFIG_ENV,
    DEFAULT_BATCH_ROWS,
    DEFAULT_MAX_LATENCY_MS,
    DEFAULT_METRICS_PORT,
    METRICS_PORT_ENV,
    SHARD_ENV,
    SPOOL_ENV,
    SimulatorConfig,
    env_int,
    from_line_file,
    load_line_file,
    parse_shard,
    parse_start,
    source_spec,
)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "simulate",
        help="stream a line's testers (one shard) into PostgreSQL",
        description="Stream N units at R Hz into PostgreSQL with binary COPY; spool and replay on outages.",
    )
    p.add_argument(
        "--config", metavar="FILE", help=f"line file: a DynoLine or {{line, spec}} (${CONFIG_ENV})"
    )
    p.add_argument("--line", help="line name (a DNS label)")
    p.add_argument("--units", metavar="N", help="testers on the line (default 100)")
    p.add_argument("--rate", metavar="HZ", help="samples per unit per second (default 1)")
    p.add_argument(
        "--shard", metavar="K", help=f"this process's shard, or a pod name ending in -K (${SHARD_ENV})"
    )
    p.add_argument("--shards", metavar="N", help="shards of the line; unit u is in shard u mod N (default 1)")
    p.add_argument(
        "--source", choices=("cmapss", "synthetic"), help="C-MAPSS FD001 replay or synthetic model"
    )
    p.add_argument("--seed", metavar="S", help="seed of the synthetic source")
    p.add_argument("--no-pace", action="store_true", help="backfill as fast as possible (needs --ticks)")
    p.add_argument("--ticks", metavar="T", help="stop after T ticks")
    p.add_argument("--start", metavar="TIME", help="timestamp of tick 0 (ISO 8601 with zone)")
    p.add_argument("--duration", metavar="S", help="stop after S seconds")
    add_database_argument(p)
    p.add_argument("--spool", metavar="PATH", help=f"spool file or directory (${SPOOL_ENV})")
    p.add_argument(
        "--metrics-port",
        metavar="P",
        help=f"/metrics, /healthz, /readyz port; 0 disables (default {DEFAULT_METRICS_PORT})",
    )
    p.add_argument("--batch-rows", metavar="R", help=f"rows per batch at most (default {DEFAULT_BATCH_ROWS})")
    p.add_argument(
        "--max-latency-ms",
        metavar="L",
        help=f"flush a batch this long after its oldest row (default {DEFAULT_MAX_LATENCY_MS:g})",
    )
    p.add_argument("--queue-rows", metavar="Q", help="queue bound between generator and writer")
    p.add_argument(
        "--latest-interval-ms",
        metavar="L",
        help="carry committed samples into telemetry_latest this often; 0: in each batch (default 1000)",
    )
    p.add_argument("--shutdown-timeout", metavar="S", help="seconds to replay the spool on exit (default 20)")
    p.set_defaults(handler=_simulate)


def _int(text: str, flag: str) -> int:
    try:
        return int(text.strip())
    except ValueError:
        raise DynolineError(f"{flag} {text!r}: expected a whole number") from None


def _float(text: str, flag: str) -> float:
    try:
        value = float(text.strip())
    except ValueError:
        raise DynolineError(f"{flag} {text!r}: expected a number") from None
    if not math.isfinite(value):
        raise DynolineError(f"{flag} must be a finite number, got {text!r}")
    return value


def config_from_args(args: argparse.Namespace) -> SimulatorConfig:
    """Flags over environment over the line file over defaults; validated as a whole."""
    fields: dict[str, Any] = {}
    path = args.config or os.environ.get(CONFIG_ENV)
    shard_text = args.shard if args.shard is not None else os.environ.get(SHARD_ENV)
    shard = (
        parse_shard(shard_text, "--shard" if args.shard is not None else f"${SHARD_ENV}") if shard_text else 0
    )
    if path:
        base = from_line_file(load_line_file(Path(path)), shard=0)
        fields = {k: getattr(base, k) for k in base.__dataclass_fields__}
    elif args.line is None:
        raise DynolineError("--line is required (or --config FILE)")
    fields["shard"] = shard
    if args.line is not None:
        fields["line"] = args.line
    fields.setdefault("units", 100)
    fields.setdefault("rate_hz", 1.0)
    if args.units is not None:
        fields["units"] = _int(args.units, "--units")
    if args.rate is not None:
        try:
            fields["rate_hz"] = float(args.rate.strip())
        except ValueError:
            raise DynolineError(f"--rate {args.rate!r}: expected a number of Hz") from None
    if args.shards is not None:
        fields["shards"] = _int(args.shards, "--shards")
    if args.source is not None or args.seed is not None:
        kind = args.source or fields.get("source", source_spec("cmapss", None)).type
        fields["source"] = source_spec(kind, _int(args.seed, "--seed") if args.seed is not None else None)
    fields["pace"] = not args.no_pace
    if args.ticks is not None:
        fields["ticks"] = _int(args.ticks, "--ticks")
    if args.start is not None:
        fields["start"] = parse_start(args.start)
    if args.duration is not None:
        fields["duration"] = _float(args.duration, "--duration")
    spool = args.spool or os.environ.get(SPOOL_ENV)
    if spool:
        fields["spool"] = spool  # kept as text: a trailing "/" means a directory, existing or not
    port = (
        _int(args.metrics_port, "--metrics-port")
        if args.metrics_port is not None
        else env_int(METRICS_PORT_ENV)
    )
    if port is not None:
        fields["metrics_port"] = port
    if args.batch_rows is not None:
        fields["batch_rows"] = _int(args.batch_rows, "--batch-rows")
    if args.max_latency_ms is not None:
        fields["max_latency"] = _float(args.max_latency_ms, "--max-latency-ms") / 1000
    if args.latest_interval_ms is not None:
        fields["latest_interval"] = _float(args.latest_interval_ms, "--latest-interval-ms") / 1000
    if args.queue_rows is not None:
        fields["queue_rows"] = _int(args.queue_rows, "--queue-rows")
    if args.shutdown_timeout is not None:
        fields["shutdown_timeout"] = _float(args.shutdown_timeout, "--shutdown-timeout")
    return SimulatorConfig(**fields)


@contextmanager
def long_lived_heap() -> Iterator[None]:
    """Keep what is alive now (the parsed dataset, modules) out of the cyclic collector's full passes.

    Those pause both loops for tens of milliseconds, and everything built before the run lives for the
    whole run. `gc.freeze` is process-wide, so only this command does it (never the library, which the
    demo, the benchmarks and the tests run in-process), and undoes it on the way out.
    """
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def _simulate(args: argparse.Namespace) -> int:
    from workloads.sources.factory import build_source

    from .runner import Simulator

    config = config_from_args(args)
    url = dsn.resolve(args.database_url)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    source = build_source(config.source, config.faults, config.rate_hz)
    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        with long_lived_heap():
            stats = Simulator(config, url, source=source).run(stop)
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    print(json.dumps(stats.as_dict()), flush=True)
    if stats.lost:
        print(f"dynoline: error: {stats.lost} samples lost (see the log above)", file=sys.stderr)
        return 1
    return 0
