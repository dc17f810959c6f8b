"""Sentinel metrics: pushed to a Pushgateway by one-shot runs (CronJobs), served over HTTP by `watch`.

A batch job lives too briefly to be scraped, so `run --pushgateway` pushes its registry (the
conventional path for batch jobs); `watch` is long-lived and exposes the same series on a port.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, push_to_gateway

from workloads.errors import DynolineError
from workloads.sentinel.rules import LoadedRule
from workloads.sentinel.runner import RunSummary

JOB = "dynoline-sentinel"
_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class SentinelMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.open_alerts = Gauge(
            "dynoline_sentinel_open_alerts", "Open alerts by rule, line and severity",
            ["rule", "line", "severity"], registry=r,
        )  # fmt: skip
        self.duration = Histogram(
            "dynoline_sentinel_evaluation_duration_seconds", "Duration of one sentinel pass over one line",
            ["line"], buckets=_BUCKETS, registry=r,
        )  # fmt: skip
        self.samples = Counter(
            "dynoline_sentinel_samples_scanned", "New telemetry samples evaluated", ["line"], registry=r
        )
        self.opened = Counter(
            "dynoline_sentinel_alerts_opened", "Alerts opened", ["rule", "line", "severity"], registry=r
        )
        self.passes = Counter("dynoline_sentinel_runs", "Sentinel runs by result", ["result"], registry=r)
        self.last_success = Gauge(
            "dynoline_sentinel_last_success_timestamp_seconds",
            "Unix time of the last run that completed", registry=r,
        )  # fmt: skip

    def observe(self, summary: RunSummary) -> None:
        for line, result in summary.lines.items():
            self.duration.labels(line).observe(result.duration_seconds)
            self.samples.labels(line).inc(result.samples)
        for (rule, line, severity), n in summary.open_alerts.items():
            self.open_alerts.labels(rule, line, severity).set(n)
            line_result = summary.lines.get(line)
            opened = line_result.opened_by_rule.get(rule, 0) if line_result else 0
            self.opened.labels(rule, line, severity).inc(opened)
        self.passes.labels("success").inc()
        self.last_success.set(time.time())

    def failed(self) -> None:
        self.passes.labels("failure").inc()


def push_group(rules: Sequence[LoadedRule]) -> str:
    """A stable grouping key for a rule set: one CronJob's pushes replace only its own series."""
    names = sorted(f"{r.rule.line}/{r.rule.name}" for r in rules)
    if len(names) == 1:
        return names[0].replace("/", ".")
    return "rules-" + hashlib.sha256("\n".join(names).encode()).hexdigest()[:12]


def push(metrics: SentinelMetrics, gateway: str, group: str, *, timeout: float = 10.0) -> None:
    try:
        push_to_gateway(
            gateway, job=JOB, registry=metrics.registry, grouping_key={"rules": group}, timeout=timeout
        )
    except Exception as exc:  # urllib raises URLError, HTTPError, OSError, ValueError for a bad URL
        raise DynolineError(f"cannot push metrics to {gateway}: {exc}") from None
