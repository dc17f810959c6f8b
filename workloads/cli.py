"""The `dynoline` command: a thin dispatcher; each area registers its own subcommands."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Callable, Sequence

from pydantic import ValidationError

from workloads import __version__
from workloads.errors import DynolineError, format_validation_error

# Re-exported until workloads/simulator/config.py imports it from workloads.errors, where it lives now.
__all__ = ["build_parser", "format_validation_error", "main"]

# Modules with `register(subparsers)`; imported lazily per run so `dynoline --help` stays quick.
COMMAND_MODULES: tuple[str, ...] = (
    "workloads.store.cli",
    "workloads.store.unit_cli",
    "workloads.simulator.cli",
    "workloads.demo",
    "controllers.cli",
    "workloads.bench.cli",
    "workloads.sentinel.cli",
)

Handler = Callable[[argparse.Namespace], int]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dynoline", description="Telemetry and anomaly detection for production test lines."
    )
    parser.add_argument("--version", action="version", version=f"dynoline {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    handler: Handler = args.handler
    try:
        return handler(args)
    except DynolineError as exc:
        print(f"dynoline: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except ValidationError as exc:
        print(f"dynoline: error: {format_validation_error(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
