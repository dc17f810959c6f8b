"""The real API server refuses bad DynoLines and SentinelRules at apply time, with a message that says why.

Each spec-level case is also refused by the pydantic model, so the CRD's schema and CEL rules and the
models (which the operator, the simulator and the sentinel use) cannot drift apart unnoticed.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from pydantic import ValidationError

from tests.envtest.controlplane import ControlPlane
from tests.integration.operator_harness import EXAMPLES, get, line_manifest
from workloads.api.line import DynoLineSpec
from workloads.api.rule import SentinelRuleSpec

pytestmark = pytest.mark.integration


def rule_manifest(name: str = "r", **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "lineRef": {"name": "line-a"},
        "schedule": "*/1 * * * *",
        "condition": {"type": "threshold", "sensor": "T50", "op": ">", "value": 1430.0},
    }
    body.update(spec)
    return {
        "apiVersion": "dynoline.dev/v1alpha1",
        "kind": "SentinelRule",
        "metadata": {"name": name},
        "spec": body,
    }


def line(name: str = "line-x", **spec: Any) -> dict[str, Any]:
    return line_manifest(name, **spec)


def without(manifest: dict[str, Any], *path: str) -> dict[str, Any]:
    copied = copy.deepcopy(manifest)
    node = copied
    for key in path[:-1]:
        node = node[key]
    del node[path[-1]]
    return copied


BAD_CONDITION = {"type": "threshold", "sensor": "T50", "op": ">", "value": 1430.0}
DRIFT = {"type": "drift", "sensor": "Ps30", "threshold": 3}
CLAIM: dict[str, Any] = {"spec": {"resources": {"requests": {"storage": "1Gi"}}}}


def claim_with(**spec: Any) -> dict[str, Any]:
    return {"spec": {**CLAIM["spec"], **spec}}


# (id, manifest, what the API server says, whether pydantic refuses the spec too)
INVALID: list[tuple[str, dict[str, Any], str, bool]] = [
    ("units-zero", line(units=0), "spec.units in body should be greater than or equal to 1", True),
    (
        "units-too-many",
        line(units=100_001),
        "spec.units in body should be less than or equal to 100000",
        True,
    ),
    ("units-not-a-number", line(units="ten"), "spec.units in body must be of type integer", True),
    ("rate-zero", line(rateHz=0), "spec.rateHz in body should be greater than 0", True),
    ("shards-over-units", line(units=2, shards=3), "shards must not exceed units", True),
    (
        "fault-off-the-line",
        line(units=5, shards=1, faults=[{"unit": 5}]),
        "every fault's unit must be on this line",
        True,
    ),
    ("source-unknown", line(source={"type": "kafka"}), 'Unsupported value: "kafka"', True),
    (
        "source-mixed-variants",
        line(source={"type": "synthetic", "dataset": "FD001"}),
        "a synthetic source does not take dataset",
        True,
    ),
    ("retention-words", line(retention="7 days"), "spec.retention in body should match", True),
    ("latest-interval-minutes", line(latestInterval="1m"), "spec.latestInterval in body should match", True),
    ("policy-unknown", line(telemetryPolicy="Purge"), 'Unsupported value: "Purge"', True),
    ("database-missing", without(line(), "spec", "database"), "spec.database: Required value", True),
    (
        "secret-name-invalid",
        line(database={"secretRef": {"name": "Bad_Name"}}),
        "spec.database.secretRef.name",
        True,
    ),
    ("field-misspelt", line(rateHZ=2.0), 'unknown field "spec.rateHZ"', True),
    (
        "spool-size-and-template",
        line(spool={"sizeLimit": "1Gi", "volumeClaimTemplate": CLAIM}),
        "sizeLimit is the emptyDir's limit",
        True,
    ),
    ("spool-size-zero", line(spool={"sizeLimit": "0Gi"}), "spec.spool.sizeLimit in body should match", True),
    (
        "spool-size-unit-unknown",
        line(spool={"sizeLimit": "1GB"}),
        "spec.spool.sizeLimit in body should match",
        True,
    ),
    (
        "spool-claim-without-storage",
        line(spool={"volumeClaimTemplate": {"spec": {"resources": {"requests": {}}}}}),
        "spec.spool.volumeClaimTemplate.spec.resources.requests.storage: Required value",
        True,
    ),
    (
        "spool-claim-read-only",
        line(spool={"volumeClaimTemplate": claim_with(accessModes=["ReadOnlyMany"])}),
        'Unsupported value: "ReadOnlyMany"',
        True,
    ),
    (
        "spool-claim-mode-repeated",
        line(spool={"volumeClaimTemplate": claim_with(accessModes=["ReadWriteOnce", "ReadWriteOnce"])}),
        "accessModes must not repeat a mode",
        True,
    ),
    (
        "spool-claim-read-write-once-pod-combined",
        line(spool={"volumeClaimTemplate": claim_with(accessModes=["ReadWriteOncePod", "ReadWriteMany"])}),
        "ReadWriteOncePod cannot be combined with other modes",
        True,
    ),
    (
        "spool-claim-storage-class-invalid",
        line(spool={"volumeClaimTemplate": claim_with(storageClassName="Fast_SSD")}),
        "spec.spool.volumeClaimTemplate.spec.storageClassName in body should match",
        True,
    ),
    (
        "spool-claim-block-volume",
        line(spool={"volumeClaimTemplate": claim_with(volumeMode="Block")}),
        'unknown field "spec.spool.volumeClaimTemplate.spec.volumeMode"',
        True,
    ),
    (
        "spool-claim-named",
        line(spool={"volumeClaimTemplate": {**CLAIM, "metadata": {"name": "mine"}}}),
        'unknown field "spec.spool.volumeClaimTemplate.metadata.name"',
        True,
    ),
    (
        "spool-claim-label-key-invalid",
        line(spool={"volumeClaimTemplate": {**CLAIM, "metadata": {"labels": {"bad key": "x"}}}}),
        "labels: every key must be a qualified name",
        True,
    ),
    (
        "spool-claim-label-value-invalid",
        line(spool={"volumeClaimTemplate": {**CLAIM, "metadata": {"labels": {"tier": "gold!"}}}}),
        "spec.spool.volumeClaimTemplate.metadata.labels.tier in body should match",
        True,
    ),
    (
        "spool-claim-label-reserved",
        line(spool={"volumeClaimTemplate": {**CLAIM, "metadata": {"labels": {"dynoline.dev/line": "x"}}}}),
        "labels must not set the operator's own labels",
        True,
    ),
    (
        "spool-claim-annotation-key-invalid",
        line(spool={"volumeClaimTemplate": {**CLAIM, "metadata": {"annotations": {"/x": "y"}}}}),
        "annotations: every key must be a qualified name",
        True,
    ),
    ("name-too-long", line("l" + "x" * 40), "name must be at most 40 characters", False),
    ("name-starts-with-digit", line("1line"), "name must start with a letter", False),
    (
        "sensor-unknown",
        rule_manifest(condition={**BAD_CONDITION, "sensor": "sensor_11_raw"}),
        "unknown sensor",
        True,
    ),
    (
        "condition-kind-unknown",
        rule_manifest(condition={**BAD_CONDITION, "type": "spike"}),
        'Unsupported value: "spike"',
        True,
    ),
    (
        "threshold-without-value",
        rule_manifest(condition={"type": "threshold", "sensor": "T50", "op": ">"}),
        "a threshold condition needs sensor, op, value",
        True,
    ),
    (
        "sustained-k-over-n",
        rule_manifest(
            condition={"type": "sustained", "sensor": "T50", "op": ">", "value": 1, "k": 5, "n": 3}
        ),
        "sustained needs both k and n with k <= n",
        True,
    ),
    (
        "sustained-two-windows",
        rule_manifest(
            condition={
                "type": "sustained",
                "sensor": "T50",
                "op": ">",
                "value": 1,
                "for": "30s",
                "k": 1,
                "n": 2,
            }
        ),
        "sustained needs either 'for'",
        True,
    ),
    (
        "window-over-a-day",
        rule_manifest(condition={"type": "rateOfChange", "sensor": "T50", "window": "2d", "value": 5}),
        "spec.condition.window",
        True,
    ),
    ("schedule-prose", rule_manifest(schedule="every minute"), "schedule must be a cron expression", True),
    (
        "clear-same-direction",
        rule_manifest(clear={"op": ">", "value": 1420}),
        "hysteresis needs the opposite comparison",
        True,
    ),
    (
        "clear-overlaps",
        rule_manifest(clear={"op": "<", "value": 1440}),
        "clear overlaps the firing side",
        True,
    ),
    ("severity-unknown", rule_manifest(severity="urgent"), 'Unsupported value: "urgent"', True),
    ("units-repeat", rule_manifest(units=[1, 2, 2]), "Duplicate value: 2", True),
    (
        "comparison-unknown",
        rule_manifest(condition={**BAD_CONDITION, "op": "=="}),
        'Unsupported value: "=="',
        True,
    ),
    (
        "model-path-escape",
        rule_manifest(condition={"type": "healthIndex", "model": "../../etc/passwd", "value": 0.5}),
        "must be a model name or a relative .json path",
        True,
    ),
    (
        "model-file-in-a-pod",  # a rule file's model path means nothing in the sentinel pod
        rule_manifest(condition={"type": "healthIndex", "model": "models/mine.json", "value": 0.5}),
        "a SentinelRule's model must be one shipped with dynoline",
        True,
    ),
    ("drift-regimes-escape", rule_manifest(condition={**DRIFT, "regimes": "../x"}), "relative .json", True),
    ("drift-regimes-in-pod", rule_manifest(condition={**DRIFT, "regimes": "m/a.json"}), "one shipped", True),
    ("regimes-on-threshold", rule_manifest(condition={**BAD_CONDITION, "regimes": "x"}), "not take", True),
    ("line-ref-missing", without(rule_manifest(), "spec", "lineRef"), "spec.lineRef: Required value", True),
    (
        "rul-without-op",
        rule_manifest(condition={"type": "rul", "model": "fd001-health", "value": 30}),
        "a rul condition needs model, op, value",
        True,
    ),
    (
        "rul-confidence-too-high",
        rule_manifest(
            condition={"type": "rul", "model": "fd001-health", "op": "<=", "value": 30, "confidence": 1.5}
        ),
        "less than or equal to 0.99",
        True,
    ),
    (
        "rul-clear-same-direction",
        rule_manifest(
            condition={"type": "rul", "model": "fd001-health", "op": "<=", "value": 30},
            clear={"op": "<", "value": 40},
        ),
        "hysteresis needs the opposite comparison",
        True,
    ),
]


@pytest.mark.parametrize(
    ("manifest", "message", "model_refuses"), [c[1:] for c in INVALID], ids=[c[0] for c in INVALID]
)
def test_invalid_manifest_is_refused(
    crds: ControlPlane,
    namespace: str,
    manifest: dict[str, Any],
    message: str,
    model_refuses: bool,
) -> None:
    result = crds.kubectl("apply", "-n", namespace, "-f", "-", stdin=json.dumps(manifest), check=False)
    assert result.returncode != 0, f"accepted: {json.dumps(manifest)}"
    assert message in result.stderr, result.stderr
    kind = "dynolines" if manifest["kind"] == "DynoLine" else "sentinelrules"
    assert get(crds, kind, namespace, manifest["metadata"]["name"]) is None  # nothing half-written
    if model_refuses:
        model = DynoLineSpec if manifest["kind"] == "DynoLine" else SentinelRuleSpec
        with pytest.raises(ValidationError):
            model.model_validate(manifest["spec"])


def test_enough_distinct_refusals() -> None:
    assert len(INVALID) >= 15 and len({c[0] for c in INVALID}) == len(INVALID)


def test_valid_manifests_and_the_examples_are_accepted(crds: ControlPlane, namespace: str) -> None:
    crds.kubectl("apply", "-n", namespace, "-f", "-", stdin=json.dumps(line("line-ok")))
    crds.kubectl("apply", "-n", namespace, "-f", "-", stdin=json.dumps(rule_manifest("rule-ok")))
    daily = rule_manifest("rule-daily", schedule="@daily")  # 6 characters: the shortest schedule
    crds.kubectl("apply", "-n", namespace, "-f", "-", stdin=json.dumps(daily))
    assert SentinelRuleSpec.model_validate(daily["spec"]).schedule == "@daily"
    crds.kubectl("apply", "-n", namespace, "-f", str(EXAMPLES))
    crds.kubectl("apply", "-n", namespace, "-f", str(EXAMPLES / "persistent-spool"))
    assert get(crds, "dynolines", namespace, "line-b") is not None
    stored = get(crds, "dynolines", namespace, "line-ok")
    assert stored is not None
    # Defaults from the model are applied by the API server.
    assert stored["spec"]["telemetryPolicy"] == "Retain" and stored["spec"]["retention"] == "7d"
    assert stored["spec"]["latestInterval"] == "1s"
    assert DynoLineSpec.model_validate(stored["spec"]).units == 10


def test_kubectl_get_shows_the_printer_columns(crds: ControlPlane, namespace: str) -> None:
    crds.kubectl(
        "apply", "-n", namespace, "-f", "-", stdin=json.dumps(line("line-cols", units=12, rateHz=2.5))
    )
    crds.kubectl(
        "apply", "-n", namespace, "-f", "-", stdin=json.dumps(rule_manifest("rule-cols", severity="critical"))
    )
    out = crds.kubectl("get", "dl,sr", "-n", namespace).stdout
    lines_header, rules_header = [row for row in out.splitlines() if row.startswith("NAME")]
    assert lines_header.split() == ["NAME", "UNITS", "RATE", "SHARDS", "READY", "STATE", "AGE"]
    assert rules_header.split() == [
        "NAME",
        "LINE",
        "KIND",
        "SEVERITY",
        "SCHEDULE",
        "OPEN",
        "LAST",
        "RUN",
        "STATE",
        "AGE",
    ]
    row = next(r for r in out.splitlines() if "line-cols" in r).split()
    assert row[1:4] == ["12", "2.5", "2"]
    row = next(r for r in out.splitlines() if "rule-cols" in r).split()
    assert row[1:4] == ["line-a", "threshold", "critical"]
    # Short names and the category resolve too.
    assert "line-cols" in crds.kubectl("get", "dynoline", "-n", namespace).stdout
    assert "rule-cols" in crds.kubectl("get", "sr", "-n", namespace, "-o", "name").stdout


IMMUTABLE = "spool.volumeClaimTemplate cannot be added, changed or removed on an existing line"


def test_the_spool_claim_template_cannot_change_on_an_existing_line(
    crds: ControlPlane, namespace: str
) -> None:
    """StatefulSet volumeClaimTemplates are immutable, so the API server refuses the change up front (a
    transition rule on the spec) instead of the operator failing every apply of the StatefulSet after."""

    def apply_line(name: str, **spec: Any) -> Any:
        return crds.kubectl(
            "apply", "-n", namespace, "-f", "-", stdin=json.dumps(line(name, **spec)), check=False
        )

    def stored_spool(name: str) -> Any:
        return (get(crds, "dynolines", namespace, name) or {})["spec"].get("spool")

    with_claim = {"volumeClaimTemplate": CLAIM}
    assert apply_line("line-c", spool=with_claim).returncode == 0
    kept = stored_spool("line-c")
    bigger = {"volumeClaimTemplate": {"spec": {"resources": {"requests": {"storage": "2Gi"}}}}}
    labelled = {"volumeClaimTemplate": {**CLAIM, "metadata": {"labels": {"tier": "gold"}}}}
    for change in (bigger, labelled, {"sizeLimit": "1Gi"}, None):
        spec = {"spool": change} if change is not None else {}
        result = apply_line("line-c", **spec)
        assert result.returncode != 0, f"accepted: {change}"
        assert IMMUTABLE in result.stderr, result.stderr
        assert stored_spool("line-c") == kept
    # The same template again, with other settings changed: accepted.
    assert apply_line("line-c", spool=with_claim, units=20).returncode == 0
    assert (get(crds, "dynolines", namespace, "line-c") or {})["spec"]["units"] == 20

    # A line without a template cannot gain one; its emptyDir size can change freely.
    assert apply_line("line-e").returncode == 0
    result = apply_line("line-e", spool=with_claim)
    assert result.returncode != 0 and IMMUTABLE in result.stderr, result.stderr
    assert apply_line("line-e", spool={"sizeLimit": "2Gi"}).returncode == 0
    assert apply_line("line-e", spool={"sizeLimit": "4Gi"}).returncode == 0
    assert stored_spool("line-e") == {"sizeLimit": "4Gi"}
    result = apply_line("line-e", spool={"volumeClaimTemplate": CLAIM})
    assert result.returncode != 0 and IMMUTABLE in result.stderr, result.stderr
