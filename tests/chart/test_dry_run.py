"""The rendered chart against the integration tier's real kube-apiserver: every object passes a
server-side dry-run (schema, defaulting, CEL of the CRDs), `helm install --dry-run=server` renders with
lookups, the bundled PostgreSQL keeps its password across renders, and the DynoLine that NOTES.txt tells a
user to apply is accepted by the real CRD.

prometheus-operator kinds (ServiceMonitor, PodMonitor, PrometheusRule) are left out of the dry-run: their
CRDs are not in the control plane (helm lint and promtool check them, tests/e2e/monitoring).
"""

from __future__ import annotations

import base64
import json
import re
from typing import Any

import pytest
import yaml

from tests import tools
from tests.envtest.controlplane import ControlPlane

pytestmark = pytest.mark.integration
MONITORING = "monitoring.coreos.com/v1"


def dry_run(cp: ControlPlane, docs: list[dict[str, Any]]) -> str:
    items = [d for d in docs if d["apiVersion"] != MONITORING]
    listed = json.dumps({"apiVersion": "v1", "kind": "List", "items": items})
    done = cp.kubectl(
        "apply", "--server-side", "--force-conflicts", "--field-manager=helm", "--dry-run=server",
        "-o", "name", "-f", "-", stdin=listed, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout


def helm_dry_run(cp: ControlPlane, namespace: str, *values: str) -> str:
    """`helm install --dry-run=server`. The session's CRDs were applied by the `crds` fixture, not by a
    release, so helm would refuse to take them over (the README's adoption step): crds.create=false, as
    a platform team that manages CRDs itself installs it. The rendered CRDs get their dry-run above."""
    sets = [arg for value in ("crds.create=false", *values) for arg in ("--set", value)]
    done = tools.run(
        [tools.helm(), "install", "dynoline", str(tools.CHART), "--namespace", namespace,
         "--kubeconfig", str(cp.kubeconfig), "--dry-run=server", *sets]
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout


def manifest_and_notes(out: str) -> tuple[list[dict[str, Any]], str]:
    manifest = out.split("\nMANIFEST:\n", 1)[1].split("\nNOTES:\n", 1)[0]
    notes = out.split("\nNOTES:\n", 1)[1]
    return [d for d in yaml.safe_load_all(manifest) if d], notes


@pytest.mark.parametrize(
    "values",
    [
        (),
        (
            "postgresql.enabled=true",
            "networkPolicy.enabled=true",
            "grafanaDashboard.enabled=true",
            "serviceMonitor.enabled=true",
            "prometheusRule.enabled=true",
            "imagePullSecrets[0].name=regcred",
            "workloads.simulator.tolerations[0].key=dedicated",
            "workloads.simulator.tolerations[0].operator=Exists",
        ),
    ],
    ids=["default", "non-default"],
)
def test_every_rendered_object_passes_a_server_side_dry_run(
    crds: ControlPlane, namespace: str, values: tuple[str, ...]
) -> None:
    docs = tools.render(f"operator.namespaces={{{namespace}}}", *values, namespace=namespace)
    applied = dry_run(crds, docs).split()
    expected = {d["kind"].lower() for d in docs if d["apiVersion"] != MONITORING}
    assert {name.split("/")[0].split(".")[0] for name in applied} == expected
    # Cluster-wide RBAC (no operator.namespaces) too.
    dry_run(crds, [d for d in tools.render(namespace=namespace) if d["kind"].startswith("Cluster")])


def test_helm_install_dry_run_and_the_line_notes_tells_to_apply(crds: ControlPlane, namespace: str) -> None:
    out = helm_dry_run(crds, namespace, "postgresql.enabled=true")
    docs, notes = manifest_and_notes(out)
    assert "examples/" not in notes
    assert f"kubectl -n {namespace} rollout status deploy/dynoline" in notes
    # The heredoc in NOTES.txt, as a user would paste it: accepted by the real DynoLine CRD.
    (body,) = re.findall(r"<<'YAML'\n(.*?)\nYAML\n", notes, flags=re.S)
    line = yaml.safe_load(body)
    assert line["spec"]["database"]["secretRef"] == {"name": "dynoline-postgresql", "key": "uri"}
    crds.kubectl("apply", "-n", namespace, "--dry-run=server", "-f", "-", stdin=json.dumps(line))
    dry_run(crds, docs)


def test_the_bundled_postgresql_password_survives_an_upgrade(crds: ControlPlane, namespace: str) -> None:
    """A real `helm install` into the control plane, then `helm upgrade --dry-run=server`: the password
    generated on install is looked up and kept (a new one would lock the data directory out)."""
    helm = [tools.helm(), "--namespace", namespace, "--kubeconfig", str(crds.kubeconfig)]
    sets = ["--set", "crds.create=false", "--set", "postgresql.enabled=true"]
    done = tools.run([*helm, "install", "dynoline", str(tools.CHART), *sets])
    assert done.returncode == 0, done.stderr
    try:
        secret = json.loads(
            crds.kubectl("get", "secret", "dynoline-postgresql", "-n", namespace, "-o", "json").stdout
        )
        installed = base64.b64decode(secret["data"]["password"]).decode()
        upgrade = tools.run([*helm, "upgrade", "dynoline", str(tools.CHART), "--dry-run=server", *sets])
        assert upgrade.returncode == 0, upgrade.stderr
        docs, _ = manifest_and_notes(upgrade.stdout)
        (kept,) = [d for d in docs if d["kind"] == "Secret"]
        assert len(installed) == 32 and kept["stringData"]["password"] == installed
        assert f":{installed}@" in kept["stringData"]["uri"]
    finally:
        tools.run([*helm, "uninstall", "dynoline"])


def test_the_dynolines_of_the_chart_readme_are_accepted(crds: ControlPlane, namespace: str) -> None:
    """The DynoLine heredocs of the chart README's install steps, applied as written (dry-run)."""
    text = (tools.CHART / "README.md").read_text()
    lines = [d for d in map(yaml.safe_load, re.findall(r"<<'YAML'\n(.*?)\nYAML\n", text, flags=re.S))
             if d["kind"] == "DynoLine"]  # fmt: skip
    assert lines, "the chart README has no DynoLine to apply"
    for line in lines:
        crds.kubectl("apply", "-n", namespace, "--dry-run=server", "-f", "-", stdin=json.dumps(line))
