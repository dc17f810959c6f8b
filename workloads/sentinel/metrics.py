"""Sentinel metrics: pushed to a Pushgateway by one-shot runs (CronJobs), served over HTTP by `watch`.

A batch job lives too briefly to be scraped, so `run --pushgateway` pushes (the conventional path for
batch jobs). The push is a push-add (POST): it replaces only the metric families it carries within the
run's group, so what a run does not say stays as the last run left it. A successful run pushes the open
alerts and `last_success`; a failed one pushes only `last_failure`, so a failing sentinel keeps its last
open-alert figures (an open critical alert does not clear because the sentinel broke) and `last_success`
stops moving. Per-process counters are not pushed: every push would send the count of one process (1),
which no `increase()` can see grow; the two timestamps say the same thing across runs.
`watch` is long-lived and is scraped: it serves the counters and histogram as well as the gauges.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, pushadd_to_gateway

from workloads.errors import DynolineError
from workloads.sentinel.rules import LoadedRule
from workloads.sentinel.runner import RunSummary

JOB = "dynoline-sentinel"
_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

OPEN_ALERTS = "dynoline_sentinel_open_alerts"
LAST_SUCCESS = "dynoline_sentinel_last_success_timestamp_seconds"
LAST_FAILURE = "dynoline_sentinel_last_failure_timestamp_seconds"


def _open_alerts(registry: CollectorRegistry) -> Gauge:
    return Gauge(OPEN_ALERTS, "Open alerts by rule, line and severity", ["rule", "line", "severity"],
                 registry=registry)  # fmt: skip


def _last_success(registry: CollectorRegistry) -> Gauge:
    return Gauge(LAST_SUCCESS, "Unix time of the last pass that completed, per line", ["line"],
                 registry=registry)  # fmt: skip


def _last_failure(registry: CollectorRegistry) -> Gauge:
    return Gauge(LAST_FAILURE, "Unix time of the last pass that failed, per line", ["line"],
                 registry=registry)  # fmt: skip


class SentinelMetrics:
    """What `watch` serves: the pass counters and durations of one long-lived process, and the gauges."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.open_alerts = _open_alerts(r)
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
        self.last_success = _last_success(r)
        self.last_failure = _last_failure(r)

    def observe(self, summary: RunSummary, now: float) -> None:
        for line, result in summary.lines.items():
            self.duration.labels(line).observe(result.duration_seconds)
            self.samples.labels(line).inc(result.samples)
            self.last_success.labels(line).set(now)
        for (rule, line, severity), n in summary.open_alerts.items():
            self.open_alerts.labels(rule, line, severity).set(n)
            line_result = summary.lines.get(line)
            opened = line_result.opened_by_rule.get(rule, 0) if line_result else 0
            self.opened.labels(rule, line, severity).inc(opened)
        self.passes.labels("success").inc()

    def failed(self, lines: Iterable[str], now: float) -> None:
        for line in lines:
            self.last_failure.labels(line).set(now)
        self.passes.labels("failure").inc()


def rule_lines(rules: Sequence[LoadedRule]) -> list[str]:
    return sorted({r.rule.line for r in rules})


def success_registry(summary: RunSummary, now: float) -> CollectorRegistry:
    """A completed run's push: open alerts (zero included, so every rule has its series), last_success."""
    registry = CollectorRegistry()
    open_alerts, last_success = _open_alerts(registry), _last_success(registry)
    for (rule, line, severity), n in summary.open_alerts.items():
        open_alerts.labels(rule, line, severity).set(n)
    for line in summary.lines:
        last_success.labels(line).set(now)
    return registry


def failure_registry(lines: Iterable[str], now: float) -> CollectorRegistry:
    """A failed run's push: `last_failure` only, so the group keeps the last open alerts and success."""
    registry = CollectorRegistry()
    last_failure = _last_failure(registry)
    for line in lines:
        last_failure.labels(line).set(now)
    return registry


def push_group(rules: Sequence[LoadedRule]) -> str:
    """A stable grouping key for a rule set: one CronJob's pushes touch only its own series."""
    names = sorted(f"{r.rule.line}/{r.rule.name}" for r in rules)
    if len(names) == 1:
        return names[0].replace("/", ".")
    return "rules-" + hashlib.sha256("\n".join(names).encode()).hexdigest()[:12]


def grouping_key(group: str, namespace: str | None) -> dict[str, str]:
    """The push group's labels: the rule set, and the namespace of the CronJob when known, so the same
    line and rule names in two namespaces are two groups (and the series say where they come from)."""
    return {"namespace": namespace, "rules": group} if namespace else {"rules": group}


def push(
    registry: CollectorRegistry,
    gateway: str,
    group: str,
    *,
    namespace: str | None = None,
    timeout: float = 10.0,
) -> None:
    """Push-add (POST): replaces the pushed families in the group, leaves the group's others alone."""
    try:
        pushadd_to_gateway(
            gateway, job=JOB, registry=registry, grouping_key=grouping_key(group, namespace), timeout=timeout
        )
    except Exception as exc:  # urllib raises URLError, HTTPError, OSError, ValueError for a bad URL
        raise DynolineError(f"cannot push metrics to {gateway}: {exc}") from None
