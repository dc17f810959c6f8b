"""Manifest builders: what the operator applies for a DynoLine and a SentinelRule (pure functions)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from controllers import manifests, naming
from controllers.manifests import Owner
from controllers.pods import WorkloadSettings
from workloads.api.line import DynoLineSpec
from workloads.api.rule import Rule, SentinelRuleSpec
from workloads.simulator.config import load_line_file

SETTINGS = WorkloadSettings(image="registry.example/dynoline:1.2.3", image_pull_policy="Always")
LINE = Owner("DynoLine", "line-a", "factory", "uid-line")
RULE = Owner("SentinelRule", "hpc-overheat", "factory", "uid-rule")
SECRET_URL = "postgresql://dynoline:s3cret@db:5432/dynoline"


def line_spec(**changes: Any) -> DynoLineSpec:
    base: dict[str, Any] = {
        "units": 100,
        "rateHz": 1.0,
        "shards": 4,
        "source": {"type": "synthetic", "seed": 7},
        "faults": [{"unit": 17, "startAfter": "2m"}],
        "database": {"secretRef": {"name": "telemetry-db", "key": "uri"}},
    }
    return DynoLineSpec.model_validate({**base, **changes})


def rule_spec(**changes: Any) -> SentinelRuleSpec:
    base: dict[str, Any] = {
        "lineRef": {"name": "line-a"},
        "schedule": "*/5 * * * *",
        "severity": "critical",
        "condition": {"type": "sustained", "sensor": "T50", "op": ">", "value": 1430.0, "for": "30s"},
        "clear": {"op": "<", "value": 1425.0},
        "action": "quarantine",
    }
    return SentinelRuleSpec.model_validate({**base, **changes})


def line_objects(spec: DynoLineSpec | None = None, replicas: int = 4) -> list[dict[str, Any]]:
    children = manifests.line_children(
        LINE, spec or line_spec(), SETTINGS, image=SETTINGS.image, replicas=replicas
    )
    return children.manifests()


def rule_objects(spec: SentinelRuleSpec | None = None, suspend: bool = False) -> list[dict[str, Any]]:
    spec = spec or rule_spec()
    cm = manifests.rule_config_map(RULE, spec)
    config = naming.config_hash(cm["data"][naming.rule_file_name(RULE.name)])
    database = line_spec().database.secret_ref
    return [
        cm,
        manifests.sentinel_cronjob(RULE, spec, SETTINGS, database=database, suspend=suspend, config=config),
    ]


def containers(obj: dict[str, Any]) -> list[dict[str, Any]]:
    spec = obj["spec"]
    template = spec["jobTemplate"]["spec"]["template"] if obj["kind"] == "CronJob" else spec["template"]
    result: list[dict[str, Any]] = template["spec"]["containers"]
    return result


@pytest.mark.parametrize(
    "obj", [*line_objects(), *rule_objects()], ids=lambda o: f"{o['kind']}/{o['metadata']['name']}"
)
def test_every_child_is_owned_labelled_and_namespaced(obj: dict[str, Any]) -> None:
    meta = obj["metadata"]
    owner = LINE if meta["name"].startswith("line-a") else RULE
    assert meta["namespace"] == "factory"
    assert meta["ownerReferences"] == [
        {
            "apiVersion": "dynoline.dev/v1alpha1",
            "kind": owner.kind,
            "name": owner.name,
            "uid": owner.uid,
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]
    labels = meta["labels"]
    assert labels["app.kubernetes.io/name"] == "dynoline"
    assert labels["app.kubernetes.io/instance"] == owner.name
    assert labels["app.kubernetes.io/managed-by"] == "dynoline-operator"
    assert labels["dynoline.dev/line"] == "line-a"
    assert labels["app.kubernetes.io/component"] in ("simulator", "migrate", "sentinel")


@pytest.mark.parametrize("obj", [o for o in [*line_objects(), *rule_objects()] if o["kind"] != "ConfigMap"])
def test_database_only_by_secret_reference(obj: dict[str, Any]) -> None:
    assert SECRET_URL not in json.dumps(obj)
    for container in containers(obj) if obj["kind"] != "Service" else []:
        env = {e["name"]: e for e in container["env"]}
        assert env["DYNOLINE_DATABASE_URL"] == {
            "name": "DYNOLINE_DATABASE_URL",
            "valueFrom": {"secretKeyRef": {"name": "telemetry-db", "key": "uri"}},
        }
        assert container["image"] == SETTINGS.image and container["imagePullPolicy"] == "Always"
        assert container["securityContext"]["allowPrivilegeEscalation"] is False


def test_the_line_file_is_what_the_simulator_reads(tmp_path: Path) -> None:
    cm = line_objects()[0]
    path = tmp_path / "line.yaml"
    path.write_text(cm["data"]["line.yaml"])
    loaded = load_line_file(path)
    assert loaded.line == "line-a"
    assert loaded.spec.units == 100 and loaded.spec.shards == 4 and loaded.spec.rate_hz == 1.0
    assert loaded.spec.source.model_dump() == {"type": "synthetic", "seed": 7}
    assert [f.unit for f in loaded.spec.faults] == [17]
    assert loaded.spec.database is None  # the URL comes from the environment, never the file
    assert loaded.simulator.spool == "/var/lib/dynoline/spool/"


def test_statefulset_pod_ordinal_is_the_shard() -> None:
    sts = line_objects()[3]
    spec = sts["spec"]
    assert spec["replicas"] == 4 and spec["serviceName"] == "line-a"
    assert spec["podManagementPolicy"] == "Parallel"
    assert spec["selector"]["matchLabels"].items() <= spec["template"]["metadata"]["labels"].items()
    container = containers(sts)[0]
    assert container["args"] == [
        "simulate",
        "--config",
        "/etc/dynoline/line.yaml",
        "--shard",
        "$(DYNOLINE_SHARD)",
    ]
    env = {e["name"]: e for e in container["env"]}
    assert env["DYNOLINE_SHARD"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    assert container["ports"] == [{"name": "metrics", "containerPort": 9108, "protocol": "TCP"}]
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "metrics"}
    volumes = {v["name"]: v for v in spec["template"]["spec"]["volumes"]}
    assert volumes["config"]["configMap"]["name"] == "line-a-config"


CLAIM = {
    "metadata": {"labels": {"backup.example/tier": "gold"}, "annotations": {"note.example/owner": "lab 3"}},
    "spec": {
        "accessModes": ["ReadWriteOnce"],
        "storageClassName": "fast-ssd",
        "resources": {"requests": {"storage": "2Gi"}},
    },
}
POD_SECURITY = {
    "runAsNonRoot": True,
    "runAsUser": 10001,
    "runAsGroup": 10001,
    "fsGroup": 10001,
    "fsGroupChangePolicy": "OnRootMismatch",
    "seccompProfile": {"type": "RuntimeDefault"},
}


def simulator_pod(sts: dict[str, Any]) -> dict[str, Any]:
    pod: dict[str, Any] = sts["spec"]["template"]["spec"]
    return pod


@pytest.mark.parametrize("spool", [None, {}], ids=["absent", "empty"])
def test_the_spool_is_a_1gi_empty_dir_by_default(spool: dict[str, Any] | None) -> None:
    sts = line_objects(line_spec(spool=spool))[3]
    pod = simulator_pod(sts)
    assert pod["volumes"] == [
        {"name": "config", "configMap": {"name": "line-a-config"}},
        {"name": "spool", "emptyDir": {"sizeLimit": "1Gi"}},
    ]
    assert containers(sts)[0]["volumeMounts"] == [
        {"name": "config", "mountPath": "/etc/dynoline", "readOnly": True},
        {"name": "spool", "mountPath": "/var/lib/dynoline/spool"},
    ]
    assert pod["securityContext"] == POD_SECURITY
    assert "volumeClaimTemplates" not in sts["spec"]
    assert "persistentVolumeClaimRetentionPolicy" not in sts["spec"]


def test_the_empty_dir_takes_its_size_limit() -> None:
    pod = simulator_pod(line_objects(line_spec(spool={"sizeLimit": "4Gi"}))[3])
    assert pod["volumes"][1] == {"name": "spool", "emptyDir": {"sizeLimit": "4Gi"}}


def test_a_claim_template_gives_every_shard_its_own_claim() -> None:
    sts = line_objects(line_spec(spool={"volumeClaimTemplate": CLAIM}))[3]
    assert sts["spec"]["volumeClaimTemplates"] == [
        {
            "metadata": {
                "name": "spool",
                "labels": {
                    "backup.example/tier": "gold",
                    "app.kubernetes.io/name": "dynoline",
                    "app.kubernetes.io/instance": "line-a",
                    "app.kubernetes.io/component": "simulator",
                    "app.kubernetes.io/managed-by": "dynoline-operator",
                    "dynoline.dev/line": "line-a",
                },
                "annotations": {"note.example/owner": "lab 3"},
            },
            "spec": {
                "accessModes": ["ReadWriteOnce"],
                "resources": {"requests": {"storage": "2Gi"}},
                "storageClassName": "fast-ssd",
            },
        }
    ]
    assert sts["spec"]["persistentVolumeClaimRetentionPolicy"] == {
        "whenDeleted": "Delete",
        "whenScaled": "Retain",
    }
    pod = simulator_pod(sts)
    # The claim replaces the emptyDir; the StatefulSet controller adds the `spool` volume for the template.
    assert pod["volumes"] == [{"name": "config", "configMap": {"name": "line-a-config"}}]
    assert {"name": "spool", "mountPath": "/var/lib/dynoline/spool"} in containers(sts)[0]["volumeMounts"]
    assert pod["securityContext"] == POD_SECURITY  # uid 10001 can write the claim's root


def test_a_minimal_claim_template_takes_the_defaults() -> None:
    minimal = {"spec": {"resources": {"requests": {"storage": "1Gi"}}}}
    sts = line_objects(line_spec(spool={"volumeClaimTemplate": minimal}))[3]
    assert sts["spec"]["volumeClaimTemplates"] == [
        {
            "metadata": {"name": "spool", "labels": manifests.labels("line-a", "simulator", "line-a")},
            # No storageClassName: the cluster's default StorageClass provisions it.
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
        }
    ]
    empty_class = {"spec": {**minimal["spec"], "storageClassName": ""}}
    sts = line_objects(line_spec(spool={"volumeClaimTemplate": empty_class}))[3]
    assert sts["spec"]["volumeClaimTemplates"][0]["spec"]["storageClassName"] == ""  # "" means: no class


def test_the_claim_template_is_built_the_same_every_time() -> None:
    """volumeClaimTemplates are immutable: a difference between two passes would fail every later apply."""
    spec = line_spec(spool={"volumeClaimTemplate": CLAIM})
    first, second = (line_objects(spec)[3]["spec"]["volumeClaimTemplates"][0] for _ in range(2))
    assert naming.canonical(first) == naming.canonical(second)
    first["metadata"]["labels"]["changed"] = "by-the-caller"
    first["metadata"]["annotations"]["changed"] = "by the caller"
    third = line_objects(spec)[3]["spec"]["volumeClaimTemplates"][0]
    assert third == second  # no output shares a dict with the spec or with another output
    assert spec.model_dump(by_alias=True, exclude_none=True)["spool"]["volumeClaimTemplate"] == CLAIM


def test_the_operator_labels_are_the_reserved_ones() -> None:
    from workloads.api.spool import RESERVED_LABELS

    assert sorted(RESERVED_LABELS) == sorted(manifests.labels("x", "simulator", "x"))


def test_the_spool_is_not_in_the_line_file_nor_the_config_hash() -> None:
    plain = line_objects()
    for spool in ({"sizeLimit": "8Gi"}, {"volumeClaimTemplate": CLAIM}):
        objects = line_objects(line_spec(spool=spool))
        assert objects[0]["data"] == plain[0]["data"], spool  # the simulator does not read it
        annotations = objects[3]["spec"]["template"]["metadata"]["annotations"]
        assert annotations == plain[3]["spec"]["template"]["metadata"]["annotations"], spool


def test_headless_metrics_service() -> None:
    svc = line_objects()[1]
    assert svc["spec"]["clusterIP"] == "None"
    assert svc["spec"]["ports"] == [
        {"name": "metrics", "port": 9108, "targetPort": "metrics", "protocol": "TCP"}
    ]
    assert svc["spec"]["selector"] == manifests.selector("line-a", "simulator")


def test_config_hash_rolls_pods_only_for_streaming_settings() -> None:
    def hash_of(spec: DynoLineSpec) -> str:
        sts = line_objects(spec)[3]
        value: str = sts["spec"]["template"]["metadata"]["annotations"]["dynoline.dev/config-hash"]
        return value

    base = hash_of(line_spec())
    for change in ({"units": 200}, {"rateHz": 2.0}, {"shards": 2}, {"source": {"type": "cmapss"}}):
        assert hash_of(line_spec(**change)) != base, change
    for same in ({"paused": True}, {"telemetryPolicy": "Delete"}, {"retention": "7d"}):
        assert hash_of(line_spec(**same)) == base, same


def test_migration_job_is_named_by_its_pod_template() -> None:
    spec = line_spec()
    job = manifests.migration_job(LINE, spec, SETTINGS)
    assert job["metadata"]["name"] == naming.migration_job_name("line-a", job["spec"]["template"])
    assert job["metadata"]["annotations"]["dynoline.dev/image"] == SETTINGS.image
    assert containers(job)[0]["args"] == ["db", "migrate"]
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"
    again = manifests.migration_job(LINE, line_spec(units=50, shards=5), SETTINGS)
    assert again["metadata"]["name"] == job["metadata"]["name"]  # line settings do not re-migrate
    image = manifests.migration_job(LINE, spec, WorkloadSettings(image="registry.example/dynoline:1.2.4"))
    other_db = manifests.migration_job(LINE, line_spec(database={"secretRef": {"name": "db-2"}}), SETTINGS)
    names = {job["metadata"]["name"], image["metadata"]["name"], other_db["metadata"]["name"]}
    assert len(names) == 3  # a new image or a new database: a new Job (a Job's template is immutable)
    assert len(job["metadata"]["name"]) <= 63 - (40 - len("line-a"))  # a 40-character line still fits


def test_rule_file_is_the_plain_rule() -> None:
    cm, cron = rule_objects()
    text = cm["data"]["hpc-overheat.yaml"]
    rule = Rule.model_validate(yaml.safe_load(text))
    assert rule.name == "hpc-overheat" and rule.line == "line-a"
    assert rule.severity == "critical" and rule.action == "quarantine"
    assert rule.condition.type == "sustained"
    args = containers(cron)[0]["args"]
    assert args == ["sentinel", "run", "--rules", "/etc/dynoline/rules/hpc-overheat.yaml"]
    pod = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert pod["volumes"] == [{"name": "rules", "configMap": {"name": "sentinel-hpc-overheat"}}]
    assert pod["restartPolicy"] == "Never"


def test_cronjob_schedule_suspend_and_concurrency() -> None:
    cron = rule_objects(suspend=True)[1]
    assert cron["spec"]["schedule"] == "*/5 * * * *"
    assert cron["spec"]["suspend"] is True
    assert cron["spec"]["concurrencyPolicy"] == "Forbid"
    job_labels = cron["spec"]["jobTemplate"]["metadata"]["labels"]
    assert job_labels["app.kubernetes.io/instance"] == "hpc-overheat"
    assert job_labels["app.kubernetes.io/component"] == "sentinel"


def test_pushgateway_is_passed_when_configured() -> None:
    spec = rule_spec()
    settings = WorkloadSettings(image="x:1", pushgateway="http://pushgateway:9091")
    cron = manifests.sentinel_cronjob(
        RULE, spec, settings, database=line_spec().database.secret_ref, suspend=False, config="h"
    )
    assert containers(cron)[0]["args"][-2:] == ["--pushgateway", "http://pushgateway:9091"]


def test_rule_file_loads_in_the_sentinel(tmp_path: Path) -> None:
    from workloads.sentinel.rules import load_rules

    cm = rule_objects()[0]
    (tmp_path / "hpc-overheat.yaml").write_text(cm["data"]["hpc-overheat.yaml"])
    [loaded] = load_rules(tmp_path / "hpc-overheat.yaml")
    assert loaded.rule == rule_spec().to_rule("hpc-overheat")


def test_a_rule_pack_wraps_into_sentinelrules_and_back() -> None:
    from controllers.rulepack import sentinel_rules

    rules = [
        Rule.model_validate(
            {
                "name": "t50-high",
                "line": "line-b",
                "condition": {"type": "threshold", "sensor": "T50", "op": ">", "value": 1440.0},
            }
        ),
        Rule.model_validate(
            {
                "name": "health",
                "line": "line-b",
                "severity": "critical",
                "condition": {"type": "healthIndex", "model": "fd001-health", "value": 0.8},
            }
        ),
    ]
    wrapped = sentinel_rules(rules, schedule="*/5 * * * *", line="line-a")
    assert [w["metadata"]["name"] for w in wrapped] == ["t50-high", "health"]
    for original, resource in zip(rules, wrapped, strict=True):
        spec = SentinelRuleSpec.model_validate(resource["spec"])
        assert spec.schedule == "*/5 * * * *" and spec.line_ref.name == "line-a"
        assert spec.to_rule(original.name) == original.model_copy(update={"line": "line-a"})


def test_a_rule_with_a_model_file_cannot_be_wrapped() -> None:
    from controllers.rulepack import sentinel_rules
    from workloads.errors import DynolineError

    rule = Rule.model_validate(
        {
            "name": "h",
            "line": "a",
            "condition": {"type": "healthIndex", "model": "models/mine.json", "value": 1},
        }
    )
    with pytest.raises(DynolineError, match=r"rule 'h': .*model must be one shipped with dynoline"):
        sentinel_rules([rule], schedule="*/1 * * * *")


def test_the_shipped_examples_are_valid() -> None:
    from controllers.rulepack import command, sentinel_rules, to_yaml
    from workloads.sentinel.rules import load_rules

    examples = Path(__file__).resolve().parents[2] / "examples"
    docs = [
        d for f in sorted((examples / "k8s").glob("*.yaml")) for d in yaml.safe_load_all(f.read_text()) if d
    ]
    kinds = sorted(d["kind"] for d in docs)
    assert kinds.count("DynoLine") == 1 and kinds.count("Secret") == 1 and kinds.count("SentinelRule") >= 5
    for doc in docs:
        if doc["kind"] == "DynoLine":
            DynoLineSpec.model_validate(doc["spec"])
        elif doc["kind"] == "SentinelRule":
            SentinelRuleSpec.model_validate(doc["spec"]).to_rule(doc["metadata"]["name"])
    spool = [
        yaml.safe_load(f.read_text()) for f in sorted((examples / "k8s" / "persistent-spool").glob("*.yaml"))
    ]
    assert [d["kind"] for d in spool] == ["DynoLine"]
    persistent = DynoLineSpec.model_validate(spool[0]["spec"])
    assert persistent.spool is not None and persistent.spool.volume_claim_template is not None
    assert spool[0]["metadata"]["name"] not in {
        d["metadata"]["name"] for d in docs if d["kind"] == "DynoLine"
    }
    pack = examples / "rules"
    if pack.is_dir():  # the default rule pack: the SentinelRules example must be its current wrapping
        expected = to_yaml(
            sentinel_rules([r.rule for r in load_rules(pack)], schedule="*/1 * * * *", line="line-a"),
            generated_by=command("examples/rules", "line-a", "*/1 * * * *"),
        )
        shipped = (examples / "k8s" / "sentinel-rules.yaml").read_text()
        assert shipped == expected, "regenerate: dynoline sentinelrules --rules examples/rules --line line-a"
