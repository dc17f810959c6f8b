"""The operator against a real API server: create → children, update → roll-out, drift → repair,
delete → garbage collection, status conditions and `kubectl wait --for=condition=Ready`."""

from __future__ import annotations

import json
from functools import partial

import pytest

from controllers.manifests import CONFIG_HASH
from tests.envtest.controlplane import ControlPlane
from tests.integration.operator_harness import (
    EXAMPLES,
    MIGRATE,
    SIMULATOR,
    Operator,
    apply,
    condition,
    db_secret,
    get,
    items,
    line_manifest,
    run_pods,
    succeed_pods,
    wait_for,
)

pytestmark = pytest.mark.integration


def children(cp: ControlPlane, namespace: str, line: str) -> dict[str, bool]:
    return {
        "configmap": get(cp, "configmap", namespace, f"{line}-config") is not None,
        "service": get(cp, "service", namespace, line) is not None,
        "job": bool(items(cp, "jobs", namespace, f"{MIGRATE},app.kubernetes.io/instance={line}")),
        "statefulset": get(cp, "statefulset", namespace, line) is not None,
    }


def bring_up(cp: ControlPlane, namespace: str, line: str, shards: int) -> None:
    """Play the kubelet: the migration pod succeeds, then every simulator pod starts and is ready."""
    wait_for(
        "the migration pod",
        lambda: succeed_pods(cp, namespace, f"{MIGRATE},app.kubernetes.io/instance={line}"),
    )
    sts = wait_for(
        f"{shards} simulator pods",
        lambda: len(items(cp, "pods", namespace, f"{SIMULATOR},app.kubernetes.io/instance={line}")) == shards,
    )
    assert sts
    run_pods(cp, namespace, f"{SIMULATOR},app.kubernetes.io/instance={line}")


def test_examples_come_to_life_and_report_ready(
    crds: ControlPlane, namespace: str, operator: Operator
) -> None:
    apply(crds, namespace, EXAMPLES)  # the Secret, line-a and the SentinelRules, as shipped
    wait_for("line-a's children", lambda: all(children(crds, namespace, "line-a").values()))
    line = wait_for("a status", lambda: (get(crds, "dl", namespace, "line-a") or {}).get("status"))
    assert line["observedGeneration"] == 1
    assert condition(get(crds, "dl", namespace, "line-a"), "Ready") == ("False", "Migrating")
    # No shard runs before the schema is migrated.
    assert get(crds, "statefulset", namespace, "line-a")["spec"]["replicas"] == 0  # type: ignore[index]

    bring_up(crds, namespace, "line-a", shards=2)
    crds.kubectl("wait", "--for=condition=Ready", "dynoline/line-a", "-n", namespace, "--timeout=60s")
    line = get(crds, "dl", namespace, "line-a")
    assert condition(line, "Ready") == ("True", "ShardsStreaming")
    assert condition(line, "Progressing") == ("False", "Stable")
    assert condition(line, "Degraded") == ("False", "AsExpected")
    assert line is not None and line["status"]["shardsReady"] == 2

    # Every rule of the pack has its CronJob; the line exists, so they are scheduled.
    rules = items(crds, "sentinelrules", namespace)
    assert len(rules) >= 5
    for rule in rules:
        name = rule["metadata"]["name"]
        wait_for(f"{name}'s CronJob", partial(get, crds, "cronjob", namespace, f"sentinel-{name}"))
    crds.kubectl("wait", "--for=condition=Ready", "sentinelrules", "--all", "-n", namespace, "--timeout=60s")

    out = crds.kubectl("get", "dl,sr", "-n", namespace).stdout
    assert "ShardsStreaming" in out and "Scheduled" in out
    described = crds.kubectl("describe", "dl", "line-a", "-n", namespace).stdout
    assert "Migrating" in described and "ShardsStreaming" in described  # the Events tell the story
    assert (
        operator.metric("dynoline_operator_managed_resources", controller="dynoline", state="ShardsStreaming")
        == 1
    )


