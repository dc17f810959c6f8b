"""SentinelRules against a real API server: the CronJob controller starts Jobs on schedule, and the rule's
status follows them; a missing DynoLine is a condition that clears once the line exists."""

from __future__ import annotations

import pytest
import yaml

from tests.envtest.controlplane import ControlPlane
from tests.integration.operator_harness import (
    Operator,
    apply,
    condition,
    db_secret,
    get,
    items,
    line_manifest,
    succeed_pods,
    wait_for,
)
from workloads.sentinel.rules import parse_rule

pytestmark = pytest.mark.integration

RULE = {
    "apiVersion": "dynoline.dev/v1alpha1",
    "kind": "SentinelRule",
    "metadata": {"name": "hpc-overheat"},
    "spec": {
        "lineRef": {"name": "line-r"},
        "schedule": "*/1 * * * *",
        "severity": "critical",
        "condition": {"type": "sustained", "sensor": "T50", "op": ">", "value": 1430.0, "for": "30s"},
        "clear": {"op": "<", "value": 1425.0},
        "action": "quarantine",
    },
}


def test_cronjob_runs_on_schedule_and_status_follows(
    crds: ControlPlane, namespace: str, operator: Operator
) -> None:
    apply(crds, namespace, db_secret())
    apply(crds, namespace, line_manifest("line-r", units=10, shards=1))
    apply(crds, namespace, RULE)
    cron = wait_for("the CronJob", lambda: get(crds, "cronjob", namespace, "sentinel-hpc-overheat"))
    assert cron["spec"]["schedule"] == "*/1 * * * *" and cron["spec"]["suspend"] is False
    config = get(crds, "configmap", namespace, "sentinel-hpc-overheat")
    assert config is not None
    # The sentinel reads exactly this file: same parser, same rule.
    rule = parse_rule(yaml.safe_load(config["data"]["hpc-overheat.yaml"]), "configmap")
    assert (rule.name, rule.line, rule.action) == ("hpc-overheat", "line-r", "quarantine")
    wait_for(
        "Scheduled",
        lambda: condition(get(crds, "sr", namespace, "hpc-overheat"), "Ready") == ("True", "Scheduled"),
    )

    # kube-controller-manager's CronJob controller starts a Job at the next minute boundary.
    selector = "app.kubernetes.io/instance=hpc-overheat,app.kubernetes.io/component=sentinel"
    job = wait_for(
        "a Job from the CronJob", lambda: items(crds, "jobs", namespace, selector), timeout=90, interval=1
    )[0]
    assert job["metadata"]["ownerReferences"][0]["kind"] == "CronJob"
    wait_for(
        "Progressing=Running",
        lambda: condition(get(crds, "sr", namespace, "hpc-overheat"), "Progressing") == ("True", "Running"),
    )

    # The kubelet's part: the sentinel pod exits 0; the Job controller marks the Job Complete.
    wait_for("the sentinel pod", lambda: succeed_pods(crds, namespace, selector))
    wait_for(
        "LastRunSucceeded",
        lambda: (
            condition(get(crds, "sr", namespace, "hpc-overheat"), "Ready") == ("True", "LastRunSucceeded")
        ),
    )
    status = get(crds, "sr", namespace, "hpc-overheat")["status"]  # type: ignore[index]
    assert status["lastResult"] == "Succeeded" and status["lastRunTime"] and status["lastScheduleTime"]
    assert status["lastJob"] == job["metadata"]["name"]
    out = crds.kubectl("get", "sr", "-n", namespace).stdout
    assert "LastRunSucceeded" in out and "line-r" in out


def test_missing_line_is_a_condition_until_it_exists(
    crds: ControlPlane, namespace: str, operator: Operator
) -> None:
    apply(crds, namespace, RULE)
    wait_for(
        "LineNotFound",
        lambda: condition(get(crds, "sr", namespace, "hpc-overheat"), "Ready") == ("False", "LineNotFound"),
    )
    assert get(crds, "cronjob", namespace, "sentinel-hpc-overheat") is None
    events = crds.kubectl(
        "get", "events", "-n", namespace, "--field-selector", "involvedObject.name=hpc-overheat"
    ).stdout
    assert "LineNotFound" in events

    apply(crds, namespace, db_secret())
    apply(crds, namespace, line_manifest("line-r", units=10, shards=1))
    # The line's watch event wakes the rule at once (no waiting for the slow retry).
    wait_for(
        "Scheduled",
        lambda: condition(get(crds, "sr", namespace, "hpc-overheat"), "Ready") == ("True", "Scheduled"),
    )
    assert get(crds, "cronjob", namespace, "sentinel-hpc-overheat") is not None

    crds.kubectl("delete", "dl", "line-r", "-n", namespace)
    wait_for(
        "the CronJob to be suspended",
        lambda: (
            (get(crds, "cronjob", namespace, "sentinel-hpc-overheat") or {}).get("spec", {}).get("suspend")
            is True
        ),
    )
    assert operator.returncode is None
