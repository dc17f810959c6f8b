"""The chart's workload settings reach every pod the operator makes: imagePullSecrets, and resources,
nodeSelector, tolerations and affinity per kind of pod, with a DynoLine's spec.resources on top."""

from __future__ import annotations

import json
from typing import Any

import pytest

from controllers import manifests, settings
from controllers.manifests import Owner
from controllers.pods import DEFAULT_RESOURCES, WorkloadSettings
from workloads.api.line import DynoLineSpec
from workloads.api.rule import SentinelRuleSpec
from workloads.errors import DynolineError

LINE = Owner("DynoLine", "line-a", "factory", "uid-line")
RULE = Owner("SentinelRule", "t50-hot", "factory", "uid-rule")
TOLERATION = {"key": "dedicated", "operator": "Equal", "value": "lines", "effect": "NoSchedule"}
AFFINITY: dict[str, Any] = {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": []}}


def pods_env() -> dict[str, Any]:
    def kind(cpu: str, zone: str) -> dict[str, Any]:
        return {
            "resources": {"requests": {"cpu": cpu}},
            "nodeSelector": {"topology.kubernetes.io/zone": zone},
            "tolerations": [TOLERATION],
            "affinity": AFFINITY,
        }

    return {"simulator": kind("1", "a"), "migration": kind("200m", "b"), "sentinel": kind("300m", "c")}


def config(**env: str) -> settings.OperatorConfig:
    return settings.from_env({"DYNOLINE_IMAGE": "dynoline:test", **env})


def line(**changes: Any) -> DynoLineSpec:
    return DynoLineSpec.model_validate({"database": {"secretRef": {"name": "db"}}, "shards": 2, **changes})


def pod_specs(workload: WorkloadSettings, spec: DynoLineSpec) -> dict[str, dict[str, Any]]:
    rule = SentinelRuleSpec.model_validate(
        {
            "lineRef": {"name": "line-a"},
            "condition": {"type": "threshold", "sensor": "T50", "op": ">", "value": 1},
        }
    )
    sts = manifests.simulator_statefulset(LINE, spec, workload, image="i", replicas=2, config="h")
    job = manifests.migration_job(LINE, spec, workload)
    cron = manifests.sentinel_cronjob(
        RULE, rule, workload, database=spec.database.secret_ref, suspend=False, config="h"
    )
    return {
        "simulator": sts["spec"]["template"]["spec"],
        "migration": job["spec"]["template"]["spec"],
        "sentinel": cron["spec"]["jobTemplate"]["spec"]["template"]["spec"],
    }


def test_every_pod_gets_its_kinds_settings_and_the_pull_secrets() -> None:
    workload = config(
        DYNOLINE_WORKLOAD_PODS=json.dumps(pods_env()), DYNOLINE_IMAGE_PULL_SECRETS="regcred, mirror"
    ).workload
    expected = pods_env()
    for kind, pod in pod_specs(workload, line()).items():
        assert pod["imagePullSecrets"] == [{"name": "regcred"}, {"name": "mirror"}], kind
        assert pod["nodeSelector"] == expected[kind]["nodeSelector"], kind
        assert pod["tolerations"] == [TOLERATION], kind
        assert pod["affinity"] == AFFINITY, kind
        (container,) = pod["containers"]
        assert container["resources"] == expected[kind]["resources"], kind


def test_a_lines_resources_override_the_simulators_only() -> None:
    workload = config(DYNOLINE_WORKLOAD_PODS=json.dumps(pods_env())).workload
    mine = {"requests": {"cpu": "2", "memory": "1Gi"}, "limits": {"memory": "2Gi"}}
    pods = pod_specs(workload, line(resources=mine))
    assert pods["simulator"]["containers"][0]["resources"] == mine
    assert pods["migration"]["containers"][0]["resources"] == {"requests": {"cpu": "200m"}}
    # The pod template rolls the shards; the simulator's line file (and its config hash) does not change.
    assert manifests.line_file("line-a", line(resources=mine)) == manifests.line_file("line-a", line())


def test_without_settings_the_pods_are_as_before() -> None:
    pods = pod_specs(config().workload, line())
    for kind, key in (("simulator", manifests.SIMULATOR), ("migration", manifests.MIGRATE),
                      ("sentinel", manifests.SENTINEL)):  # fmt: skip
        assert pods[kind]["containers"][0]["resources"] == DEFAULT_RESOURCES[key]
        assert not {"imagePullSecrets", "nodeSelector", "tolerations", "affinity"} & set(pods[kind]), kind


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("{", "is not JSON"),
        ('{"simulatr": {}}', "unknown workload(s) simulatr"),
        ('{"sentinel": {"tolerations": {}}}', "sentinel.tolerations must be a list of objects"),
        ('{"migration": {"nodeSelector": {"a": 1}}}', "migration.nodeSelector must map label names"),
        ('{"simulator": {"resource": {}}}', "simulator: unknown field(s) resource"),
    ],
)
def test_bad_workload_settings_say_what_is_wrong(text: str, error: str) -> None:
    with pytest.raises(DynolineError, match=error.replace("(", r"\(").replace(")", r"\)")):
        config(DYNOLINE_WORKLOAD_PODS=text)


@pytest.mark.parametrize("quantity", ["1.5.0", "10 Mi", "-1", "1mi"])
def test_a_lines_resources_refuse_what_is_not_a_quantity(quantity: str) -> None:
    with pytest.raises(ValueError, match="resources"):
        line(resources={"limits": {"memory": quantity}})
