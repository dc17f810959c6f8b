"""Where a DynoLine's simulator pods keep their spool: an emptyDir (the default) or a PersistentVolumeClaim.

The spool holds the batches PostgreSQL could not take, until they are replayed; an emptyDir dies with its
pod, a claim outlives it (docs/spool.md says which to pick). The claim template is a subset of a
Kubernetes PersistentVolumeClaim (`metadata.labels/annotations`, `spec.accessModes`, `storageClassName`,
`resources.requests.storage`), spelt as Kubernetes spells it, so it reads like a StatefulSet's
`volumeClaimTemplates` entry. Every validator here carries its CEL twin (`@cel.twin`), so the API server
refuses what these models refuse.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import Field, StringConstraints, model_validator

from workloads.api import cel
from workloads.api.common import Model
from workloads.api.groupversion import qualified

# A positive size in bytes with an optional decimal or binary suffix (`512Mi`, `1Gi`, `0.5Gi`, `10G`): the
# part of the Kubernetes quantity syntax that makes sense for storage. Zero is refused by the pattern (one
# digit must be non-zero), so a pattern is all it takes, here and in the CRD.
SIZE_PATTERN = r"^([0-9]*[1-9][0-9]*(\.[0-9]+)?|[0-9]+\.[0-9]*[1-9][0-9]*)(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$"
Size = Annotated[str, StringConstraints(pattern=SIZE_PATTERN, max_length=32)]

DEFAULT_EMPTY_DIR_SIZE = "1Gi"

# Label and annotation keys: an optional DNS-subdomain prefix and `/`, then a name of at most 63 characters.
QUALIFIED_NAME_PATTERN = (
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$"
)
LABEL_VALUE_PATTERN = r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$"
LabelValue = Annotated[str, StringConstraints(pattern=LABEL_VALUE_PATTERN, max_length=63)]
AnnotationValue = Annotated[str, StringConstraints(max_length=4096)]
MAX_ENTRIES = 32

# The operator's own labels (controllers/manifests.py sets them on every claim; a test keeps both in step).
RESERVED_LABELS = (
    "app.kubernetes.io/name",
    "app.kubernetes.io/instance",
    "app.kubernetes.io/component",
    "app.kubernetes.io/managed-by",
    qualified("line"),
)

_KEY = re.compile(QUALIFIED_NAME_PATTERN)


def _key_error(key: str) -> str | None:
    if not _KEY.match(key) or key.find("/") > 253:  # the name's 63 characters are in the pattern
        return (
            f"key {key!r} is not a qualified name (an optional DNS-subdomain prefix and '/', then at most 63 "
            "letters, digits, '-', '_' or '.', starting and ending with a letter or digit)"
        )
    return None


def _cel_keys(field: str) -> str:
    return (
        f"!has(self.{field}) || self.{field}.all(k, k.matches(r'{QUALIFIED_NAME_PATTERN}')"
        " && (!k.contains('/') || k.indexOf('/') <= 253))"
    )


class ClaimMetadata(Model):
    """Extra labels and annotations for the claims (e.g. for backup or storage tooling)."""

    labels: dict[str, LabelValue] | None = Field(None, max_length=MAX_ENTRIES)
    annotations: dict[str, AnnotationValue] | None = Field(None, max_length=MAX_ENTRIES)

    @model_validator(mode="after")
    @cel.twin(
        {"rule": _cel_keys("labels"), "message": "labels: every key must be a qualified name"},
        {
            "rule": _cel_keys("annotations"),
            "message": "annotations: every key must be a qualified name",
        },
        {
            "rule": "!has(self.labels) || !self.labels.exists(k, k in ["
            + ", ".join(f"'{k}'" for k in RESERVED_LABELS)
            + "])",
            "message": "labels must not set the operator's own labels (" + ", ".join(RESERVED_LABELS) + ")",
        },
    )
    def _keys(self) -> ClaimMetadata:
        for where, entries in (("labels", self.labels), ("annotations", self.annotations)):
            for key in entries or {}:
                error = _key_error(key)
                if error:
                    raise ValueError(f"{where}: {error}")
        taken = sorted(set(self.labels or {}) & set(RESERVED_LABELS))
        if taken:
            raise ValueError(f"labels must not set the operator's own labels: {', '.join(taken)}")
        return self


class StorageRequest(Model):
    storage: Size = Field(description="the claim's size, e.g. 1Gi (docs/spool.md: how much to ask for)")


class ClaimResources(Model):
    requests: StorageRequest


# ReadOnlyMany is left out: the spool is written.
AccessMode = Literal["ReadWriteOnce", "ReadWriteOncePod", "ReadWriteMany"]


def _read_write_once() -> list[AccessMode]:
    return ["ReadWriteOnce"]


STORAGE_CLASS_PATTERN = r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*)?$"


class ClaimSpec(Model):
    """The PersistentVolumeClaimSpec subset a spool needs (a filesystem volume, one per shard)."""

    access_modes: list[AccessMode] = Field(default_factory=_read_write_once, min_length=1, max_length=3)
    storage_class_name: (
        Annotated[str, StringConstraints(pattern=STORAGE_CLASS_PATTERN, max_length=253)] | None
    ) = Field(
        None,
        description="the StorageClass to provision from; absent: the cluster's default class; "
        "empty: only a pre-provisioned PersistentVolume without a class",
    )
    resources: ClaimResources

    @model_validator(mode="after")
    @cel.twin(
        {
            "rule": "self.accessModes.all(m, self.accessModes.filter(x, x == m).size() == 1)",
            "message": "accessModes must not repeat a mode",
        },
        {
            "rule": "!('ReadWriteOncePod' in self.accessModes) || self.accessModes.size() == 1",
            "message": "accessModes: ReadWriteOncePod cannot be combined with other modes",
        },
    )
    def _modes(self) -> ClaimSpec:
        if len(set(self.access_modes)) != len(self.access_modes):
            raise ValueError(f"accessModes must not repeat a mode: {self.access_modes}")
        if "ReadWriteOncePod" in self.access_modes and len(self.access_modes) > 1:
            raise ValueError("accessModes: ReadWriteOncePod cannot be combined with other modes")
        return self


class VolumeClaimTemplate(Model):
    """One PersistentVolumeClaim per shard (`spool-<line>-<ordinal>`), made by the StatefulSet controller."""

    metadata: ClaimMetadata | None = None
    spec: ClaimSpec


class SpoolSpec(Model):
    """Absent or without a template: an emptyDir of `sizeLimit` (default 1Gi). A template cannot change on
    an existing line (a StatefulSet's volumeClaimTemplates are immutable); DynoLineSpec's CEL says so."""

    size_limit: Size | None = Field(
        None,
        description=f"the emptyDir's size limit (default {DEFAULT_EMPTY_DIR_SIZE}) when there is no template",
    )
    volume_claim_template: VolumeClaimTemplate | None = Field(
        None, description="a PersistentVolumeClaim per shard instead of the emptyDir (immutable)"
    )

    @model_validator(mode="after")
    @cel.twin(
        {
            "rule": "!(has(self.sizeLimit) && has(self.volumeClaimTemplate))",
            "message": "sizeLimit is the emptyDir's limit; with a volumeClaimTemplate the size is "
            "volumeClaimTemplate.spec.resources.requests.storage",
        }
    )
    def _one_size(self) -> SpoolSpec:
        if self.size_limit is not None and self.volume_claim_template is not None:
            raise ValueError(
                "sizeLimit is the emptyDir's limit; with a volumeClaimTemplate the size is "
                "volumeClaimTemplate.spec.resources.requests.storage"
            )
        return self
