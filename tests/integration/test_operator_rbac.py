"""The chart's RBAC is enough and no more: the operator runs as a ServiceAccount bound to exactly the
rules in controllers/rbac.py (what charts/dynoline/files/operator-rules.yaml holds) and does its job."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
import yaml

from controllers import rbac
from tests.envtest.controlplane import ControlPlane
from tests.integration.operator_harness import (
    EXAMPLES,
    Operator,
    apply,
    condition,
    get,
    wait_for,
)

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]


def service_account_kubeconfig(cp: ControlPlane, namespace: str, path: Path) -> Path:
    cp.kubectl("create", "serviceaccount", "dynoline-operator", "-n", namespace)
    role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {"name": "dynoline-operator", "namespace": namespace},
        "rules": yaml.safe_load((REPO / "charts" / "dynoline" / "files" / rbac.RULES_FILE).read_text()),
    }
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": "dynoline-operator", "namespace": namespace},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "dynoline-operator"},
        "subjects": [{"kind": "ServiceAccount", "name": "dynoline-operator", "namespace": namespace}],
    }
    apply(cp, namespace, role)
    apply(cp, namespace, binding)
    token = cp.kubectl(
        "create", "token", "dynoline-operator", "-n", namespace, "--duration=1h"
    ).stdout.strip()
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "envtest",
                "cluster": {
                    "server": cp.server,
                    "certificate-authority-data": base64.b64encode(cp.ca_cert.read_bytes()).decode(),
                },
            }
        ],
        "users": [{"name": "operator", "user": {"token": token}}],
        "contexts": [
            {
                "name": "operator",
                "context": {"cluster": "envtest", "user": "operator", "namespace": namespace},
            }
        ],
        "current-context": "operator",
    }
    path.write_text(json.dumps(config))
    return path


def test_the_operator_works_with_exactly_the_chart_rules(
    crds: ControlPlane, namespace: str, tmp_path: Path
) -> None:
    kubeconfig = service_account_kubeconfig(crds, namespace, tmp_path / "operator.kubeconfig")
    who = f"system:serviceaccount:{namespace}:dynoline-operator"
    assert (
        crds.kubectl(
            "auth", "can-i", "get", "secrets", "-n", namespace, f"--as={who}", check=False
        ).stdout.strip()
        == "yes"
    )
    for verb in ("list", "watch"):
        answer = crds.kubectl("auth", "can-i", verb, "secrets", "-n", namespace, f"--as={who}", check=False)
        assert answer.stdout.strip() == "no", verb  # it may read a named Secret, never enumerate them
    assert (
        crds.kubectl(
            "auth", "can-i", "delete", "statefulsets", "-n", namespace, f"--as={who}", check=False
        ).stdout.strip()
        == "no"
    )

    operator = Operator(
        crds, [namespace], tmp_path / "operator.log", env={"KUBECONFIG": str(kubeconfig)}
    ).start()
    try:
        apply(crds, namespace, EXAMPLES)
        wait_for("line-a's StatefulSet", lambda: get(crds, "statefulset", namespace, "line-a"))
        wait_for("line-a's status", lambda: condition(get(crds, "dl", namespace, "line-a"), "Ready"))
        wait_for(
            "the rules' CronJobs and status",
            lambda: all(
                condition(r, "Ready")
                for r in json.loads(crds.kubectl("get", "sr", "-n", namespace, "-o", "json").stdout)["items"]
            ),
        )
        crds.kubectl("delete", "configmap", "line-a-config", "-n", namespace)
        wait_for("repair as the ServiceAccount", lambda: get(crds, "configmap", namespace, "line-a-config"))
        events = json.loads(crds.kubectl("get", "events", "-n", namespace, "-o", "json").stdout)["items"]
        assert any(e["source"].get("component") == "dynoline-operator" for e in events)
        assert "Forbidden" not in operator.log() and "403" not in operator.log()
    finally:
        assert operator.stop() == 0
