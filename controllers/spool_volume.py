"""The simulator pods' spool volume: an emptyDir by default, else a claim per shard from a template.

Kept apart from the other builders because a claim template is forever: StatefulSet volumeClaimTemplates
are immutable, so what `claim_template` builds for a line must not change between operator versions.
"""

from __future__ import annotations

from typing import Any

from workloads.api.spool import DEFAULT_EMPTY_DIR_SIZE, SpoolSpec, VolumeClaimTemplate

SPOOL_DIR = "/var/lib/dynoline/spool"
SPOOL_VOLUME = "spool"


def empty_dir(spool: SpoolSpec | None) -> dict[str, Any]:
    """Survives container restarts and outages while the pod lives; lost with the pod (docs/spool.md)."""
    size = spool.size_limit if spool and spool.size_limit else DEFAULT_EMPTY_DIR_SIZE
    return {"name": SPOOL_VOLUME, "emptyDir": {"sizeLimit": size}}


def claim_template(claim: VolumeClaimTemplate, labels: dict[str, str]) -> dict[str, Any]:
    """The StatefulSet's claim template: the StatefulSet controller makes `spool-<line>-<ordinal>` from it.

    For a given DynoLine this must build the same object in every operator version (the DynoLine CRD
    refuses changes to the template itself): the standard `labels` over the user's, the user's
    annotations, and the claim spec as given.
    """
    meta = claim.metadata
    metadata: dict[str, Any] = {
        "name": SPOOL_VOLUME,
        "labels": {**(meta.labels if meta and meta.labels else {}), **labels},
    }
    if meta and meta.annotations:
        metadata["annotations"] = dict(meta.annotations)
    claim_spec: dict[str, Any] = {
        "accessModes": list(claim.spec.access_modes),
        "resources": {"requests": {"storage": claim.spec.resources.requests.storage}},
    }
    if claim.spec.storage_class_name is not None:
        claim_spec["storageClassName"] = claim.spec.storage_class_name
    return {"metadata": metadata, "spec": claim_spec}
