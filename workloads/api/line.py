"""DynoLine: one production test line, its testers, their data source and where they stream to."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import ConfigDict, Field, StringConstraints, model_validator

from workloads.api import cel
from workloads.api.common import DnsName, Duration, Finite, Model, seconds
from workloads.api.spool import SpoolSpec

MAX_UNITS = 100_000


class CmapssSource(Model):
    """Replay of a NASA C-MAPSS file; `loop` restarts a unit's trajectory when it reaches failure."""

    type: Literal["cmapss"]
    dataset: Literal["FD001"] = "FD001"
    split: Literal["train", "test"] = "train"
    loop: bool = True


class SyntheticSource(Model):
    """The damage-propagation model of Saxena et al. 2008: any fleet size, deterministic per seed."""

    type: Literal["synthetic"]
    seed: int = Field(42, ge=0, le=2**31 - 1)


Source = Annotated[CmapssSource | SyntheticSource, Field(discriminator="type")]


class Fault(Model):
    """An injected anomaly, so detection can be rehearsed on demand."""

    unit: int = Field(ge=0, lt=MAX_UNITS, description="unit id on this line")
    kind: Literal["thermalRunaway"] = "thermalRunaway"
    start_after: Duration = Field("60s", description="time after the simulator starts")
    ramp_per_minute: Finite = Field(
        30.0, gt=0, le=1000, description="rise of the hot-section temperatures (T50, T30) per minute, °R"
    )


class SecretKeyRef(Model):
    name: DnsName
    key: Annotated[str, Field(min_length=1, max_length=253, pattern=r"^[-._a-zA-Z0-9]+$")] = "uri"


class DatabaseRef(Model):
    """Credentials only by reference: a CloudNativePG `<cluster>-app` Secret (key `uri`) fits as is."""

    secret_ref: SecretKeyRef


QUANTITY_PATTERN = r"^[0-9]+(\.[0-9]+)?(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$"
Quantity = Annotated[str, Field(pattern=QUANTITY_PATTERN, max_length=32)]


class ResourceList(Model):
    cpu: Quantity | None = Field(None, description="e.g. 250m or 2")
    memory: Quantity | None = Field(None, description="e.g. 256Mi or 1Gi")


class Resources(Model):
    """Container resources of the line's simulator pods, as in a pod spec (CloudNativePG puts them on the
    Cluster the same way). Replaces the chart's `workloads.simulator.resources` for this line."""

    requests: ResourceList | None = None
    limits: ResourceList | None = None


_NEW_CLAIM = "(has(self.spool) && has(self.spool.volumeClaimTemplate))"
_OLD_CLAIM = "(has(oldSelf.spool) && has(oldSelf.spool.volumeClaimTemplate))"
SPOOL_CLAIM_UNCHANGED = (
    f"{_NEW_CLAIM} == {_OLD_CLAIM}"
    f" && (!{_NEW_CLAIM} || self.spool.volumeClaimTemplate == oldSelf.spool.volumeClaimTemplate)"
)
SPOOL_CLAIM_IMMUTABLE = (
    "spool.volumeClaimTemplate cannot be added, changed or removed on an existing line (a StatefulSet's "
    "volumeClaimTemplates are immutable): delete the DynoLine and create it again (docs/spool.md)"
)


LATEST_INTERVAL_PATTERN = r"^(0s|[1-9][0-9]{0,4}ms|[1-9][0-9]?s)$"
LatestInterval = Annotated[str, StringConstraints(pattern=LATEST_INTERVAL_PATTERN)]
"""`0s`, up to `99999ms` or `99s`: a Duration that may be zero, and short (docs/telemetry-latest.md)."""


def interval_seconds(text: str) -> float:
    """`0s` → 0.0, `250ms` → 0.25, `5s` → 5.0 (a LatestInterval)."""
    return 0.0 if text == "0s" else seconds(text)


class DynoLineSpec(Model):
    # CEL with no pydantic validator to sit on (crdgen copies `x-kubernetes-validations` verbatim).
    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                # A transition rule (no pydantic twin: a model sees one object, not an update). It sits on
                # the spec, not on `spool`, because a rule on a field only runs when the old object had
                # the field too, which would let a template be added or removed.
                {"rule": SPOOL_CLAIM_UNCHANGED, "message": SPOOL_CLAIM_IMMUTABLE},
            ]
        }
    )

    units: int = Field(100, ge=1, le=MAX_UNITS, description="dyno testers on the line")
    rate_hz: Finite = Field(1.0, gt=0, le=100, description="samples per unit per second")
    shards: int = Field(1, ge=1, le=256, description="simulator pods; unit u belongs to shard u mod shards")
    source: Source = Field(default_factory=lambda: CmapssSource(type="cmapss"))
    faults: list[Fault] = Field(default_factory=list, max_length=100)
    database: DatabaseRef
    retention: Duration = "7d"
    paused: bool = False
    spool: SpoolSpec | None = Field(
        None, description="where shards keep batches while the database is away (default: a 1Gi emptyDir)"
    )
    resources: Resources | None = Field(
        None, description="simulator pods' resources (default: the operator's, chart workloads.simulator)"
    )
    latest_interval: LatestInterval = Field(
        "1s",
        description=(
            "how often each shard carries its committed samples into telemetry_latest, the latest-sample"
            " table (readers see it this much behind at most); 0s: in every batch's own transaction"
        ),
    )
    telemetry_policy: Literal["Retain", "Delete"] = Field(
        "Retain", description="what happens to the line's telemetry rows when the DynoLine is deleted"
    )

    @model_validator(mode="after")
    @cel.twin(  # tests/integration/test_crd_validation.py checks that both refuse the same specs
        cel.rule("self.shards <= self.units", "shards must not exceed units"),
        cel.rule(
            "!has(self.faults) || self.faults.all(f, f.unit < self.units)",
            "every fault's unit must be on this line (unit ids run 0..units-1)",
        ),
    )
    def _cross_field(self) -> DynoLineSpec:
        if self.shards > self.units:
            raise ValueError(f"shards ({self.shards}) must not exceed units ({self.units})")
        for fault in self.faults:
            if fault.unit >= self.units:
                raise ValueError(f"fault unit {fault.unit} is not on this line (units 0..{self.units - 1})")
        return self
