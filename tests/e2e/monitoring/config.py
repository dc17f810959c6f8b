"""The monitoring harness's files, built from inputs only: no process, no network, no disk.

- the cluster access the harness's pod discovery uses, taken from the admin kubeconfig;
- the scrape targets: the operator pod and every simulator pod, from the API's pod list (file_sd);
- prometheus.yml: those targets, the Pushgateway with `honor_labels` (the sentinel CronJobs push their own
  `job`/`line`/`rule` labels), Alertmanager;
- the alerting rules: `spec.groups` of the PrometheusRule that `helm template` renders, unchanged;
- alertmanager.yml: one receiver that sends nowhere (the suite reads alerts from the API).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# The operator's label on what it makes (controllers/manifests.py).
SIMULATOR_MANAGED_BY = "dynoline-operator"
METRICS_PORT_NAME = "metrics"


class ConfigError(ValueError):
    """An input the harness cannot build its files from; the message says which and why."""


@dataclass(frozen=True)
class KubeAccess:
    """How Prometheus reaches the API server: its URL and the PEM material (or a token) to present."""

    server: str
    ca_pem: bytes | None = None
    cert_pem: bytes | None = None
    key_pem: bytes | None = None
    token: str | None = None
    insecure: bool = False


def _named(items: Any, name: str, what: str, source: str) -> dict[str, Any]:
    for item in items or []:
        if isinstance(item, dict) and item.get("name") == name and isinstance(item.get(what), dict):
            found: dict[str, Any] = item[what]
            return found
    raise ConfigError(f"{source}: no {what} named {name!r}")


def _pem(entry: Mapping[str, Any], key: str, base: Path, source: str) -> bytes | None:
    """`<key>-data` (base64) or `<key>` (a path, relative to the kubeconfig's directory)."""
    data = entry.get(f"{key}-data")
    if data:
        try:
            return base64.b64decode(str(data), validate=True)
        except (binascii.Error, ValueError):
            raise ConfigError(f"{source}: {key}-data is not valid base64") from None
    path = entry.get(key)
    if path:
        file = Path(str(path))
        file = file if file.is_absolute() else base / file
        try:
            return file.read_bytes()
        except OSError as exc:
            raise ConfigError(f"{source}: {key} {file}: {exc.strerror}") from None
    return None


def kube_access(kubeconfig: Mapping[str, Any], *, base: Path, source: str) -> KubeAccess:
    """The current context's server and credentials (file references resolve against `base`)."""
    name = kubeconfig.get("current-context")
    if not name:
        raise ConfigError(f"{source}: no current-context")
    context = _named(kubeconfig.get("contexts"), str(name), "context", source)
    cluster = _named(kubeconfig.get("clusters"), str(context.get("cluster")), "cluster", source)
    user = _named(kubeconfig.get("users"), str(context.get("user")), "user", source)
    server = str(cluster.get("server") or "")
    if not server.startswith("https://"):
        raise ConfigError(f"{source}: cluster server {server!r} is not an https:// URL")
    access = KubeAccess(
        server=server,
        ca_pem=_pem(cluster, "certificate-authority", base, source),
        cert_pem=_pem(user, "client-certificate", base, source),
        key_pem=_pem(user, "client-key", base, source),
        token=str(user["token"]) if user.get("token") else None,
        insecure=bool(cluster.get("insecure-skip-tls-verify")),
    )
    if (access.cert_pem is None) != (access.key_pem is None):
        raise ConfigError(f"{source}: user has a client certificate or key without the other")
    if access.cert_pem is None and access.token is None:
        raise ConfigError(
            f"{source}: user {context.get('user')!r} has neither a client certificate nor a token"
            " (exec and auth-provider plugins are not supported)"
        )
    if access.ca_pem is None and not access.insecure:
        raise ConfigError(
            f"{source}: cluster has no certificate-authority and is not insecure-skip-tls-verify"
        )
    return access


@dataclass(frozen=True)
class KubeFiles:
    """Where the harness wrote the access material; what prometheus.yml refers to."""

    ca: Path | None
    cert: Path | None
    key: Path | None
    token: Path | None


def kube_files(access: KubeAccess, directory: Path) -> dict[Path, bytes]:
    """The files to write for `access` (path -> content); `kube_file_paths` names the same paths."""
    paths = kube_file_paths(access, directory)
    contents = {
        paths.ca: access.ca_pem,
        paths.cert: access.cert_pem,
        paths.key: access.key_pem,
        paths.token: access.token.encode() if access.token else None,
    }
    return {path: data for path, data in contents.items() if path is not None and data is not None}


def kube_file_paths(access: KubeAccess, directory: Path) -> KubeFiles:
    return KubeFiles(
        ca=directory / "ca.crt" if access.ca_pem is not None else None,
        cert=directory / "client.crt" if access.cert_pem is not None else None,
        key=directory / "client.key" if access.key_pem is not None else None,
        token=directory / "token" if access.token else None,
    )


TARGET_FILES = {"operator": "operator.json", "simulators": "simulators.json"}


def _metrics_port(pod: Mapping[str, Any]) -> int | None:
    for container in (pod.get("spec") or {}).get("containers") or []:
        for port in container.get("ports") or []:
            if port.get("name") == METRICS_PORT_NAME and port.get("containerPort"):
                return int(port["containerPort"])
    return None


def pod_targets(
    pods: Iterable[Mapping[str, Any]], *, operator_namespace: str, release: str
) -> dict[str, list[dict[str, Any]]]:
    """file_sd target groups from a pod list: the release's operator pod and every line's simulator pods.

    What `kubernetes_sd_configs` (role pod) with keep-relabelling would give, done by the harness because
    Debian's Prometheus is built without Kubernetes discovery. Running pods with an IP and a port named
    `metrics` only; labels `namespace` and `pod`.
    """
    out: dict[str, list[dict[str, Any]]] = {job: [] for job in TARGET_FILES}
    for pod in pods:
        meta = pod.get("metadata") or {}
        status = pod.get("status") or {}
        port = _metrics_port(pod)
        if status.get("phase") != "Running" or not status.get("podIP") or port is None:
            continue
        labels = meta.get("labels") or {}
        component = labels.get("app.kubernetes.io/component")
        if (
            component == "operator"
            and labels.get("app.kubernetes.io/instance") == release
            and meta.get("namespace") == operator_namespace
        ):
            job = "operator"
        elif component == "simulator" and labels.get("app.kubernetes.io/managed-by") == SIMULATOR_MANAGED_BY:
            job = "simulators"
        else:
            continue
        out[job].append(
            {
                "targets": [f"{status['podIP']}:{port}"],
                "labels": {"namespace": str(meta.get("namespace")), "pod": str(meta.get("name"))},
            }
        )
    for groups in out.values():
        groups.sort(key=lambda g: (g["labels"]["namespace"], g["labels"]["pod"]))
    return out


def prometheus_config(
    *,
    targets_dir: Path,
    operator_job: str,
    pushgateway: str,
    alertmanager: str,
    rules_file: Path,
    interval_seconds: int = 5,
) -> dict[str, Any]:
    """prometheus.yml. `operator_job` must be `<fullname>-metrics`: DynolineOperatorDown matches that job."""
    if interval_seconds < 1:
        raise ConfigError(f"scrape interval must be at least 1 s, got {interval_seconds}")
    interval = f"{interval_seconds}s"

    def file_sd(job: str) -> list[dict[str, Any]]:
        return [{"files": [str(targets_dir / TARGET_FILES[job])], "refresh_interval": interval}]

    return {
        "global": {
            "scrape_interval": interval,
            "scrape_timeout": interval,
            "evaluation_interval": interval,
        },
        "alerting": {"alertmanagers": [{"static_configs": [{"targets": [alertmanager]}]}]},
        "rule_files": [str(rules_file)],
        "scrape_configs": [
            {"job_name": operator_job, "file_sd_configs": file_sd("operator")},
            {"job_name": "dynoline-simulators", "file_sd_configs": file_sd("simulators")},
            {
                # Sentinel CronJob pods push here; their series keep the labels they pushed.
                "job_name": "pushgateway",
                "honor_labels": True,
                "static_configs": [{"targets": [pushgateway]}],
            },
        ],
    }


def alertmanager_config() -> dict[str, Any]:
    """Every alert to one receiver without integrations: kept and shown by the API, sent nowhere."""
    return {
        "route": {
            "receiver": "e2e",
            "group_by": ["alertname", "line"],
            "group_wait": "1s",
            "group_interval": "5s",
            "repeat_interval": "1h",
        },
        "receivers": [{"name": "e2e"}],
    }


def chart_rules(documents: Iterable[Any]) -> dict[str, Any]:
    """The rule groups of the one PrometheusRule among rendered chart documents, as a rules file."""
    found = [
        d for d in documents if isinstance(d, dict) and d.get("kind") == "PrometheusRule" and d.get("spec")
    ]
    if len(found) != 1:
        raise ConfigError(
            f"expected one PrometheusRule in the rendered chart, found {len(found)}"
            " (is prometheusRule.enabled=true set?)"
        )
    groups = found[0]["spec"].get("groups")
    if not isinstance(groups, list) or not groups:
        raise ConfigError(f"PrometheusRule {found[0].get('metadata', {}).get('name')!r} has no spec.groups")
    return {"groups": groups}


def operator_fullname(documents: Iterable[Any]) -> str:
    """The operator Deployment's name in the rendered chart: the chart's fullname."""
    names = [
        str(d["metadata"]["name"])
        for d in documents
        if isinstance(d, dict) and d.get("kind") == "Deployment" and isinstance(d.get("metadata"), dict)
    ]
    if len(names) != 1:
        raise ConfigError(f"expected one Deployment in the rendered chart, found {names}")
    return names[0]
