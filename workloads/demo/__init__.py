"""`dynoline demo` (`make demo`): the whole product on one machine, in one terminal.

An embedded PostgreSQL (a fresh `demo` database on a port kept with its data directory), a line of
100 units streaming FD001 at 1 Hz, the default rule pack evaluated in-process every few seconds, and one
unit that develops a thermal runaway a minute in: the sentinel alerts on it and quarantines it, and its
rows stop. `plan` decides what runs (pure), `server` owns the database, `sentinel` the rule loop,
`snapshot` reads what the view shows, `view` renders it, `run` ties them together.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from workloads.store.cli import add_database_argument

from .plan import DEFAULT_DATA_DIR, DEFAULT_FAULT_AT_S, DEFAULT_INTERVAL, DEFAULT_PORT, DEFAULT_RULES


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "demo",
        help="a line streaming, the sentinel catching a failing unit and stopping it, live",
        description="Start an embedded PostgreSQL, stream a line into it, run the rule pack on it and"
        " inject a fault on one unit; show the stream, the alerts and the quarantined units until Ctrl-C.",
    )
    p.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR, help=f"default {DEFAULT_DATA_DIR}")
    p.add_argument(
        "--port", type=int, default=DEFAULT_PORT,
        help=f"embedded PostgreSQL port when none is kept with --data-dir yet (default {DEFAULT_PORT})",
    )  # fmt: skip
    add_database_argument(p)
    p.add_argument("--line", default="line-a", help="line name; the rule pack must name it (default line-a)")
    p.add_argument("--units", type=int, default=100, help="testers (default 100)")
    p.add_argument("--rate", type=float, default=1.0, help="samples per unit per second (default 1)")
    p.add_argument(
        "--source", choices=("cmapss", "synthetic"), default="cmapss", help="default cmapss (FD001)"
    )
    p.add_argument("--seed", type=int, default=None, help="seed of the synthetic source")
    p.add_argument(
        "--full-lives", action="store_true",
        help="replay whole FD001 run-to-failure lives (engines wear out within minutes and get stopped too)"
        "; default: each engine's healthy first cycles on a loop",
    )  # fmt: skip
    p.add_argument("--duration", type=float, default=None, help="stop after S seconds (default: Ctrl-C)")
    p.add_argument(
        "--rules", type=Path, default=DEFAULT_RULES, metavar="DIR",
        help=f"rule file or directory the sentinel runs (default {DEFAULT_RULES})",
    )  # fmt: skip
    p.add_argument(
        "--interval", default=DEFAULT_INTERVAL,
        help=f"time between sentinel passes, as `sentinel watch --interval` (default {DEFAULT_INTERVAL})",
    )  # fmt: skip
    p.add_argument("--no-faults", action="store_true", help="inject no fault: every unit stays healthy")
    p.add_argument(
        "--fault-at", type=float, default=DEFAULT_FAULT_AT_S, metavar="SECONDS",
        help=f"when the thermal runaway starts (default {DEFAULT_FAULT_AT_S:g} s after streaming starts)",
    )  # fmt: skip
    p.add_argument(
        "--fault-unit", type=int, default=None, help="unit that fails (default 17, or the last unit if fewer)"
    )
    p.add_argument("--metrics-port", type=int, default=0, help="serve /metrics here too (default 0: off)")
    p.set_defaults(handler=_demo)


def _demo(args: argparse.Namespace) -> int:
    from .run import run

    return run(args)
