"""Standard conditions (Ready, Progressing, Degraded), kept the way Kubernetes tools expect them.

`lastTransitionTime` moves only when a condition's status changes; a new reason or message alone is an
update, not a transition. Transitions are what the operator turns into Events.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from workloads.api.status import Condition, ConditionStatus

READY = "Ready"
PROGRESSING = "Progressing"
DEGRADED = "Degraded"
ORDER = (READY, PROGRESSING, DEGRADED)


@dataclass(frozen=True)
class Observed:
    """What the reconciler concluded for one condition type."""

    type: str
    status: ConditionStatus
    reason: str
    message: str = ""


@dataclass(frozen=True)
class Transition:
    type: str
    old: ConditionStatus | None
    new: ConditionStatus
    reason: str
    message: str


def timestamp(now: datetime | None = None) -> str:
    """RFC 3339 in UTC with second precision, as the API server writes times."""
    moment = (now or datetime.now(UTC)).astimezone(UTC).replace(microsecond=0)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def merge(
    previous: Sequence[Condition], observed: Iterable[Observed], generation: int | None, now: datetime
) -> list[Condition]:
    """The new condition list: observed types updated, others kept; stable order for stable diffs."""
    by_type = {c.type: c for c in previous}
    for item in observed:
        old = by_type.get(item.type)
        moved = old is None or old.status != item.status
        by_type[item.type] = Condition(
            type=item.type,
            status=item.status,
            reason=item.reason,
            message=item.message[:32768],
            observed_generation=generation,
            last_transition_time=timestamp(now) if moved or old is None else old.last_transition_time,
        )
    ranked = sorted(by_type.values(), key=lambda c: (ORDER.index(c.type) if c.type in ORDER else 99, c.type))
    return ranked


def transitions(previous: Sequence[Condition], current: Sequence[Condition]) -> list[Transition]:
    """Status changes between two condition lists (a first appearance counts)."""
    before = {c.type: c.status for c in previous}
    return [
        Transition(c.type, before.get(c.type), c.status, c.reason, c.message)
        for c in current
        if before.get(c.type) != c.status
    ]


def find(conditions: Sequence[Condition], kind: str) -> Condition | None:
    return next((c for c in conditions if c.type == kind), None)
