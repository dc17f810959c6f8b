"""`dynoline sentinel run|watch|fit`, `dynoline alerts` and `dynoline evaluate`."""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import Any

from workloads.api.common import seconds
from workloads.api.rule import SEVERITIES
from workloads.errors import DynolineError
from workloads.store import dsn
from workloads.store.cli import add_database_argument

log = logging.getLogger("dynoline.sentinel")
EXIT_ALERTS = 3


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    sentinel = subparsers.add_parser("sentinel", help="evaluate anomaly rules and manage alerts")
    sub = sentinel.add_subparsers(dest="sentinel_command", metavar="ACTION", required=True)

    p = sub.add_parser("run", help="one pass of every rule over the samples since the last pass")
    _run_arguments(p)
    p.add_argument(
        "--fail-on", choices=SEVERITIES, default=None,
        help=f"exit {EXIT_ALERTS} when an open alert of these rules is at least this severe",
    )  # fmt: skip
    p.add_argument("--pushgateway", metavar="URL", default=None, help="push metrics to this Pushgateway")
    p.add_argument(
        "--push-group", metavar="NAME", default=None, help="Pushgateway grouping key (default: from rules)"
    )
    p.add_argument(
        "--push-namespace", metavar="NAME", default=os.environ.get("DYNOLINE_NAMESPACE") or None,
        help="namespace label of the push group (default: $DYNOLINE_NAMESPACE, which the operator sets)",
    )  # fmt: skip
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(handler=_run)

    p = sub.add_parser("watch", help="a pass every --interval, with metrics served over HTTP")
    _run_arguments(p)
    p.add_argument("--interval", default="30s", help="time between passes (default 30s)")
    p.add_argument("--metrics-port", type=int, default=9102, help="HTTP port for /metrics (0: none)")
    p.add_argument("--metrics-address", default="0.0.0.0", help="address to serve /metrics on")
    p.add_argument("--json", action="store_true", help="print each pass's summary as a JSON line")
    p.add_argument("--passes", type=int, default=0, help=argparse.SUPPRESS)  # stop after N passes (tests)
    p.set_defaults(handler=_watch)

    p = sub.add_parser("fit", help="fit a health-index model on run-to-failure data")
    p.add_argument("--dataset", required=True, help="C-MAPSS run-to-failure file (e.g. train_FD001.txt)")
    p.add_argument("--out", required=True, help="model file to write (JSON)")
    p.add_argument(
        "--knee", type=int, default=125, help="remaining life (cycles) above which a unit is healthy"
    )
    p.add_argument(
        "--sensors", default=None, help="comma-separated sensors (default: the 14 informative ones)"
    )
    p.add_argument(
        "--folds", type=int, default=5, metavar="K",
        help="also report K-fold (by unit) out-of-sample scores (default 5; 0: none)",
    )  # fmt: skip
    p.add_argument(
        "--regimes", type=int, default=None, metavar="K",
        help="K operating regimes (k-means of the 3 settings): standardise the channels per regime",
    )  # fmt: skip
    p.set_defaults(handler=_fit)

    p = subparsers.add_parser("alerts", help="list open or recent alerts")
    add_database_argument(p)
    p.add_argument("--line", default=None, help="only this line")
    p.add_argument("--rule", default=None, help="only this rule")
    scope = p.add_mutually_exclusive_group()
    scope.add_argument(
        "--open", dest="scope", action="store_const", const="open", help="open alerts (default)"
    )
    scope.add_argument("--all", dest="scope", action="store_const", const="all", help="open and resolved")
    p.add_argument("--limit", type=int, default=200, help="at most this many, newest first (default 200)")
    p.add_argument("--json", action="store_true", help="JSON instead of a table")
    p.set_defaults(handler=_alerts, scope="open")

    p = subparsers.add_parser(
        "evaluate", help="replay a C-MAPSS file through the store and the sentinel; report detection quality"
    )
    p.add_argument("--dataset", required=True, help="C-MAPSS train (run-to-failure) or test file")
    p.add_argument("--rul", default=None, help="RUL file of a test set (true remaining life per unit)")
    p.add_argument("--rules", required=True, help="rule file or directory")
    p.add_argument("--step", type=int, default=1, help="cycles written between sentinel passes (default 1)")
    p.add_argument(
        "--database-url", default=None, metavar="URL",
        help="PostgreSQL to replay into (default: a throw-away embedded PostgreSQL)",
    )  # fmt: skip
    p.add_argument(
        "--folds", type=int, default=None, metavar="K",
        help="k-fold by unit: refit the pack's models on the other folds, score each fold out of sample",
    )  # fmt: skip
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(handler=_evaluate)


def _run_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--rules", required=True, help="rule file or directory of rule files")
    add_database_argument(p)
    p.add_argument("--grace", default="5s", help="how far behind the newest sample a pass stops (default 5s)")
    p.add_argument(
        "--backfill", default="10m",
        help="how far back a rule with no watermark starts (default 10m; 'all' for the whole table)",
    )  # fmt: skip
    p.add_argument("--until", default=None, help="evaluate up to this sample time (ISO 8601) instead")


def _duration(text: str, flag: str) -> timedelta:
    try:
        return timedelta(seconds=seconds(text))
    except ValueError as exc:
        raise DynolineError(f"{flag}: {exc}") from None


