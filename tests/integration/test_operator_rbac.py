"""The chart's RBAC is enough and no more: the operator runs as the ServiceAccount, Role and RoleBinding
that `helm template` renders (operator.namespaces = the test's namespace), applied as rendered, and does
its job. The rules come from controllers/rbac.py through charts/dynoline/files/operator-rules.yaml."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from tests import tools
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
RBAC_KINDS = ("ServiceAccount", "Role", "RoleBinding")


def chart_rbac(namespace: str) -> list[dict[str, Any]]:
    """The release's RBAC objects for an operator watching only `namespace` and installed there."""
    docs = tools.render(f"operator.namespaces={{{namespace}}}", release="dynoline", namespace=namespace)
    rbac = [d for d in docs if d["kind"] in RBAC_KINDS]
    assert sorted(d["kind"] for d in rbac) == sorted(RBAC_KINDS), [d["kind"] for d in docs]
    assert not [
        d for d in docs if d["kind"].startswith("Cluster") and d["kind"] != "CustomResourceDefinition"
    ]
    return rbac


def service_account_kubeconfig(cp: ControlPlane, namespace: str, path: Path) -> tuple[Path, str]:
    rbac = chart_rbac(namespace)
    for doc in rbac:
        apply(cp, namespace, doc)
    (account,) = [d["metadata"]["name"] for d in rbac if d["kind"] == "ServiceAccount"]
    token = cp.kubectl("create", "token", account, "-n", namespace, "--duration=1h").stdout.strip()
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
    return path, account


def test_the_operator_works_with_exactly_the_chart_rules(
    crds: ControlPlane, namespace: str, tmp_path: Path
) -> None:
    kubeconfig, account = service_account_kubeconfig(crds, namespace, tmp_path / "operator.kubeconfig")
    who = f"system:serviceaccount:{namespace}:{account}"
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
