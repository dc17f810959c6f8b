"""Pure builders: a DynoLine or SentinelRule in, the Kubernetes objects the operator applies out.

Nothing here talks to the API. Every object carries the standard labels (ARCHITECTURE.md), an owner
reference to its custom resource (so garbage collection removes it with the resource) and only the fields
the operator means to own (they are applied with server-side apply, so a hand edit of one of these fields
is put back and fields set by others are left alone). The database URL never appears: pods read it from
the referenced Secret (`secretKeyRef`) into `DYNOLINE_DATABASE_URL`.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

import yaml

from controllers.crdgen import API_VERSION
from workloads.api.line import DynoLineSpec, SecretKeyRef
from workloads.api.rule import SentinelRuleSpec
from workloads.api.spool import DEFAULT_EMPTY_DIR_SIZE, SpoolSpec, VolumeClaimTemplate

Manifest = dict[str, Any]

MANAGED_BY = "dynoline-operator"
APP = "dynoline"
LABEL_NAME = "app.kubernetes.io/name"
LABEL_INSTANCE = "app.kubernetes.io/instance"
LABEL_COMPONENT = "app.kubernetes.io/component"
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
LABEL_LINE = "dynoline.dev/line"
CONFIG_HASH = "dynoline.dev/config-hash"
IMAGE_ANNOTATION = "dynoline.dev/image"

SIMULATOR = "simulator"
MIGRATE = "migrate"
SENTINEL = "sentinel"

METRICS_PORT = 9108
CONFIG_DIR = "/etc/dynoline"
LINE_FILE = "line.yaml"
RULES_DIR = "/etc/dynoline/rules"
SPOOL_DIR = "/var/lib/dynoline/spool"
SPOOL_VOLUME = "spool"
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


DEFAULT_RESOURCES: dict[str, dict[str, Any]] = {
    SIMULATOR: {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "512Mi"}},
    MIGRATE: {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"memory": "256Mi"}},
    SENTINEL: {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"memory": "256Mi"}},
}


@dataclass(frozen=True)
class PodPlacement:
    """Resources and scheduling of one kind of workload pod (the chart's `workloads.<kind>` values)."""

    resources: dict[str, Any] | None = None  # None: DEFAULT_RESOURCES of the kind
    node_selector: dict[str, str] = field(default_factory=dict)
    tolerations: tuple[dict[str, Any], ...] = ()
    affinity: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class WorkloadSettings:
    """What the operator's own configuration contributes to every pod (see controllers/settings.py)."""

    image: str
    image_pull_policy: str = "IfNotPresent"
    service_account: str | None = None
    pushgateway: str | None = None
    image_pull_secrets: tuple[str, ...] = ()
    simulator: PodPlacement = field(default_factory=PodPlacement)
    migration: PodPlacement = field(default_factory=PodPlacement)
    sentinel: PodPlacement = field(default_factory=PodPlacement)


def short_hash(text: str, length: int = 10) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:length]


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


