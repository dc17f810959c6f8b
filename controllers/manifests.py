"""Pure builders: a DynoLine or SentinelRule in, the Kubernetes objects the operator applies out.

Nothing here talks to the API. Every object carries the standard labels (Kubernetes' recommended
`app.kubernetes.io/*` ones and `dynoline.dev/line`, see `labels()`), an owner reference to its custom
resource (so garbage collection removes it with the resource) and only the fields the operator means to
own (they are applied with server-side apply, so a hand edit of one of these fields is put back and fields
set by others are left alone). The database URL never appears: pods read it from the referenced Secret
(`secretKeyRef`) into `DYNOLINE_DATABASE_URL`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml

from controllers import spool_volume
from controllers.naming import (
    config_hash,
    config_name,
    migration_job_name,
    rule_file_name,
    rule_object_name,
)
from controllers.pods import WorkloadSettings, container_security, pod_security, pod_spec, resources_for
from controllers.spool_volume import SPOOL_DIR, SPOOL_VOLUME
from workloads.api.groupversion import API_VERSION, qualified
from workloads.api.line import DynoLineSpec, SecretKeyRef
from workloads.api.rule import SentinelRuleSpec

Manifest = dict[str, Any]

MANAGED_BY = "dynoline-operator"
APP = "dynoline"
LABEL_NAME = "app.kubernetes.io/name"
LABEL_INSTANCE = "app.kubernetes.io/instance"
LABEL_COMPONENT = "app.kubernetes.io/component"
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
LABEL_LINE = qualified("line")
CONFIG_HASH = qualified("config-hash")
IMAGE_ANNOTATION = qualified("image")

SIMULATOR = "simulator"
MIGRATE = "migrate"
SENTINEL = "sentinel"

METRICS_PORT = 9108
CONFIG_DIR = "/etc/dynoline"
LINE_FILE = "line.yaml"
RULES_DIR = "/etc/dynoline/rules"
DATABASE_ENV = "DYNOLINE_DATABASE_URL"


@dataclass(frozen=True)
class Owner:
    """The custom resource that owns what is built (from its metadata)."""

    kind: str
    name: str
    namespace: str
    uid: str

    def reference(self) -> dict[str, Any]:
        return {
            "apiVersion": API_VERSION,
            "kind": self.kind,
            "name": self.name,
            "uid": self.uid,
            "controller": True,
            "blockOwnerDeletion": True,
        }


def labels(instance: str, component: str, line: str) -> dict[str, str]:
    return {
        LABEL_NAME: APP,
        LABEL_INSTANCE: instance,
        LABEL_COMPONENT: component,
        LABEL_MANAGED_BY: MANAGED_BY,
        LABEL_LINE: line,
    }


def selector(instance: str, component: str) -> dict[str, str]:
    """The immutable subset of the labels that selects a workload's pods."""
    return {LABEL_NAME: APP, LABEL_INSTANCE: instance, LABEL_COMPONENT: component}


def _meta(owner: Owner, name: str, component: str, line: str) -> dict[str, Any]:
    return {
        "name": name,
        "namespace": owner.namespace,
        "labels": labels(owner.name, component, line),
        "ownerReferences": [owner.reference()],
    }


def _database_env(ref: SecretKeyRef) -> dict[str, Any]:
    return {"name": DATABASE_ENV, "valueFrom": {"secretKeyRef": {"name": ref.name, "key": ref.key}}}


# ------------------------------------------------------------------------------------------------ DynoLine


def line_file(name: str, spec: DynoLineSpec) -> str:
    """The simulator's `--config` file: what the shards stream. Not the database reference (pods get a URL),
    not `paused` (no pods run then), not `telemetryPolicy` (the operator's business), not `spool` (it is
    the pod's volume, not what the shard streams) and not `resources` (the pod template's, which rolls the
    shards itself): changing those must not restart the shards through the config hash."""
    body = spec.model_dump(
        mode="json", by_alias=True, exclude={"database", "paused", "telemetry_policy", "spool", "resources"}
    )
    document = {"line": name, "spec": body, "simulator": {"spool": SPOOL_DIR + "/"}}
    return yaml.safe_dump(document, sort_keys=True)


def line_config_map(owner: Owner, spec: DynoLineSpec) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _meta(owner, config_name(owner.name), SIMULATOR, owner.name),
        "data": {LINE_FILE: line_file(owner.name, spec)},
    }


