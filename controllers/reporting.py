"""Writing a custom resource's status: conditions merged, written only when changed, Events on changes."""

from __future__ import annotations

from typing import Any, TypeVar

from controllers import conditions, events
from controllers.conditions import DEGRADED, PROGRESSING, READY, Observed
from controllers.context import Context
from workloads.api.status import Condition, DynoLineStatus, SentinelRuleStatus

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
    await _post_transitions(ctx, kind, obj, previous.conditions, merged)
    return new


def invalid_spec(message: str, reason: str = "InvalidSpec") -> list[Observed]:
    """Not Ready, not Progressing, Degraded: nothing happens until the spec changes."""
    return [
        Observed(READY, "False", reason, message),
        Observed(PROGRESSING, "False", reason, message),
        Observed(DEGRADED, "True", reason, message),
    ]


async def reject(
    ctx: Context, kind: str, controller: str, obj: dict[str, Any], previous: S, message: str
) -> S:
    """Report a spec the operator cannot act on (the rest of the status is kept as it was)."""
    return await write_status(
        ctx, kind, controller, obj, previous, previous.model_copy(), invalid_spec(message)
    )


async def _post_transitions(
    ctx: Context, kind: str, obj: dict[str, Any], before: list[Condition], after: list[Condition]
) -> None:
    """One Event when Ready flips (Warning if it went false because something is wrong), and one when
    Degraded turns true for a reason the Ready event did not already give."""
    changes = {c.type: c for c in conditions.transitions(before, after)}
    degraded = conditions.find(after, DEGRADED)
    troubled = degraded is not None and degraded.status == "True"
    now = ctx.clock()
    ready = changes.get(READY)
    if ready is not None:
        type_ = "Normal" if ready.new == "True" or not troubled else "Warning"
        message = f"Ready is {ready.new}: {ready.message}".rstrip(": ")
        await events.post(ctx.kube, events.build(obj, kind, type_, ready.reason, message, now))
    worse = changes.get(DEGRADED)
    if worse is not None and worse.new == "True" and (ready is None or ready.reason != worse.reason):
        message = f"Degraded: {worse.message}".rstrip(": ")
        await events.post(ctx.kube, events.build(obj, kind, "Warning", worse.reason, message, now))
