"""DynoLine `spool`: what the model accepts and refuses (the CRD's CEL twins are checked in test_crdgen)."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from workloads.api.line import DynoLineSpec
from workloads.api.spool import SpoolSpec


def claim(**spec: Any) -> dict[str, Any]:
    return {"spec": {"resources": {"requests": {"storage": "1Gi"}}, **spec}}


def line(spool: dict[str, Any]) -> DynoLineSpec:
    return DynoLineSpec.model_validate({"database": {"secretRef": {"name": "db"}}, "spool": spool})


def test_absent_means_no_spool_settings() -> None:
    assert DynoLineSpec.model_validate({"database": {"secretRef": {"name": "db"}}}).spool is None


@pytest.mark.parametrize("size", ["1Gi", "512Mi", "0.5Gi", "10G", "1500M", "1073741824", "2Ti"])
def test_sizes_kubernetes_reads(size: str) -> None:
    assert SpoolSpec.model_validate({"sizeLimit": size}).size_limit == size
    template = line({"volumeClaimTemplate": {"spec": {"resources": {"requests": {"storage": size}}}}})
    assert template.spool and template.spool.volume_claim_template
    assert template.spool.volume_claim_template.spec.resources.requests.storage == size


@pytest.mark.parametrize("size", ["0", "0Gi", "0.0Mi", "-1Gi", "1 Gi", "1gb", "1GB", "1e9", "1m", "", "Gi"])
def test_sizes_refused(size: str) -> None:
    with pytest.raises(ValidationError, match="sizeLimit"):
        SpoolSpec.model_validate({"sizeLimit": size})
    with pytest.raises(ValidationError, match="storage"):
        line({"volumeClaimTemplate": {"spec": {"resources": {"requests": {"storage": size}}}}})


def test_a_template_takes_read_write_once_by_default() -> None:
    spool = line({"volumeClaimTemplate": claim()}).spool
    assert spool and spool.volume_claim_template
    assert spool.volume_claim_template.spec.access_modes == ["ReadWriteOnce"]
    assert spool.volume_claim_template.spec.storage_class_name is None
    assert spool.volume_claim_template.metadata is None


# (case, spool, what the error says)
REFUSED: list[tuple[str, dict[str, Any], str]] = [
    (
        "size-limit-and-template",
        {"sizeLimit": "1Gi", "volumeClaimTemplate": claim()},
        "with a volumeClaimTemplate the size is volumeClaimTemplate.spec.resources.requests.storage",
    ),
    ("template-without-spec", {"volumeClaimTemplate": {}}, "volumeClaimTemplate.spec"),
    ("template-without-size", {"volumeClaimTemplate": {"spec": {"resources": {"requests": {}}}}}, "storage"),
    ("read-only-many", {"volumeClaimTemplate": claim(accessModes=["ReadOnlyMany"])}, "accessModes"),
    ("no-access-mode", {"volumeClaimTemplate": claim(accessModes=[])}, "accessModes"),
    (
        "repeated-access-mode",
        {"volumeClaimTemplate": claim(accessModes=["ReadWriteOnce", "ReadWriteOnce"])},
        "must not repeat a mode",
    ),
    (
        "read-write-once-pod-with-others",
        {"volumeClaimTemplate": claim(accessModes=["ReadWriteOncePod", "ReadWriteOnce"])},
        "ReadWriteOncePod cannot be combined",
    ),
    ("storage-class-upper-case", {"volumeClaimTemplate": claim(storageClassName="Fast")}, "storageClassName"),
    ("volume-mode", {"volumeClaimTemplate": claim(volumeMode="Block")}, "volumeMode"),
    (
        "label-key-invalid",
        {"volumeClaimTemplate": {**claim(), "metadata": {"labels": {"bad key": "x"}}}},
        "labels: key 'bad key' is not a qualified name",
    ),
    (
        "label-key-name-too-long",
        {"volumeClaimTemplate": {**claim(), "metadata": {"labels": {"example.com/" + "n" * 64: "x"}}}},
        "is not a qualified name",
    ),
    (
        "label-prefix-too-long",
        {"volumeClaimTemplate": {**claim(), "metadata": {"labels": {"p" * 254 + "/name": "x"}}}},
        "is not a qualified name",
    ),
    (
        "label-value-invalid",
        {"volumeClaimTemplate": {**claim(), "metadata": {"labels": {"tier": "gold!"}}}},
        "labels.tier",
    ),
    (
        "label-reserved",
        {"volumeClaimTemplate": {**claim(), "metadata": {"labels": {"dynoline.dev/line": "other"}}}},
        "must not set the operator's own labels: dynoline.dev/line",
    ),
    (
        "annotation-key-invalid",
        {"volumeClaimTemplate": {**claim(), "metadata": {"annotations": {"/x": "y"}}}},
        "annotations: key '/x' is not a qualified name",
    ),
    ("metadata-name", {"volumeClaimTemplate": {**claim(), "metadata": {"name": "mine"}}}, "metadata.name"),
]


@pytest.mark.parametrize(("spool", "message"), [c[1:] for c in REFUSED], ids=[c[0] for c in REFUSED])
def test_refused(spool: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match="spool") as caught:
        line(spool)
    assert message in str(caught.value)


def test_label_and_annotation_keys_kubernetes_takes() -> None:
    metadata = {
        "labels": {"tier": "gold", "backup.example.com/policy": "daily", "a": ""},
        "annotations": {"example.com/note": "any text, even with spaces: ok", "k8s.io/x_y.z": "1"},
    }
    spool = line({"volumeClaimTemplate": {**claim(), "metadata": metadata}}).spool
    assert spool and spool.volume_claim_template and spool.volume_claim_template.metadata
    assert spool.volume_claim_template.metadata.labels == metadata["labels"]
    assert spool.volume_claim_template.metadata.annotations == metadata["annotations"]
