"""Event routing, the work queue, settings and metrics: what sits between kopf and the reconcilers."""

from __future__ import annotations

import asyncio
from typing import Any

import kopf
import pytest
from prometheus_client import generate_latest

from controllers import manifests
from controllers.context import Context
from controllers.controller import Controller, owner_key
from controllers.kube import Kube
from controllers.metrics import Metrics
from controllers.queue import WorkQueue, backoff
from controllers.settings import OperatorConfig, configure, from_env
from tests.api.conftest import Cluster, exists
from tests.api.test_lines import NS, line, secret
from workloads.errors import DynolineError


def child(kind: str, name: str, owner_kind: str, owner: str, rv: str = "1") -> dict[str, Any]:
    return {
        "kind": kind,
        "metadata": {
            "name": name,
            "namespace": NS,
            "resourceVersion": rv,
            "ownerReferences": [{"kind": owner_kind, "name": owner, "controller": True}],
        },
    }


def test_owner_key_maps_children_to_their_resource() -> None:
    assert owner_key("DynoLine", {"metadata": {"name": "a", "namespace": NS}}) == ("DynoLine", NS, "a")
    assert owner_key("StatefulSet", child("StatefulSet", "a", "DynoLine", "a")) == ("DynoLine", NS, "a")
    cron_job = {
        "metadata": {
            "name": "sentinel-r-123",
            "namespace": NS,
            "labels": manifests.labels("r", manifests.SENTINEL, "a"),
            "ownerReferences": [{"kind": "CronJob", "name": "sentinel-r", "controller": True}],
        }
    }
    assert owner_key("Job", cron_job) == ("SentinelRule", NS, "r")
    assert owner_key("ConfigMap", {"metadata": {"name": "x", "namespace": NS}}) is None


async def test_queue_collapses_bursts_and_never_runs_a_key_twice_at_once() -> None:
    running: set[str] = set()
    calls: list[str] = []
    overlap = False
    started, release = asyncio.Event(), asyncio.Event()
    release.set()

    async def handler(key: str) -> None:
        nonlocal overlap
        overlap = overlap or key in running
        running.add(key)
        calls.append(key)
        started.set()
        await release.wait()
        running.discard(key)

    queue: WorkQueue[str] = WorkQueue(handler, workers=4)
    queue.start()
    for _ in range(10):
        queue.add("a")
    queue.add("b")
    await queue.wait_idle()
    assert sorted(calls) == ["a", "b"]
    # Changes while a key is being reconciled: exactly one more pass afterwards.
    started.clear()
    release.clear()
    queue.add("a")
    await started.wait()  # a worker is inside the reconcile of "a"
    for _ in range(5):
        queue.add("a")
    release.set()
    await queue.wait_idle()
    await queue.stop()
    assert calls.count("a") == 3 and not overlap


async def test_queue_retries_failures_with_backoff_and_honours_requeue_delays() -> None:
    attempts: list[float] = []
    loop = asyncio.get_running_loop()
    third = asyncio.Event()

    async def handler(key: str) -> float | None:
        attempts.append(loop.time())
        if len(attempts) < 3:
            raise RuntimeError("API server went away")
        third.set()
        return None

    errors: list[int] = []
    queue: WorkQueue[str] = WorkQueue(
        handler, workers=1, on_error=lambda k, e, n: errors.append(n), retry=lambda n: 0.01 * n
    )
    queue.start()
    queue.add("a")
    await asyncio.wait_for(third.wait(), timeout=30)
    await queue.stop()
    assert errors == [1, 2] and len(attempts) == 3 and queue.failures == {}


def test_backoff_grows_and_is_capped() -> None:
    assert 0.45 <= backoff(1) <= 0.55
    assert 3.6 <= backoff(4) <= 4.4
    assert backoff(40) <= 132