def _pod_security() -> dict[str, Any]:
    return {
        "runAsNonRoot": True,
        "runAsUser": 10001,
        "runAsGroup": 10001,
        "fsGroup": 10001,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def _container_security() -> dict[str, Any]:
    return {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }


def _resources(kind: str, placement: PodPlacement) -> dict[str, Any]:
    return dict(DEFAULT_RESOURCES[kind] if placement.resources is None else placement.resources)


def _pod_spec(
    settings: WorkloadSettings,
    containers: list[dict[str, Any]],
    security: dict[str, Any] | None = None,
    placement: PodPlacement | None = None,
    **extra: Any,
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "automountServiceAccountToken": False,  # the workloads never talk to the Kubernetes API
        "securityContext": security or _pod_security(),
        "containers": containers,
        **extra,
    }
    if settings.service_account:
        spec["serviceAccountName"] = settings.service_account
    # Only what is set: an unchanged default keeps the pod template (and the migration Job's name) as is.
    if settings.image_pull_secrets:
        spec["imagePullSecrets"] = [{"name": name} for name in settings.image_pull_secrets]
    if placement is not None:
        if placement.node_selector:
            spec["nodeSelector"] = dict(placement.node_selector)
        if placement.tolerations:
            spec["tolerations"] = [dict(t) for t in placement.tolerations]
        if placement.affinity:
            spec["affinity"] = dict(placement.affinity)
    return spec


# ------------------------------------------------------------------------------------------------ DynoLine


def config_name(line: str) -> str:
    return f"{line}-config"


def migration_job_name(line: str, template: dict[str, Any]) -> str:
    """One Job per (line, pod template): a new image or database runs the migrations again, an unchanged
    one never does; and a Job's template is immutable, so a changed one must be a new Job."""
    return f"{line}-migrate-{short_hash(canonical(template), 8)}"


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


def config_hash(text: str) -> str:
    return short_hash(text, 16)


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
        "securityContext": _container_security(),
        "resources": _resources(MIGRATE, settings.migration),
    }
    template = {
        "metadata": {"labels": labels(owner.name, MIGRATE, owner.name)},
        "spec": _pod_spec(settings, [container], placement=settings.migration, restartPolicy="Never"),
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
            else _resources(SIMULATOR, settings.simulator)
        ),
        "securityContext": _container_security(),
        "volumeMounts": [
            {"name": "config", "mountPath": CONFIG_DIR, "readOnly": True},
            {"name": SPOOL_VOLUME, "mountPath": SPOOL_DIR},
        ],
    }
    pod_labels = labels(owner.name, SIMULATOR, owner.name)
    claim = spec.spool.volume_claim_template if spec.spool else None
    volumes: list[dict[str, Any]] = [{"name": "config", "configMap": {"name": config_name(owner.name)}}]
    if claim is None:
        volumes.append(_spool_empty_dir(spec.spool))
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
            "spec": _pod_spec(
                settings,
                [container],
                # Lets uid 10001 write a claim's root; OnRootMismatch skips the recursive chown on restarts.
                security={**_pod_security(), "fsGroupChangePolicy": "OnRootMismatch"},
                placement=settings.simulator,
                # SIGTERM flushes the batch and replays the spool (≤ 20 s) before exiting.
                terminationGracePeriodSeconds=40,
                volumes=volumes,
            ),
        },
    }
    if claim is not None:
        sts_spec["volumeClaimTemplates"] = [spool_claim_template(owner, claim)]
        # Deleting the line deletes its claims; scaling down (fewer shards, paused) keeps a shard's
        # unreplayed spool for when the shard comes back.
        sts_spec["persistentVolumeClaimRetentionPolicy"] = {"whenDeleted": "Delete", "whenScaled": "Retain"}
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": _meta(owner, owner.name, SIMULATOR, owner.name),
        "spec": sts_spec,
    }


def _spool_empty_dir(spool: SpoolSpec | None) -> dict[str, Any]:
    """Survives container restarts and outages while the pod lives; lost with the pod (docs/spool.md)."""
    size = spool.size_limit if spool and spool.size_limit else DEFAULT_EMPTY_DIR_SIZE
    return {"name": SPOOL_VOLUME, "emptyDir": {"sizeLimit": size}}


def spool_claim_template(owner: Owner, claim: VolumeClaimTemplate) -> Manifest:
    """The StatefulSet's claim template: the StatefulSet controller makes `spool-<line>-<ordinal>` from it.

    StatefulSet volumeClaimTemplates are immutable, so for a given DynoLine this must build the same
    object in every operator version (the DynoLine CRD refuses changes to the template itself): the
    standard labels over the user's, the user's annotations, and the claim spec as given.
    """
    meta = claim.metadata
    metadata: dict[str, Any] = {
        "name": SPOOL_VOLUME,
        "labels": {
            **(meta.labels if meta and meta.labels else {}),
            **labels(owner.name, SIMULATOR, owner.name),
        },
    }
    if meta and meta.annotations:
        metadata["annotations"] = dict(meta.annotations)
    claim_spec: dict[str, Any] = {
        "accessModes": list(claim.spec.access_modes),
        "resources": {"requests": {"storage": claim.spec.resources.requests.storage}},
    }
    if claim.spec.storage_class_name is not None:
        claim_spec["storageClassName"] = claim.spec.storage_class_name
    return {"metadata": metadata, "spec": claim_spec}


# ------------------------------------------------------------------------------------------- SentinelRule


def rule_object_name(rule: str) -> str:
    """The CronJob's and the ConfigMap's name (CronJob names must leave room for Job suffixes)."""
    return f"sentinel-{rule}"


def rule_file_name(rule: str) -> str:
    return f"{rule}.yaml"


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
        "resources": _resources(SENTINEL, settings.sentinel),
        "securityContext": _container_security(),
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
                        "spec": _pod_spec(
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


def canonical(manifest: Manifest) -> str:
    """Stable text of a manifest, for hashing and comparing."""
    return json.dumps(manifest, sort_keys=True, separators=(",", ":"))
