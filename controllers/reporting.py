"""Writing a custom resource's status: conditions merged, written only when changed, Events on changes."""

from __future__ import annotations

from typing import Any, TypeVar

from controllers import conditions, events
from controllers.conditions import DEGRADED, READY, Observed
from controllers.context import Context
from workloads.api.status import DynoLineStatus, SentinelRuleStatus

S = TypeVar("S", DynoLineStatus, SentinelRuleStatus)


async def write_status(
    ctx: Context,
    kind: str,
    controller: str,
    obj: dict[str, Any],
    previous: S,
    status: S,
    observed: list[Observed],
) -> S:
    """Patch `status` (with merged conditions) if it differs from `previous`; post Events for transitions
    of Ready, and of Degraded to True. Returns the status as written."""
    meta = obj["metadata"]
    merged = conditions.merge(previous.conditions, observed, meta.get("generation"), ctx.clock())
    ready = conditions.find(merged, READY)
    new = status.model_copy(
        update={
            "observed_generation": meta.get("generation"),
            "conditions": merged,
            "state": ready.reason if ready else None,
        }
    )
    before = previous.model_dump(mode="json", by_alias=True, exclude_none=True)
    after = new.model_dump(mode="json", by_alias=True, exclude_none=True)
    ctx.metrics.set_state(controller, (meta["namespace"], meta["name"]), new.state)
    if before != after:
        ctx.metrics.status_updates.labels(controller).inc()
        try:
            written = await ctx.kube.merge_patch(
                kind, meta["namespace"], meta["name"], {"status": after}, subresource="status"
            )
        except Exception:
            ctx.metrics.status_update_errors.labels(controller).inc()
            raise
        ctx.writes.record(written)
    now = ctx.clock()
    for change in conditions.transitions(previous.conditions, merged):
        if change.type == READY or (change.type == DEGRADED and change.new == "True"):
            message = f"{change.type} is {change.new}: {change.message}".rstrip(": ")
            event = events.build(obj, kind, events.event_type(change), change.reason, message, now)
            await events.post(ctx.kube, event)
    return new
