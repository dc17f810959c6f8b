"""What the operator reports back on DynoLine and SentinelRule objects (`status`).

The operator writes these; nobody else should. They are generated into the CRDs' status schema with room
for unknown fields (kopf may keep its own bookkeeping there), and parsed leniently for the same reason.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import ConfigDict, Field

from workloads.api.common import Model

ConditionStatus = Literal["True", "False", "Unknown"]
REASON_PATTERN = r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$"


class Status(Model):
    """Lenient on input: a status written by an older operator (or kopf) must not break parsing."""

    model_config = ConfigDict(extra="ignore")


class Condition(Status):
    """The standard Kubernetes condition (metav1.Condition), so `kubectl wait --for=condition=X` works."""

    type: Annotated[str, Field(min_length=1, max_length=316, pattern=r"^[A-Za-z][A-Za-z0-9]*$")]
    status: ConditionStatus
    reason: Annotated[str, Field(min_length=1, max_length=1024, pattern=REASON_PATTERN)]
    message: str = Field("", max_length=32768)
    observed_generation: int | None = Field(default=None, ge=0)
    last_transition_time: str = Field(description="RFC 3339 time the status last changed")


class MigrationStatus(Status):
    """The schema-migration Job of the line's current image, and the newest image it has migrated."""

    job: str | None = Field(default=None, description="name of the current migration Job")
    completed_image: str | None = Field(
        None, description="newest image whose migration Job completed; simulator pods run this image"
    )


class DynoLineStatus(Status):
    observed_generation: int | None = Field(default=None, ge=0)
    conditions: list[Condition] = Field(default_factory=list, max_length=16)
    state: str | None = Field(
        default=None, max_length=64, description="one-word summary: the Ready condition's reason"
    )
    shards: int | None = Field(default=None, ge=0, description="simulator pods wanted")
    shards_ready: int | None = Field(default=None, ge=0, description="simulator pods ready")
    quarantined_units: list[int] | None = Field(
        None, max_length=100_000, description="units the sentinel has stopped, from the store's unit_state"
    )
    config_hash: str | None = Field(
        default=None, max_length=64, description="hash of the rendered line settings"
    )
    migration: MigrationStatus | None = None


RunResult = Literal["Succeeded", "Failed", "Running"]


class SentinelRuleStatus(Status):
    observed_generation: int | None = Field(default=None, ge=0)
    conditions: list[Condition] = Field(default_factory=list, max_length=16)
    state: str | None = Field(
        default=None, max_length=64, description="one-word summary: the Ready condition's reason"
    )
    last_schedule_time: str | None = Field(default=None, description="when the CronJob last started a run")
    last_run_time: str | None = Field(default=None, description="when the latest finished run ended")
    last_result: RunResult | None = None
    last_job: str | None = Field(default=None, description="name of the latest Job")
    open_alerts: int | None = Field(
        default=None, ge=0, description="alerts of this rule still open in the store"
    )
