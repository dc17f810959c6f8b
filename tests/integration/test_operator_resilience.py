"""The operator under duress: the API server goes away and comes back; the operator is killed mid-reconcile
and restarted. It must come back by itself, and converge without duplicating anything."""

from __future__ import annotations

import collections
from pathlib import Path

import pytest

from controllers.manifests import LABEL_MANAGED_BY, MANAGED_BY
from tests.envtest.controlplane import ControlPlane
from tests.integration.operator_harness import (
    Operator,
    apply,
    condition,
    db_secret,
    get,
    items,
    line_manifest,
    wait_for,
)

pytestmark = pytest.mark.integration

OURS = f"{LABEL_MANAGED_BY}={MANAGED_BY}"


def has_children(cp: ControlPlane, namespace: str, line: str) -> bool:
    return all(
        get(cp, kind, namespace, name) is not None
        for kind, name in (("statefulset", line), ("configmap", f"{line}-config"), ("service", line))
    )


def test_survives_the_api_server_going_away(crds: ControlPlane, namespace: str, operator: Operator) -> None:
    apply(crds, namespace, db_secret())
    apply(crds, namespace, line_manifest("line-before", units=10, shards=1))
    wait_for("children before the outage", lambda: has_children(crds, namespace, "line-before"))

    failed = "dynoline_operator_watch_operations_failed_total"
    before = operator.metric(failed)
    crds.stop_apiserver()
    try:
        # The watch streams broke and kopf's re-list failed (and is being retried): the outage is felt.
        wait_for("a failed watch counted", lambda: operator.metric(failed) > before, timeout=60)
        assert operator.returncode is None, operator.log()[-3000:]
        assert operator.alive()  # the liveness endpoint answers: restarting would not help
    finally:
        crds.start_apiserver()

    # After the outage: new objects are seen (the watch came back) and drift is repaired again.
    apply(crds, namespace, line_manifest("line-after", units=10, shards=1))
    wait_for("children after the outage", lambda: has_children(crds, namespace, "line-after"), timeout=90)
    crds.kubectl("delete", "configmap", "line-before-config", "-n", namespace)
    wait_for(
        "repair after the outage", lambda: get(crds, "configmap", namespace, "line-before-config"), timeout=60
    )
    assert operator.returncode is None


def test_restart_mid_reconcile_converges_without_duplicates(
    crds: ControlPlane, namespace: str, tmp_path: Path
) -> None:
    apply(crds, namespace, db_secret())
    names = [f"line-{i:02d}" for i in range(20)]
    for name in names:
        apply(crds, namespace, line_manifest(name, units=10, shards=2))

    first = Operator(crds, [namespace], tmp_path / "first.log").start(wait=False)
    wait_for(
        "the first StatefulSet",
        lambda: items(crds, "statefulsets", namespace, OURS),
        timeout=60,
        interval=0.05,
    )
    first.kill()  # SIGKILL in the middle of the work: no cleanup, nothing flushed
    made = len(items(crds, "statefulsets", namespace, OURS))
    assert made < len(names) * 4, "all work finished before the kill; nothing was interrupted"

    second = Operator(crds, [namespace], tmp_path / "second.log").start()
    try:
        wait_for(
            "every line to converge",
            lambda: all(
                condition(get(crds, "dl", namespace, n), "Ready") == ("False", "Migrating")
                and (get(crds, "dl", namespace, n) or {}).get("status", {}).get("observedGeneration") == 1
                for n in names
            ),
            timeout=120,
            interval=1,
        )
        for kind in ("statefulsets", "configmaps", "services", "jobs"):
            owners = collections.Counter(
                o["metadata"]["labels"]["app.kubernetes.io/instance"]
                for o in items(crds, kind, namespace, OURS)
            )
            assert owners == dict.fromkeys(names, 1), kind  # exactly one of each per line, none left over
        # Ready=False/Migrating was announced at most once per line, across both operator lives.
        events = items(crds, "events", namespace)
        migrating = collections.Counter(
            e["involvedObject"]["name"] for e in events if e["reason"] == "Migrating"
        )
        assert max(migrating.values()) == 1
    finally:
        assert second.stop() == 0  # SIGTERM: kopf and our workers stop cleanly
