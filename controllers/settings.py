"""Operator configuration (environment variables, as the Helm chart sets them) and kopf's settings."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import kopf

from controllers.manifests import LABEL_MANAGED_BY, MANAGED_BY
from controllers.pods import PodPlacement, WorkloadSettings
from workloads import __version__
from workloads.api.groupversion import GROUP, qualified
from workloads.errors import DynolineError

# What `docker build -t dynoline:<version> .` tags (nothing is published); the chart sets DYNOLINE_IMAGE.
DEFAULT_IMAGE = f"dynoline:{__version__}"
WORKLOAD_PODS_ENV = "DYNOLINE_WORKLOAD_PODS"
WORKLOAD_KINDS = ("simulator", "migration", "sentinel")
CHILD_RESOURCES: tuple[tuple[str, str], ...] = (
    ("apps", "statefulsets"),
    ("batch", "jobs"),
    ("batch", "cronjobs"),
    ("", "configmaps"),
    ("", "services"),
)


@dataclass(frozen=True)
class OperatorConfig:
    workload: WorkloadSettings = field(default_factory=lambda: WorkloadSettings(image=DEFAULT_IMAGE))
    namespaces: tuple[str, ...] = ()  # empty: every namespace
    workers: int = 8
    resync_seconds: float = 120.0  # every object is reconciled at least this often (drift, store status)
    missing_ref_retry_seconds: float = 30.0  # a missing Secret/DynoLine is looked for again this often
    store_queries: bool = True  # read quarantined units and open alerts from the store
    store_ttl_seconds: float = 30.0
    metrics_port: int = 9110
    liveness_endpoint: str = "http://0.0.0.0:8080/healthz"
    watch_server_timeout: float = 270.0
    watch_client_timeout: float = 300.0


def _number(env: Mapping[str, str], name: str, default: float, low: float, high: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise DynolineError(f"${name}={raw!r}: expected a number") from None
    if not low <= value <= high:
        raise DynolineError(f"${name}={raw!r}: must be between {low:g} and {high:g}")
    return value


def _flag(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise DynolineError(f"${name}={raw!r}: expected true or false")


def _placement(kind: str, raw: Any) -> PodPlacement:
    where = f"${WORKLOAD_PODS_ENV}: {kind}"
    if not isinstance(raw, dict):
        raise DynolineError(f"{where} must be an object, got {type(raw).__name__}")
    unknown = sorted(set(raw) - {"resources", "nodeSelector", "tolerations", "affinity"})
    if unknown:
        raise DynolineError(f"{where}: unknown field(s) {', '.join(unknown)}")
    resources = raw.get("resources")
    if resources is not None and not isinstance(resources, dict):
        raise DynolineError(f"{where}.resources must be an object")
    selector = {} if raw.get("nodeSelector") is None else raw["nodeSelector"]
    if not isinstance(selector, dict) or not all(isinstance(v, str) for v in selector.values()):
        raise DynolineError(f"{where}.nodeSelector must map label names to strings")
    tolerations = [] if raw.get("tolerations") is None else raw["tolerations"]
    if not isinstance(tolerations, list) or not all(isinstance(t, dict) for t in tolerations):
        raise DynolineError(f"{where}.tolerations must be a list of objects")
    affinity = {} if raw.get("affinity") is None else raw["affinity"]
    if not isinstance(affinity, dict):
        raise DynolineError(f"{where}.affinity must be an object")
    return PodPlacement(
        resources=resources, node_selector=selector, tolerations=tuple(tolerations), affinity=affinity
    )


def workload_pods(text: str) -> dict[str, PodPlacement]:
    """The chart's `workloads` values (JSON): resources and scheduling per kind of workload pod."""
    if not text.strip():
        return {}
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DynolineError(f"${WORKLOAD_PODS_ENV} is not JSON: {exc.msg} at character {exc.pos}") from None
    if not isinstance(raw, dict):
        raise DynolineError(f"${WORKLOAD_PODS_ENV} must be a JSON object of {', '.join(WORKLOAD_KINDS)}")
    unknown = sorted(set(raw) - set(WORKLOAD_KINDS))
    if unknown:
        raise DynolineError(
            f"${WORKLOAD_PODS_ENV}: unknown workload(s) {', '.join(unknown)}"
            f" (expected {', '.join(WORKLOAD_KINDS)})"
        )
    return {kind: _placement(kind, value) for kind, value in raw.items()}