def _until(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise DynolineError(f"--until: {text!r} is not an ISO 8601 time like 2026-01-01T00:05:00Z") from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _options(args: argparse.Namespace) -> dict[str, Any]:
    backfill = None if args.backfill == "all" else _duration(args.backfill, "--backfill")
    grace = timedelta(0) if args.grace in ("0", "0s") else _duration(args.grace, "--grace")
    return {"until": _until(args.until), "grace": grace, "backfill": backfill}


def _print_summary(summary: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print(json.dumps(summary), flush=True)
        return
    for line, r in summary["lines"].items():
        print(
            f"{line}: {r['rules']} rules, {r['samples_scanned']} samples up to {r['until']}:"
            f" {r['opened']} opened, {r['updated']} updated, {r['resolved']} resolved"
            + (f", quarantined {r['quarantined']}" if r["quarantined"] else "")
        )
    sev = summary["open_alerts"]
    print("open alerts: " + ", ".join(f"{sev[s]} {s}" for s in SEVERITIES), flush=True)


def _run(args: argparse.Namespace) -> int:
    from workloads.sentinel.metrics import failure_registry, push, push_group, rule_lines, success_registry
    from workloads.sentinel.rules import load_rules
    from workloads.sentinel.runner import fails, run_once

    rules = load_rules(args.rules)  # a bad rule file stops here, before any connection
    url = dsn.resolve(args.database_url)
    options = _options(args)
    group = args.push_group or push_group(rules)
    try:
        summary = run_once(url, rules, **options)
    except DynolineError:
        if args.pushgateway:
            try:
                failed = failure_registry(rule_lines(rules), time.time())
                push(failed, args.pushgateway, group, namespace=args.push_namespace)
            except DynolineError as exc:
                log.warning("%s", exc)
        raise
    _print_summary(summary.to_json(), args.json)
    if args.pushgateway:
        push(success_registry(summary, time.time()), args.pushgateway, group, namespace=args.push_namespace)
    return EXIT_ALERTS if fails(summary, args.fail_on) else 0


def _watch(args: argparse.Namespace) -> int:
    from prometheus_client import start_http_server

    from workloads.sentinel.metrics import SentinelMetrics, rule_lines
    from workloads.sentinel.rules import load_rules
    from workloads.sentinel.runner import run_once

    rules = load_rules(args.rules)
    url = dsn.resolve(args.database_url)
    options = _options(args)
    interval = _duration(args.interval, "--interval").total_seconds()
    metrics = SentinelMetrics()
    if args.metrics_port:
        start_http_server(args.metrics_port, addr=args.metrics_address, registry=metrics.registry)
        log.info("serving metrics on %s:%d/metrics", args.metrics_address, args.metrics_port)
    stop = threading.Event()

    def _stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    in_main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _stop) if in_main else None
    passes = 0
    try:
        while not stop.is_set():
            try:
                summary = run_once(url, rules, **options)
            except DynolineError as exc:
                metrics.failed(rule_lines(rules), time.time())
                print(f"dynoline: error: {exc}", file=sys.stderr, flush=True)
            else:
                metrics.observe(summary, time.time())
                _print_summary(summary.to_json(), args.json)
            passes += 1
            if args.passes and passes >= args.passes:
                break
            stop.wait(interval)
    except KeyboardInterrupt:
        pass
    finally:
        if in_main:
            signal.signal(signal.SIGTERM, previous)
    return 0


def _fit(args: argparse.Namespace) -> int:
    from workloads.sentinel.health_index import INFORMATIVE, dump_model, fit
    from workloads.sources.cmapss import load

    sensors = INFORMATIVE if args.sensors is None else [s for s in args.sensors.split(",") if s.strip()]
    trajectories = load(args.dataset)
    result = fit(
        trajectories,
        sensors=sensors,
        knee_rul=args.knee,
        source=Path(args.dataset).name,
        regimes=args.regimes,
    )
    out = Path(args.out)
    try:
        out.write_text(dump_model(result.model), encoding="utf-8")
    except OSError as exc:
        raise DynolineError(f"--out {out}: cannot write: {exc}") from None
    report: dict[str, Any] = {"out": str(out), **result.model.training}
    if args.folds:
        from workloads.sentinel.crossval import kfold_fit

        report["out_of_sample"] = kfold_fit(
            trajectories, args.folds, sensors=sensors, knee_rul=args.knee, regimes=args.regimes
        )
    print(json.dumps(report))
    return 0


def _alerts(args: argparse.Namespace) -> int:
    from workloads.sentinel.alerts import list_alerts, render_table

    if args.limit < 1:
        raise DynolineError(f"--limit must be at least 1, got {args.limit}")
    url = dsn.resolve(args.database_url)
    rows = list_alerts(url, line=args.line, rule=args.rule, open_only=args.scope == "open", limit=args.limit)
    if args.json:
        print(json.dumps(rows))
    else:
        print(render_table(rows))
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from workloads.sentinel.evaluate import evaluate, render_report

    if args.step < 1:
        raise DynolineError(f"--step must be at least 1 cycle, got {args.step}")
    options = {"rul": args.rul, "step": args.step, "database_url": args.database_url, "folds": args.folds}
    report = evaluate(args.dataset, args.rules, **options)
    print(json.dumps(report) if args.json or args.folds else render_report(report))
    return 0
