"""A line whose spool is a PersistentVolumeClaim per shard, against a real API server and controller manager.

What only a real API server can say: that it takes the StatefulSet with its volumeClaimTemplates and
retention policy, that the operator's repeated server-side applies of that (immutable) template are
accepted on every pass, that the StatefulSet controller makes one labelled claim per shard and owns it,
and that deleting the line garbage-collects the claims (whenDeleted: Delete). The transition rule that
refuses template changes is in test_crd_validation.
"""

from __future__ import annotations

from typing import Any

import pytest

from controllers.manifests import CONFIG_HASH
from tests.envtest.controlplane import ControlPlane
from tests.integration.operator_harness import (
    MIGRATE,
    SIMULATOR,
    Operator,
    apply,
    db_secret,
    get,
    items,
    line_manifest,
    run_pods,
    succeed_pods,
    wait_for,
)

pytestmark = pytest.mark.integration

CLAIM = {
    "metadata": {"labels": {"backup.example.com/policy": "none"}},
    "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
}


def claims(cp: ControlPlane, namespace: str, line: str) -> list[dict[str, Any]]:
    return items(cp, "persistentvolumeclaims", namespace, f"app.kubernetes.io/instance={line}")


def test_every_shard_gets_a_claim_that_goes_with_the_line(
    crds: ControlPlane, namespace: str, operator: Operator
) -> None:
    apply(crds, namespace, db_secret())
    apply(crds, namespace, line_manifest("line-p", units=10, shards=2, spool={"volumeClaimTemplate": CLAIM}))
    sts = wait_for("the StatefulSet", lambda: get(crds, "statefulset", namespace, "line-p"))
    [template] = sts["spec"]["volumeClaimTemplates"]
    assert template["metadata"]["name"] == "spool"
    assert template["metadata"]["labels"]["backup.example.com/policy"] == "none"
    assert template["metadata"]["labels"]["dynoline.dev/line"] == "line-p"
    assert template["spec"]["resources"]["requests"]["storage"] == "1Gi"
    assert sts["spec"]["persistentVolumeClaimRetentionPolicy"] == {
        "whenDeleted": "Delete",
        "whenScaled": "Retain",
    }
    pod = sts["spec"]["template"]["spec"]
    assert [v["name"] for v in pod["volumes"]] == ["config"]  # no emptyDir beside the claim
    assert pod["securityContext"]["fsGroup"] == 10001
    assert pod["securityContext"]["fsGroupChangePolicy"] == "OnRootMismatch"

    wait_for(
        "the migration pod",
        lambda: succeed_pods(crds, namespace, f"{MIGRATE},app.kubernetes.io/instance=line-p"),
    )
    wait_for("one claim per shard", lambda: len(claims(crds, namespace, "line-p")) == 2)
    made = {c["metadata"]["name"]: c for c in claims(crds, namespace, "line-p")}
    assert sorted(made) == ["spool-line-p-0", "spool-line-p-1"]
    for claim in made.values():
        assert claim["metadata"]["labels"]["backup.example.com/policy"] == "none"
        assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]
    # whenDeleted: Delete: the StatefulSet controller makes the StatefulSet the claims' owner.
    wait_for(
        "the claims to be owned by the StatefulSet",
        lambda: all(
            any(
                r["kind"] == "StatefulSet" and r["name"] == "line-p"
                for r in c["metadata"].get("ownerReferences", [])
            )
            for c in claims(crds, namespace, "line-p")
        ),
    )

    wait_for(
        "two simulator pods",
        lambda: len(items(crds, "pods", namespace, f"{SIMULATOR},app.kubernetes.io/instance=line-p")) == 2,
    )
    run_pods(crds, namespace, f"{SIMULATOR},app.kubernetes.io/instance=line-p")
    crds.kubectl("wait", "--for=condition=Ready", "dl/line-p", "-n", namespace, "--timeout=60s")
    errors = operator.metric("dynoline_operator_reconcile_errors_total", controller="dynoline")
    old_hash = sts["spec"]["template"]["metadata"]["annotations"][CONFIG_HASH]
    # A streaming-settings change re-applies the StatefulSet, claim template and all: the API server takes
    # it (an immutable field applied unchanged), and the pods roll to the new settings.
    apply(crds, namespace, line_manifest("line-p", units=12, shards=2, spool={"volumeClaimTemplate": CLAIM}))
    wait_for(
        "the new settings in the StatefulSet",
        lambda: (
            (s := get(crds, "statefulset", namespace, "line-p"))
            and s["spec"]["template"]["metadata"]["annotations"][CONFIG_HASH] != old_hash
        ),
    )
    wait_for(
        "the status of the new generation",
        lambda: (get(crds, "dl", namespace, "line-p") or {}).get("status", {}).get("observedGeneration") == 2,
    )
    assert operator.metric("dynoline_operator_reconcile_errors_total", controller="dynoline") == errors
    assert "volumeClaimTemplates" not in operator.log()  # no refused StatefulSet update

    crds.kubectl("delete", "dl", "line-p", "-n", namespace, "--wait=true", "--timeout=60s")
    wait_for(
        "the StatefulSet to go", lambda: get(crds, "statefulset", namespace, "line-p") is None, timeout=90
    )
    wait_for("the claims to go", lambda: claims(crds, namespace, "line-p") == [], timeout=120)


def test_a_paused_line_keeps_its_claims(crds: ControlPlane, namespace: str, operator: Operator) -> None:
    """whenScaled: Retain: a shard's unreplayed spool is still there when the shard comes back."""
    apply(crds, namespace, db_secret())
    apply(crds, namespace, line_manifest("line-r", units=10, shards=2, spool={"volumeClaimTemplate": CLAIM}))
    wait_for(
        "the migration pod",
        lambda: succeed_pods(crds, namespace, f"{MIGRATE},app.kubernetes.io/instance=line-r"),
    )
    wait_for("one claim per shard", lambda: len(claims(crds, namespace, "line-r")) == 2)
    before = {c["metadata"]["name"]: c["metadata"]["uid"] for c in claims(crds, namespace, "line-r")}

    apply(
        crds,
        namespace,
        line_manifest("line-r", units=10, shards=2, paused=True, spool={"volumeClaimTemplate": CLAIM}),
    )
    wait_for("no replicas", lambda: get(crds, "statefulset", namespace, "line-r")["spec"]["replicas"] == 0)  # type: ignore[index]
    wait_for(
        "the pods to go",
        lambda: items(crds, "pods", namespace, f"{SIMULATOR},app.kubernetes.io/instance=line-r") == [],
        timeout=90,
    )
    after = {c["metadata"]["name"]: c["metadata"]["uid"] for c in claims(crds, namespace, "line-r")}
    assert after == before
    for claim in claims(crds, namespace, "line-r"):
        assert claim["metadata"].get("deletionTimestamp") is None