def from_env(env: Mapping[str, str] | None = None) -> OperatorConfig:
    env = os.environ if env is None else env
    policy = env.get("DYNOLINE_IMAGE_PULL_POLICY", "IfNotPresent").strip() or "IfNotPresent"
    if policy not in ("Always", "IfNotPresent", "Never"):
        raise DynolineError(f"$DYNOLINE_IMAGE_PULL_POLICY={policy!r}: expected Always, IfNotPresent or Never")
    namespaces = tuple(n.strip() for n in env.get("DYNOLINE_NAMESPACES", "").split(",") if n.strip())
    server_timeout = _number(env, "DYNOLINE_WATCH_SERVER_TIMEOUT", 270.0, 10, 3600)
    pods = workload_pods(env.get(WORKLOAD_PODS_ENV, ""))
    pull_secrets = tuple(
        n.strip() for n in env.get("DYNOLINE_IMAGE_PULL_SECRETS", "").split(",") if n.strip()
    )
    return OperatorConfig(
        workload=WorkloadSettings(
            image=env.get("DYNOLINE_IMAGE", "").strip() or DEFAULT_IMAGE,
            image_pull_policy=policy,
            service_account=env.get("DYNOLINE_WORKLOAD_SERVICE_ACCOUNT", "").strip() or None,
            pushgateway=env.get("DYNOLINE_PUSHGATEWAY", "").strip() or None,
            image_pull_secrets=pull_secrets,
            simulator=pods.get("simulator", PodPlacement()),
            migration=pods.get("migration", PodPlacement()),
            sentinel=pods.get("sentinel", PodPlacement()),
        ),
        namespaces=namespaces,
        workers=int(_number(env, "DYNOLINE_OPERATOR_WORKERS", 8, 1, 64)),
        resync_seconds=_number(env, "DYNOLINE_RESYNC_SECONDS", 120.0, 5, 86400),
        missing_ref_retry_seconds=_number(env, "DYNOLINE_MISSING_REF_RETRY_SECONDS", 30.0, 1, 3600),
        store_queries=_flag(env, "DYNOLINE_STORE_QUERIES", True),
        store_ttl_seconds=_number(env, "DYNOLINE_STORE_TTL_SECONDS", 30.0, 1, 3600),
        metrics_port=int(_number(env, "DYNOLINE_METRICS_PORT", 9110, 0, 65535)),
        liveness_endpoint=env.get("DYNOLINE_LIVENESS_ENDPOINT", "").strip() or "http://0.0.0.0:8080/healthz",
        watch_server_timeout=server_timeout,
        # The client gives the server 30 s more than it asked for before declaring the stream dead.
        watch_client_timeout=server_timeout + 30.0,
    )


def configure(settings: kopf.OperatorSettings, config: OperatorConfig) -> None:
    """kopf's knobs, each set on purpose."""
    # One replica, no peering: kopf's peering pauses equals rather than electing a leader, so a standby
    # would buy nothing; the Deployment uses the Recreate strategy so two never overlap
    # (charts/dynoline/README.md, "One replica, no standby").
    settings.peering.standalone = True
    # Watch only the namespaces/resources we name; no cluster-wide CRD or namespace scanning (and RBAC).
    settings.scanning.disabled = True
    # A watch without timeouts can hang silently forever on a half-open connection (kopf's most reported
    # failure): ask the server to end each stream, and give up client-side shortly after.
    # kopf passes this through as `timeoutSeconds`, which the API server parses as an integer.
    settings.watching.server_timeout = int(config.watch_server_timeout)
    settings.watching.client_timeout = config.watch_client_timeout
    settings.watching.connect_timeout = 10.0
    settings.watching.reconnect_backoff = 1.0
    settings.networking.request_timeout = 30.0
    settings.networking.connect_timeout = 10.0
    # Only our own children: server-side label selectors keep the watch streams small.
    for group, plural in CHILD_RESOURCES:
        settings.watching.label_selectors[(group, plural) if group else plural] = (
            f"{LABEL_MANAGED_BY}={MANAGED_BY}"
        )
    # The operator posts its own Events on condition changes; kopf's would mirror every log line.
    settings.posting.level = logging.WARNING
    settings.posting.reporting_component = MANAGED_BY
    # No handler needs kopf's bookkeeping; keep it under our domain if kopf ever writes any.
    settings.persistence.finalizer = qualified("kopf-finalizer")
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=GROUP, key="last-handled-configuration"
    )
