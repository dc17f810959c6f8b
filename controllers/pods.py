"""What every workload pod the operator makes has in common: its security context, and what the operator's
own configuration (the chart's `workloads.*` values, controllers/settings.py) puts on it: image, pull
secrets, service account, resources and scheduling. Pure, like controllers/manifests.py, its one user."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

DEFAULT_RESOURCES: dict[str, dict[str, Any]] = {
    "simulator": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "512Mi"}},
    "migrate": {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"memory": "256Mi"}},
    "sentinel": {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"memory": "256Mi"}},
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


def pod_security() -> dict[str, Any]:
    return {
        "runAsNonRoot": True,
        "runAsUser": 10001,
        "runAsGroup": 10001,
        "fsGroup": 10001,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def container_security() -> dict[str, Any]:
    return {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }


def resources_for(kind: str, placement: PodPlacement) -> dict[str, Any]:
    return dict(DEFAULT_RESOURCES[kind] if placement.resources is None else placement.resources)


def pod_spec(
    settings: WorkloadSettings,
    containers: list[dict[str, Any]],
    security: dict[str, Any] | None = None,
    placement: PodPlacement | None = None,
    **extra: Any,
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "automountServiceAccountToken": False,  # the workloads never talk to the Kubernetes API
        "securityContext": security or pod_security(),
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
