"""python -m tests.e2e.monitoring {start,stop,status} [options]: see tests/e2e/monitoring/harness.py.

`discover` is the pod discovery loop that `start` runs as a child process (discovery.py).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

from tests.e2e.monitoring import harness


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tests.e2e.monitoring", description=__doc__)
    p.add_argument("action", choices=("start", "stop", "status", "discover"))
    p.add_argument(
        "--kubeconfig",
        type=Path,
        default=Path(os.environ.get("KUBECONFIG", str(Path.home() / ".kube" / "config"))),
        help="admin kubeconfig: Prometheus discovers pods through its current context (default: $KUBECONFIG)",
    )
    p.add_argument("--helm", default="helm", help="helm binary that renders the chart's PrometheusRule")
    p.add_argument("--workdir", type=Path, default=harness.DEFAULT_WORKDIR)
    p.add_argument("--release", default="dynoline", help="the chart's release name (operator job name)")
    p.add_argument("--namespace", default="dynoline-system", help="the operator's namespace")
    p.add_argument("--pushgateway", default=harness.Settings.pushgateway, metavar="HOST:PORT")
    p.add_argument("--interval", type=int, default=harness.Settings.interval_seconds, metavar="SECONDS")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="e2e-monitoring: %(message)s", stream=sys.stderr)
    settings = harness.Settings(
        kubeconfig=args.kubeconfig.resolve(),
        helm=args.helm,
        workdir=args.workdir.resolve(),
        release=args.release,
        namespace=args.namespace,
        pushgateway=args.pushgateway,
        interval_seconds=args.interval,
    )
    try:
        if args.action == "start":
            harness.start(settings)
        elif args.action == "stop":
            harness.stop(settings)
        elif args.action == "discover":
            harness.discover(settings)
        else:
            print(json.dumps(harness.running(settings)))
    except harness.HarnessError as exc:
        print(f"e2e-monitoring: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
