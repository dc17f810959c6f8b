"""`dynoline bench WHAT`: each benchmark lives in its own module with `register(bench_subparsers)`.

A new benchmark is a module here appended to `SUBCOMMANDS`.
"""

from __future__ import annotations

import argparse
import importlib

SUBCOMMANDS: tuple[str, ...] = (
    "workloads.bench.ingest",
    "workloads.bench.stream",
    "workloads.bench.query",
    "workloads.bench.sentinel",
    "workloads.bench.operator",
)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    bench = subparsers.add_parser(
        "bench",
        help="benchmarks against in-run baselines (human table, or --json)",
        description="Benchmarks that measure a baseline in the same run and print figures with ratios.",
    )
    bench_sub = bench.add_subparsers(dest="bench_command", metavar="WHAT", required=True)
    for name in SUBCOMMANDS:
        importlib.import_module(name).register(bench_sub)
