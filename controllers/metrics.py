"""Operator metrics, named after prometheus-operator's (kopf exposes none of its own).

`dynoline_operator_reconcile_operations_total`, `_reconcile_errors_total`, `_reconcile_duration_seconds`,
`_managed_resources`, `_watch_operations_failed_total`, `_status_update_errors_total`. kopf has no hook
for a failed list or watch request, only the error it logs for each attempt (kopf._cogs.clients.api,
`Request attempt #N failed; ...: GET <url> -> <error>`, under the watching or API logger). So that is
what is counted, by one handler per process, and tests/api/test_metrics.py drives kopf's own watch code
against a failing server: if a kopf upgrade changes the logger or the message, it fails there.
"""

from __future__ import annotations

import logging
import re
from collections import defaultdict

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

CONTROLLERS = ("dynoline", "sentinelrule")


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.reconcile_operations = Counter(
            "dynoline_operator_reconcile_operations_total",
            "Reconciles started, by controller.",
            ["controller"],
            registry=r,
        )
        self.reconcile_errors = Counter(
            "dynoline_operator_reconcile_errors_total",
            "Reconciles that failed and were queued for retry, by controller.",
            ["controller"],
            registry=r,
        )
        self.reconcile_duration = Histogram(
            "dynoline_operator_reconcile_duration_seconds",
            "Time to reconcile one object, by controller.",
            ["controller"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=r,
        )
        self.managed_resources = Gauge(
            "dynoline_operator_managed_resources",
            "Custom resources the operator manages, by controller and state (the Ready reason).",
            ["controller", "state"],
            registry=r,
        )
        self.watch_failures = Counter(
            "dynoline_operator_watch_operations_failed_total",
            "Failed list/watch requests of kopf's watch streams (the stream is retried).",
            registry=r,
        )
        self.status_update_errors = Counter(
            "dynoline_operator_status_update_errors_total",
            "Status subresource updates that failed, by controller.",
            ["controller"],
            registry=r,
        )
        self.status_updates = Counter(
            "dynoline_operator_status_update_operations_total",
            "Status subresource updates, by controller.",
            ["controller"],
            registry=r,
        )
        self.queue_depth = Gauge(
            "dynoline_operator_workqueue_depth", "Objects waiting for or in a reconcile.", registry=r
        )
        self._states: dict[str, dict[tuple[str, str], str]] = defaultdict(dict)
        self._published: set[tuple[str, str]] = set()
        for controller in CONTROLLERS:
            self.reconcile_operations.labels(controller)
            self.reconcile_errors.labels(controller)
            self.reconcile_duration.labels(controller)
            self.status_update_errors.labels(controller)
            self.status_updates.labels(controller)

    def set_state(self, controller: str, key: tuple[str, str], state: str | None) -> None:
        """Record one object's state (None: it is gone) and refresh the per-state gauge."""
        states = self._states[controller]
        if state is None:
            states.pop(key, None)
        else:
            states[key] = state
        counts: dict[str, int] = defaultdict(int)
        for value in states.values():
            counts[value] += 1
        for published in self._published:  # states that emptied read 0 rather than their last count
            if published[0] == controller and published[1] not in counts:
                self.managed_resources.labels(*published).set(0)
        for value, count in counts.items():
            self.managed_resources.labels(controller, value).set(count)
            self._published.add((controller, value))

    def serve(self, port: int) -> None:
        if port:
            start_http_server(port, registry=self.registry)


KOPF_CLIENTS_LOGGER = "kopf._cogs.clients"  # kopf's .api and .watching log the failed attempts
_FAILED_GET = re.compile(r"^Request attempt #\S+ failed; .*?: GET \S+")


class WatchFailureCounter(logging.Handler):
    """Counts kopf's failed list/watch request attempts (GETs: kopf's writes are PATCHes) from its log."""

    def __init__(self, metrics: Metrics) -> None:
        super().__init__(level=logging.ERROR)
        self.metrics = metrics

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
        except Exception:
            return
        if _FAILED_GET.match(message):
            self.metrics.watch_failures.inc()


def count_watch_failures(metrics: Metrics) -> WatchFailureCounter:
    """Attach the counter to kopf's client logger once per process; when the operator starts again in the
    same process (tests, the benchmark), the one handler counts into the new metrics instead."""
    logger = logging.getLogger(KOPF_CLIENTS_LOGGER)
    for handler in logger.handlers:
        if isinstance(handler, WatchFailureCounter):
            handler.metrics = metrics
            return handler
    counter = WatchFailureCounter(metrics)
    logger.addHandler(counter)
    return counter