async def test_controller_skips_the_echo_of_its_own_writes(
    cluster: Cluster, kube: Kube, ctx: Context
) -> None:
    controller = Controller(ctx)
    await kube.create(secret())
    await kube.create(line())
    controller.queue.start()
    controller.observe("DynoLine", None, await kube.get("DynoLine", NS, "line-a"))
    await controller.queue.wait_idle()
    assert exists(cluster, "apps/v1/statefulsets", NS, "line-a")
    sts = await kube.get("StatefulSet", NS, "line-a")
    assert ctx.writes.is_own("StatefulSet", sts)
    controller.observe("StatefulSet", "MODIFIED", sts)
    assert len(controller.queue) == 0  # our own apply: no work
    controller.observe(
        "StatefulSet", "MODIFIED", {**sts, "metadata": {**sts["metadata"], "resourceVersion": "x"}}
    )
    assert len(controller.queue) == 1  # someone else changed it: reconcile the owner
    await controller.queue.wait_idle()
    await controller.stop()


async def test_a_line_event_wakes_the_rules_that_use_it(kube: Kube, ctx: Context) -> None:
    controller = Controller(ctx)
    rule = {"metadata": {"name": "r1", "namespace": NS}, "spec": {"lineRef": {"name": "line-a"}}}
    controller.observe("SentinelRule", "ADDED", rule)
    controller.queue.forget(("SentinelRule", NS, "r1"))
    seen: list[Any] = []

    async def record(key: Any) -> None:
        seen.append(key)

    controller.queue = WorkQueue(record, workers=1)
    controller.queue.start()
    controller.observe("DynoLine", "ADDED", {"metadata": {"name": "line-a", "namespace": NS}})
    await controller.queue.wait_idle()
    assert ("SentinelRule", NS, "r1") in seen and ("DynoLine", NS, "line-a") in seen
    seen.clear()
    controller.observe("DynoLine", "DELETED", {"metadata": {"name": "line-a", "namespace": NS}})
    await controller.queue.wait_idle()
    await controller.queue.stop()
    assert ("SentinelRule", NS, "r1") in seen  # a rule whose line is gone must suspend its CronJob
    assert ("DynoLine", NS, "line-a") not in controller.known


def test_settings_from_environment() -> None:
    config = from_env(
        {
            "DYNOLINE_IMAGE": "registry.example/dynoline:9",
            "DYNOLINE_NAMESPACES": "a, b",
            "DYNOLINE_STORE_QUERIES": "false",
            "DYNOLINE_WATCH_SERVER_TIMEOUT": "120",
        }
    )
    assert config.workload.image == "registry.example/dynoline:9"
    assert config.namespaces == ("a", "b") and config.store_queries is False
    assert config.watch_server_timeout == 120 and config.watch_client_timeout == 150
    with pytest.raises(DynolineError, match="DYNOLINE_RESYNC_SECONDS"):
        from_env({"DYNOLINE_RESYNC_SECONDS": "soon"})
    with pytest.raises(DynolineError, match="DYNOLINE_IMAGE_PULL_POLICY"):
        from_env({"DYNOLINE_IMAGE_PULL_POLICY": "Sometimes"})


def test_kopf_settings_are_explicit() -> None:
    settings = kopf.OperatorSettings()
    configure(settings, OperatorConfig())
    assert settings.watching.server_timeout == 270 and isinstance(settings.watching.server_timeout, int)
    assert settings.watching.client_timeout == 300
    assert settings.peering.standalone is True
    assert settings.scanning.disabled is True
    assert "app.kubernetes.io/managed-by=dynoline-operator" in set(settings.watching.label_selectors.values())


def test_metrics_are_named_like_prometheus_operators() -> None:
    metrics = Metrics()
    metrics.set_state("dynoline", ("ns", "a"), "ShardsStreaming")
    metrics.set_state("dynoline", ("ns", "b"), "Migrating")
    metrics.set_state("dynoline", ("ns", "b"), None)
    text = generate_latest(metrics.registry).decode()
    for name in (
        "dynoline_operator_reconcile_operations_total",
        "dynoline_operator_reconcile_errors_total",
        "dynoline_operator_reconcile_duration_seconds_bucket",
        "dynoline_operator_watch_operations_failed_total",
        "dynoline_operator_status_update_errors_total",
    ):
        assert name in text, name
    assert 'dynoline_operator_managed_resources{controller="dynoline",state="ShardsStreaming"} 1.0' in text
    assert 'dynoline_operator_managed_resources{controller="dynoline",state="Migrating"} 0.0' in text
