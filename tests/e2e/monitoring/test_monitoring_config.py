"""The monitoring harness's files: built from a kubeconfig and the rendered chart, accepted by promtool.

Runs in the ordinary tiers (no cluster); promtool from tests/tools.py (a failure under `make test` when
missing). The chart's alerts themselves are tested in test_chart_alerts.py.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests import tools
from tests.e2e.monitoring import config

PEM = b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


def kubeconfig(**user: Any) -> dict[str, Any]:
    return {
        "current-context": "local",
        "contexts": [{"name": "local", "context": {"cluster": "c", "user": "admin"}}],
        "clusters": [
            {
                "name": "c",
                "cluster": {
                    "server": "https://10.203.0.1:6443",
                    "certificate-authority-data": base64.b64encode(PEM).decode(),
                },
            }
        ],
        "users": [{"name": "admin", "user": user}],
    }


def test_kube_access_reads_inline_and_file_credentials(tmp_path: Path) -> None:
    (tmp_path / "admin.key").write_bytes(b"KEY")
    access = config.kube_access(
        kubeconfig(
            **{"client-certificate-data": base64.b64encode(b"CERT").decode(), "client-key": "admin.key"}
        ),
        base=tmp_path,
        source="kc",
    )
    assert access == config.KubeAccess(
        "https://10.203.0.1:6443", ca_pem=PEM, cert_pem=b"CERT", key_pem=b"KEY"
    )
    files = config.kube_files(access, tmp_path / "kube")
    assert files == {tmp_path / "kube" / "ca.crt": PEM, tmp_path / "kube" / "client.crt": b"CERT",
                     tmp_path / "kube" / "client.key": b"KEY"}  # fmt: skip


@pytest.mark.parametrize(
    ("user", "error"),
    [
        ({}, "neither a client certificate nor a token"),
        ({"client-certificate-data": base64.b64encode(b"C").decode()}, "without the other"),
        ({"client-key-data": "not base64!"}, "client-key-data is not valid base64"),
        ({"client-key": "missing.key", "client-certificate": "missing.crt"}, "missing.crt"),
    ],
)
def test_kube_access_says_what_is_wrong(tmp_path: Path, user: dict[str, Any], error: str) -> None:
    with pytest.raises(config.ConfigError, match=error):
        config.kube_access(kubeconfig(**user), base=tmp_path, source="kc")


def pod(ns: str, name: str, labels: dict[str, str], phase: str = "Running", ip: str = "10.244.0.7") -> Any:
    return {
        "metadata": {"namespace": ns, "name": name, "labels": labels},
        "spec": {"containers": [{"ports": [{"name": "metrics", "containerPort": 9108}]}]},
        "status": {"phase": phase, "podIP": ip},
    }


def test_pod_targets_are_the_releases_operator_and_every_simulator() -> None:
    operator = {"app.kubernetes.io/component": "operator", "app.kubernetes.io/instance": "dynoline"}
    simulator = {
        "app.kubernetes.io/component": "simulator",
        "app.kubernetes.io/managed-by": "dynoline-operator",
    }
    pods = [
        pod("dynoline-system", "dynoline-abc", operator, ip="10.244.0.5"),
        pod("other", "dynoline-xyz", operator),  # another namespace: not this release's operator
        pod("lines", "l1-1", simulator, ip="10.244.0.9"),
        pod("lines", "l1-0", simulator, ip="10.244.0.8"),
        pod("lines", "l1-2", simulator, phase="Pending"),
        pod("lines", "db", {"app.kubernetes.io/component": "simulator"}),  # not made by the operator
    ]
    targets = config.pod_targets(pods, operator_namespace="dynoline-system", release="dynoline")
    assert targets == {
        "operator": [
            {
                "targets": ["10.244.0.5:9108"],
                "labels": {"namespace": "dynoline-system", "pod": "dynoline-abc"},
            }
        ],
        "simulators": [
            {"targets": ["10.244.0.8:9108"], "labels": {"namespace": "lines", "pod": "l1-0"}},
            {"targets": ["10.244.0.9:9108"], "labels": {"namespace": "lines", "pod": "l1-1"}},
        ],
    }


def test_prometheus_config_scrapes_the_targets_and_honours_pushed_labels(tmp_path: Path) -> None:
    prom = config.prometheus_config(
        targets_dir=tmp_path / "targets", operator_job="dynoline-metrics", pushgateway="10.203.0.1:9091",
        alertmanager="127.0.0.1:9093", rules_file=tmp_path / "rules.yml",
    )  # fmt: skip
    jobs = {job["job_name"]: job for job in prom["scrape_configs"]}
    assert set(jobs) == {"dynoline-metrics", "dynoline-simulators", "pushgateway"}
    assert jobs["pushgateway"]["honor_labels"] is True
    assert jobs["dynoline-metrics"]["file_sd_configs"][0]["files"] == [
        str(tmp_path / "targets" / "operator.json")
    ]
    assert prom["global"]["evaluation_interval"] == "5s"
    assert prom["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] == ["127.0.0.1:9093"]


def test_promtool_accepts_the_prometheus_config(tmp_path: Path) -> None:
    (tmp_path / "rules.yml").write_text("groups: []\n")
    prom = config.prometheus_config(
        targets_dir=tmp_path, operator_job="dynoline-metrics", pushgateway="10.203.0.1:9091",
        alertmanager="127.0.0.1:9093", rules_file=tmp_path / "rules.yml",
    )  # fmt: skip
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(prom))
    done = tools.run([tools.promtool(), "check", "config", str(tmp_path / "prometheus.yml")])
    assert done.returncode == 0, done.stdout + done.stderr


def test_chart_rules_wants_exactly_one_prometheus_rule() -> None:
    rule = {
        "kind": "PrometheusRule",
        "metadata": {"name": "r"},
        "spec": {"groups": [{"name": "g", "rules": []}]},
    }
    assert config.chart_rules([{"kind": "Deployment"}, rule]) == {"groups": [{"name": "g", "rules": []}]}
    with pytest.raises(config.ConfigError, match="found 0"):
        config.chart_rules([{"kind": "Deployment"}])