def line_service(owner: Owner) -> Manifest:
    """Headless: one DNS name per shard pod for scraping, and the StatefulSet's governing Service."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _meta(owner, owner.name, SIMULATOR, owner.name),
        "spec": {
            "clusterIP": "None",
            "selector": selector(owner.name, SIMULATOR),
            "publishNotReadyAddresses": True,
            "ports": [{"name": "metrics", "port": METRICS_PORT, "targetPort": "metrics", "protocol": "TCP"}],
        },
    }


def migration_job(owner: Owner, spec: DynoLineSpec, settings: WorkloadSettings) -> Manifest:
    container = {
        "name": MIGRATE,
        "image": settings.image,
        "imagePullPolicy": settings.image_pull_policy,
        "args": ["db", "migrate"],
        "env": [_database_env(spec.database.secret_ref)],
        "securityContext": container_security(),
        "resources": resources_for(MIGRATE, settings.migration),
    }
    template = {
        "metadata": {"labels": labels(owner.name, MIGRATE, owner.name)},
        "spec": pod_spec(settings, [container], placement=settings.migration, restartPolicy="Never"),
    }
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            **_meta(owner, migration_job_name(owner.name, template), MIGRATE, owner.name),
            "annotations": {IMAGE_ANNOTATION: settings.image},
        },
        "spec": {"backoffLimit": 4, "activeDeadlineSeconds": 900, "template": template},
    }


def simulator_statefulset(
    owner: Owner, spec: DynoLineSpec, settings: WorkloadSettings, *, image: str, replicas: int, config: str
) -> Manifest:
    """Pod ordinal = shard: `--shard` gets the pod name (`<line>-3` → shard 3) from the downward API."""
    container = {
        "name": SIMULATOR,
        "image": image,
        "imagePullPolicy": settings.image_pull_policy,
        "args": ["simulate", "--config", f"{CONFIG_DIR}/{LINE_FILE}", "--shard", "$(DYNOLINE_SHARD)"],
        "env": [
            {"name": "DYNOLINE_SHARD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            _database_env(spec.database.secret_ref),
            {"name": "DYNOLINE_SPOOL", "value": SPOOL_DIR + "/"},
        ],
        "ports": [{"name": "metrics", "containerPort": METRICS_PORT, "protocol": "TCP"}],
        "readinessProbe": {"httpGet": {"path": "/readyz", "port": "metrics"}, "periodSeconds": 5},
        "livenessProbe": {
            "httpGet": {"path": "/healthz", "port": "metrics"},
            "periodSeconds": 10,
            "failureThreshold": 6,
        },
        # The line's spec.resources, else the operator's (chart workloads.simulator.resources).
        "resources": (
            spec.resources.model_dump(mode="json", by_alias=True, exclude_none=True)
            if spec.resources is not None
            else resources_for(SIMULATOR, settings.simulator)
        ),
        "securityContext": container_security(),
        "volumeMounts": [
            {"name": "config", "mountPath": CONFIG_DIR, "readOnly": True},
            {"name": SPOOL_VOLUME, "mountPath": SPOOL_DIR},
        ],
    }
    pod_labels = labels(owner.name, SIMULATOR, owner.name)
    claim = spec.spool.volume_claim_template if spec.spool else None
    volumes: list[dict[str, Any]] = [{"name": "config", "configMap": {"name": config_name(owner.name)}}]
    if claim is None:
        volumes.append(spool_volume.empty_dir(spec.spool))
    sts_spec: dict[str, Any] = {
        "replicas": replicas,
        "serviceName": owner.name,
        "podManagementPolicy": "Parallel",  # shards are independent; start and stop them together
        "selector": {"matchLabels": selector(owner.name, SIMULATOR)},
        "template": {
            "metadata": {
                "labels": pod_labels,
                # A settings change changes the hash, so the pods roll to pick up the new file.
                "annotations": {CONFIG_HASH: config},
            },
            "spec": pod_spec(
                settings,
                [container],
                # Lets uid 10001 write a claim's root; OnRootMismatch skips the recursive chown on restarts.
                security={**pod_security(), "fsGroupChangePolicy": "OnRootMismatch"},
                placement=settings.simulator,
                # SIGTERM flushes the batch and replays the spool (≤ 20 s) before exiting.
                terminationGracePeriodSeconds=40,
                volumes=volumes,
            ),
        },
    }
    if claim is not None:
        sts_spec["volumeClaimTemplates"] = [
            spool_volume.claim_template(claim, labels(owner.name, SIMULATOR, owner.name))
        ]
        # Deleting the line deletes its claims; scaling down (fewer shards, paused) keeps a shard's
        # unreplayed spool for when the shard comes back.
        sts_spec["persistentVolumeClaimRetentionPolicy"] = {"whenDeleted": "Delete", "whenScaled": "Retain"}
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": _meta(owner, owner.name, SIMULATOR, owner.name),
        "spec": sts_spec,
    }


@dataclass(frozen=True)
class LineChildren:
    """Every object of one DynoLine, and the hash of the settings file that rolls its shards."""

    config_hash: str
    config_map: Manifest
    service: Manifest
    migration_job: Manifest
    statefulset: Manifest

    def manifests(self) -> list[Manifest]:
        return [self.config_map, self.service, self.migration_job, self.statefulset]


def line_children(
    owner: Owner, spec: DynoLineSpec, settings: WorkloadSettings, *, image: str, replicas: int
) -> LineChildren:
    """`image` and `replicas` are the reconciler's plan for the shards (the newest migrated image)."""
    config_map = line_config_map(owner, spec)
    config = config_hash(config_map["data"][LINE_FILE])
    return LineChildren(
        config_hash=config,
        config_map=config_map,
        service=line_service(owner),
        migration_job=migration_job(owner, spec, settings),
        statefulset=simulator_statefulset(
            owner, spec, settings, image=image, replicas=replicas, config=config
        ),
    )


