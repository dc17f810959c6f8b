"""DynoLine reconcile: migration Job, then the simulator StatefulSet, plus its ConfigMap and Service.

Level-triggered and idempotent: read the line, apply every child as it should be (server-side apply puts
hand edits back and recreates deleted children), read what the cluster reports, write status. The
simulator only scales up once the migration Job of the current image has completed; while a new image
migrates, the shards keep running the image that was migrated last.

"Ready" means: the spec's shards run the current settings and all report ready (the simulator's
/readyz: it is writing to the store). In a cluster without kubelets (the envtest tier) pods never start,
so the tests stand in for the kubelet by setting pod and Job status, as envtest users do.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from controllers import events, manifests
from controllers.conditions import DEGRADED, PROGRESSING, READY, Observed
from controllers.context import Context, SecretCheck, check_secret
from controllers.jobs import JobReport, job_report
from controllers.kube import ApiError
from controllers.manifests import Owner
from controllers.reporting import reject, write_status
from controllers.store_access import StoreError
from workloads.api.groupversion import DYNOLINE, qualified
from workloads.api.line import DynoLineSpec, SecretKeyRef
from workloads.api.status import DynoLineStatus, MigrationStatus
from workloads.errors import format_validation_error

KIND = DYNOLINE.kind
CONTROLLER = "dynoline"
FINALIZER = qualified("telemetry-cleanup")
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Rollout:
    replicas: int  # wanted
    ready: int
    updated: bool  # every wanted pod runs the current template and no old ones are left


def rollout(sts: dict[str, Any] | None, replicas: int) -> Rollout:
    if sts is None:
        return Rollout(replicas, 0, False)
    status = sts.get("status") or {}
    generation = (sts.get("metadata") or {}).get("generation", 0)
    current = status.get("observedGeneration", 0) >= generation
    updated = (
        current
        and status.get("updatedReplicas", 0) >= replicas
        and status.get("replicas", 0) == replicas
        and (replicas == 0 or status.get("currentRevision") == status.get("updateRevision"))
    )
    return Rollout(replicas, int(status.get("readyReplicas", 0)), updated)


def plan_workload(
    spec: DynoLineSpec, image: str, migration: JobReport, previous: MigrationStatus | None
) -> tuple[str, int, str | None]:
    """(image for the shards, replicas, newest migrated image): no shard runs an unmigrated image."""
    completed = previous.completed_image if previous else None
    if migration.state == "Complete":
        completed = image
    if completed is None:
        return image, 0, None
    return completed, 0 if spec.paused else spec.shards, completed


def observe(
    *,
    spec: DynoLineSpec,
    image: str,
    secret: SecretCheck,
    migration: JobReport,
    completed: str | None,
    progress: Rollout,
    store_error: str | None,
) -> list[Observed]:
    """Ready / Progressing / Degraded from what the cluster reports (pure, so it is tested exhaustively)."""
    if not secret.ok:
        return [
            Observed(READY, "False", secret.reason, secret.message),
            Observed(PROGRESSING, "False", secret.reason, "waiting for the database Secret"),
            Observed(DEGRADED, "True", secret.reason, secret.message),
        ]
    if completed is None:
        if migration.state == "Failed":
            message = f"schema migration Job {migration.name} failed: {migration.message}".rstrip(": ")
            return [
                Observed(READY, "False", "MigrationFailed", message),
                Observed(
                    PROGRESSING, "False", "MigrationFailed", "delete the Job to run the migration again"
                ),
                Observed(DEGRADED, "True", "MigrationFailed", message),
            ]
        message = f"waiting for schema migration Job {migration.name}"
        return [
            Observed(READY, "False", "Migrating", message),
            Observed(PROGRESSING, "True", "Migrating", message),
            _store_degraded(store_error),
        ]
    wanted, ready = progress.replicas, progress.ready
    if spec.paused:
        ready_c = Observed(READY, "True", "Paused", "paused: no simulator pods run")
        prog = (
            Observed(PROGRESSING, "False", "Paused", "paused")
            if progress.updated
            else Observed(PROGRESSING, "True", "ScalingDown", "stopping the simulator pods")
        )
    elif not progress.updated:
        ready_c = Observed(
            READY, "False", "RollingOut", f"rolling out the settings: {ready} of {wanted} ready"
        )
        prog = Observed(PROGRESSING, "True", "RollingOut", f"{wanted} shards, updating")
    elif ready < wanted:
        ready_c = Observed(READY, "False", "ShardsNotReady", f"{ready} of {wanted} shards ready")
        prog = Observed(PROGRESSING, "True", "ShardsStarting", f"{ready} of {wanted} shards ready")
    else:
        ready_c = Observed(READY, "True", "ShardsStreaming", f"{ready} of {wanted} shards ready")
        prog = Observed(PROGRESSING, "False", "Stable", f"{wanted} shards run the current settings")
    if completed != image and migration.state == "Running":
        prog = Observed(
            PROGRESSING,
            "True",
            "Migrating",
            f"migrating the schema for {image}; shards keep running {completed}",
        )
    if migration.state == "Failed":
        message = f"schema migration Job {migration.name} for {image} failed: {migration.message}".rstrip(
            ": "
        )
        degraded = Observed(DEGRADED, "True", "MigrationFailed", message)
    else:
        degraded = _store_degraded(store_error)
    return [ready_c, prog, degraded]


def _store_degraded(store_error: str | None) -> Observed:
    if store_error:
        return Observed(DEGRADED, "True", "StoreUnreachable", store_error)
    return Observed(DEGRADED, "False", "AsExpected", "")


def owner_of(obj: dict[str, Any]) -> Owner:
    meta = obj["metadata"]
    return Owner(KIND, meta["name"], meta["namespace"], meta["uid"])


async def reconcile(ctx: Context, namespace: str, name: str) -> float | None:
    """One pass; returns seconds until it should look again (None: only on the next event or resync)."""
    obj = await ctx.kube.get_or_none(KIND, namespace, name)
    if obj is None:
        ctx.metrics.set_state(CONTROLLER, (namespace, name), None)
        return None
    meta = obj["metadata"]
    if meta.get("deletionTimestamp"):
        return await _finalize(ctx, obj)
    previous = DynoLineStatus.model_validate(obj.get("status") or {})
    try:
        spec = DynoLineSpec.model_validate(obj.get("spec") or {})
    except ValidationError as exc:
        await reject(ctx, KIND, CONTROLLER, obj, previous, format_validation_error(exc))
        return None
    await _sync_finalizer(ctx, obj, spec)

    owner = owner_of(obj)
    settings = ctx.config.workload
    secret = await check_secret(ctx.kube, namespace, spec.database.secret_ref)

    # The migration Job first: what it reports decides which image the shards run, and how many.
    job = await ctx.kube.apply(manifests.migration_job(owner, spec, settings))
    ctx.writes.record(job)
    migration = job_report(job)
    image, replicas, completed = plan_workload(spec, settings.image, migration, previous.migration)
    children = manifests.line_children(owner, spec, settings, image=image, replicas=replicas)
    ctx.writes.record(await ctx.kube.apply(children.config_map))
    ctx.writes.record(await ctx.kube.apply(children.service))
    sts = await ctx.kube.apply(children.statefulset)
    ctx.writes.record(sts)
    stale_job = previous.migration.job if previous.migration else None
    if stale_job and stale_job != migration.name:
        await ctx.kube.delete("Job", namespace, stale_job)

    quarantined = previous.quarantined_units
    store_error: str | None = None
    if secret.ok and secret.url and ctx.store is not None:
        try:
            quarantined = (await ctx.store.view(secret.url)).quarantined_units(name)
        except StoreError as exc:
            store_error = str(exc)
    progress = rollout(sts, replicas)
    observed = observe(
        spec=spec,
        image=settings.image,
        secret=secret,
        migration=migration,
        completed=completed,
        progress=progress,
        store_error=store_error,
    )
    status = DynoLineStatus(
        shards=replicas,
        shards_ready=progress.ready,
        quarantined_units=quarantined,
        config_hash=children.config_hash,
        migration=MigrationStatus(job=migration.name, completed_image=completed),
    )
    await write_status(ctx, KIND, CONTROLLER, obj, previous, status, observed)
    await _quarantine_events(ctx, obj, previous.quarantined_units, quarantined)
    if not secret.ok:
        return ctx.config.missing_ref_retry_seconds
    return None


async def _quarantine_events(
    ctx: Context, obj: dict[str, Any], before: list[int] | None, after: list[int] | None
) -> None:
    if before is None or after is None:
        return
    stopped, released = sorted(set(after) - set(before)), sorted(set(before) - set(after))
    now = ctx.clock()
    if stopped:
        message = "sentinel quarantined unit(s) " + ", ".join(map(str, stopped[:50]))
        await events.post(ctx.kube, events.build(obj, KIND, "Warning", "UnitsQuarantined", message, now))
    if released:
        message = "unit(s) released from quarantine: " + ", ".join(map(str, released[:50]))
        await events.post(ctx.kube, events.build(obj, KIND, "Normal", "UnitsReleased", message, now))


async def _sync_finalizer(ctx: Context, obj: dict[str, Any], spec: DynoLineSpec) -> None:
    """Hold deletion for the telemetry cleanup only when the spec asks for it."""
    meta = obj["metadata"]
    finalizers: list[str] = list(meta.get("finalizers") or [])
    wanted = spec.telemetry_policy == "Delete"
    if wanted == (FINALIZER in finalizers):
        return
    updated = [*finalizers, FINALIZER] if wanted else [f for f in finalizers if f != FINALIZER]
    patch = {"metadata": {"finalizers": updated, "resourceVersion": meta["resourceVersion"]}}
    written = await ctx.kube.merge_patch(KIND, meta["namespace"], meta["name"], patch)
    ctx.writes.record(written)
    meta["finalizers"] = updated
    meta["resourceVersion"] = written["metadata"]["resourceVersion"]


async def _finalize(ctx: Context, obj: dict[str, Any]) -> float | None:
    """The line is being deleted: delete its telemetry if (and only if) that was asked, then let it go."""
    meta = obj["metadata"]
    namespace, name = meta["namespace"], meta["name"]
    finalizers: list[str] = list(meta.get("finalizers") or [])
    if FINALIZER not in finalizers:
        return None
    ref = ((obj.get("spec") or {}).get("database") or {}).get("secretRef") or {}
    now = ctx.clock()
    try:
        if ctx.store is None:
            raise StoreError("the operator runs without store access (DYNOLINE_STORE_QUERIES=false)")
        secret = await check_secret(ctx.kube, namespace, SecretKeyRef.model_validate(ref))
        if not secret.ok or not secret.url:
            raise StoreError(secret.message)
        counts = await ctx.store.purge(secret.url, name)
    except (StoreError, ValidationError) as exc:
        message = f"telemetry not deleted yet (telemetryPolicy: Delete): {exc}; retrying"
        await events.post(
            ctx.kube, events.build(obj, KIND, "Warning", "TelemetryCleanupFailed", message, now)
        )
        raise StoreError(message) from None
    message = "deleted the line's telemetry: " + ", ".join(f"{t} {n}" for t, n in counts.items())
    await events.post(ctx.kube, events.build(obj, KIND, "Normal", "TelemetryDeleted", message, now))
    patch = {
        "metadata": {
            "finalizers": [f for f in finalizers if f != FINALIZER],
            "resourceVersion": meta["resourceVersion"],
        }
    }
    try:
        await ctx.kube.merge_patch(KIND, namespace, name, patch)
    except ApiError as exc:
        if not exc.not_found:
            raise
    return None