def test_update_rolls_out_the_new_settings(crds: ControlPlane, namespace: str, operator: Operator) -> None:
    apply(crds, namespace, db_secret())
    apply(crds, namespace, line_manifest("line-u", units=10, shards=2))
    wait_for("children", lambda: all(children(crds, namespace, "line-u").values()))
    bring_up(crds, namespace, "line-u", shards=2)
    crds.kubectl("wait", "--for=condition=Ready", "dl/line-u", "-n", namespace, "--timeout=60s")
    before = get(crds, "statefulset", namespace, "line-u")
    assert before is not None
    old_hash = before["spec"]["template"]["metadata"]["annotations"][CONFIG_HASH]

    apply(crds, namespace, line_manifest("line-u", units=30, shards=3, rateHz=2.0))
    after = wait_for(
        "the new settings in the StatefulSet",
        lambda: (
            (s := get(crds, "statefulset", namespace, "line-u"))
            and s["spec"]["replicas"] == 3
            and s["spec"]["template"]["metadata"]["annotations"][CONFIG_HASH] != old_hash
            and s
        ),
    )
    assert after
    config = get(crds, "configmap", namespace, "line-u-config")
    assert (
        config is not None
        and "units: 30" in config["data"]["line.yaml"]
        and "rateHz: 2.0" in config["data"]["line.yaml"]
    )
    # The StatefulSet controller has a new revision to roll out: the line is not Ready until it has.
    wait_for(
        "Ready=False while rolling out",
        lambda: condition(get(crds, "dl", namespace, "line-u"), "Ready") == ("False", "RollingOut"),
    )
    line = get(crds, "dl", namespace, "line-u")
    assert line is not None and line["status"]["observedGeneration"] == 2

    # The StatefulSet controller replaces pods one by one; play the kubelet for each new pod.
    def rolled() -> bool:
        for pod in items(crds, "pods", namespace, f"{SIMULATOR},app.kubernetes.io/instance=line-u"):
            if pod["metadata"].get("deletionTimestamp"):
                crds.kubectl(
                    "delete",
                    "pod",
                    pod["metadata"]["name"],
                    "-n",
                    namespace,
                    "--grace-period=0",
                    "--force",
                    check=False,
                )
        run_pods(crds, namespace, f"{SIMULATOR},app.kubernetes.io/instance=line-u")
        return condition(get(crds, "dl", namespace, "line-u"), "Ready") == ("True", "ShardsStreaming")

    wait_for("the roll-out to finish", rolled, timeout=120, interval=1.0)


def test_hand_edits_and_deletions_are_put_back(
    crds: ControlPlane, namespace: str, operator: Operator
) -> None:
    apply(crds, namespace, db_secret())
    apply(crds, namespace, line_manifest("line-d", units=10, shards=2))
    wait_for("children", lambda: all(children(crds, namespace, "line-d").values()))
    first = get(crds, "configmap", namespace, "line-d-config")
    assert first is not None

    crds.kubectl("delete", "configmap", "line-d-config", "-n", namespace)
    crds.kubectl("delete", "service", "line-d", "-n", namespace)
    recreated = wait_for(
        "the ConfigMap to be recreated",
        lambda: (
            (cm := get(crds, "configmap", namespace, "line-d-config"))
            and cm["metadata"]["uid"] != first["metadata"]["uid"]
            and cm
        ),
    )
    assert recreated["data"] == first["data"]
    wait_for("the Service to be recreated", lambda: get(crds, "service", namespace, "line-d"))

    crds.kubectl(
        "patch",
        "configmap",
        "line-d-config",
        "-n",
        namespace,
        "--type=merge",
        "-p",
        json.dumps({"data": {"line.yaml": "units: 1\n"}}),
    )
    wait_for(
        "the edited ConfigMap to be restored",
        lambda: (get(crds, "configmap", namespace, "line-d-config") or {}).get("data") == first["data"],
    )
    crds.kubectl("scale", "statefulset", "line-d", "-n", namespace, "--replicas=9")
    wait_for(
        "replicas to be restored",
        lambda: (get(crds, "statefulset", namespace, "line-d") or {}).get("spec", {}).get("replicas") == 0,
    )


def test_delete_garbage_collects_every_child_and_keeps_no_finalizer(
    crds: ControlPlane,
    namespace: str,
    operator: Operator,
) -> None:
    apply(crds, namespace, db_secret())
    apply(crds, namespace, line_manifest("line-g", units=10, shards=2))
    wait_for("children", lambda: all(children(crds, namespace, "line-g").values()))
    line = get(crds, "dl", namespace, "line-g")
    assert line is not None and "finalizers" not in line["metadata"]  # Retain: deletion is never held
    crds.kubectl("delete", "dl", "line-g", "-n", namespace, "--wait=true", "--timeout=60s")
    # kube-controller-manager's garbage collector follows the owner references.
    wait_for("garbage collection", lambda: not any(children(crds, namespace, "line-g").values()), timeout=90)
    assert items(crds, "pods", namespace, "app.kubernetes.io/instance=line-g") == [] or wait_for(
        "pods to go",
        lambda: items(crds, "pods", namespace, "app.kubernetes.io/instance=line-g") == [],
        timeout=90,
    )


def test_missing_secret_is_reported_then_resolved(
    crds: ControlPlane, namespace: str, operator: Operator
) -> None:
    apply(crds, namespace, line_manifest("line-s", units=10, shards=1))
    wait_for(
        "SecretNotFound",
        lambda: condition(get(crds, "dl", namespace, "line-s"), "Ready") == ("False", "SecretNotFound"),
    )
    assert condition(get(crds, "dl", namespace, "line-s"), "Degraded") == ("True", "SecretNotFound")
    errors_before = operator.metric("dynoline_operator_reconcile_errors_total", controller="dynoline")
    apply(crds, namespace, db_secret())
    # Nothing watches Secrets (the operator may only `get` them): the slow retry finds it.
    wait_for(
        "the line to move on once the Secret exists",
        lambda: condition(get(crds, "dl", namespace, "line-s"), "Ready") == ("False", "Migrating"),
        timeout=30,
    )
    assert operator.metric("dynoline_operator_reconcile_errors_total", controller="dynoline") == errors_before
    assert operator.returncode is None