# ------------------------------------------------------------------------------------------- SentinelRule


def rule_file(name: str, spec: SentinelRuleSpec) -> str:
    """What `dynoline sentinel run --rules FILE` reads: the plain rule, its line from `lineRef`."""
    rule = spec.to_rule(name)
    return yaml.safe_dump(rule.model_dump(mode="json", by_alias=True, exclude_none=True), sort_keys=True)


def rule_config_map(owner: Owner, spec: SentinelRuleSpec) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _meta(owner, rule_object_name(owner.name), SENTINEL, spec.line_ref.name),
        "data": {rule_file_name(owner.name): rule_file(owner.name, spec)},
    }


def sentinel_cronjob(
    owner: Owner,
    spec: SentinelRuleSpec,
    settings: WorkloadSettings,
    *,
    database: SecretKeyRef,
    suspend: bool,
    config: str,
) -> Manifest:
    args = ["sentinel", "run", "--rules", f"{RULES_DIR}/{rule_file_name(owner.name)}"]
    if settings.pushgateway:
        args += ["--pushgateway", settings.pushgateway]
    container = {
        "name": SENTINEL,
        "image": settings.image,
        "imagePullPolicy": settings.image_pull_policy,
        "args": args,
        "env": [
            _database_env(database),
            # The namespace label of its Pushgateway group (`sentinel run --push-namespace`).
            {"name": "DYNOLINE_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
        ],
        "resources": resources_for(SENTINEL, settings.sentinel),
        "securityContext": container_security(),
        "volumeMounts": [{"name": "rules", "mountPath": RULES_DIR, "readOnly": True}],
    }
    job_labels = labels(owner.name, SENTINEL, spec.line_ref.name)
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": _meta(owner, rule_object_name(owner.name), SENTINEL, spec.line_ref.name),
        "spec": {
            "schedule": spec.schedule,
            "suspend": suspend,
            "concurrencyPolicy": "Forbid",  # a slow pass is not raced by the next one
            "startingDeadlineSeconds": 120,
            "successfulJobsHistoryLimit": 3,
            "failedJobsHistoryLimit": 3,
            "jobTemplate": {
                "metadata": {"labels": job_labels},
                "spec": {
                    "backoffLimit": 0,  # the next scheduled pass is the retry
                    "activeDeadlineSeconds": 600,
                    "template": {
                        "metadata": {"labels": job_labels, "annotations": {CONFIG_HASH: config}},
                        "spec": pod_spec(
                            settings,
                            [container],
                            placement=settings.sentinel,
                            restartPolicy="Never",
                            volumes=[{"name": "rules", "configMap": {"name": rule_object_name(owner.name)}}],
                        ),
                    },
                },
            },
        },
    }
