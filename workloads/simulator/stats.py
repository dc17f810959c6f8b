"""What a run reports: the running counts both loops add to, the final RunStats and the live Progress."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass
class Counts:
    """Running totals. Each field has one writer thread (the generator or the writer), read by anyone."""

    generated: int = 0
    written: int = 0  # committed by COPY or by replay (not counting `recovered`)
    spooled: int = 0
    replayed: int = 0
    recovered: int = 0  # replayed from a previous run's spool at start
    skipped: int = 0  # not generated: the unit was quarantined
    errors: int = 0  # batches the database refused
    batches: int = 0  # committed batches
    lost: int = 0  # neither stored nor spooled: stopped while the database and the spool were both failing


@dataclass
class RunStats:
    """What a run did: `generated == written + lost + spool_rows`; 0 lost and 0 spooled means all stored."""

    line: str
    shard: int
    units: int
    elapsed_s: float
    generated: int
    written: int
    spooled: int
    replayed: int
    recovered: int  # rows replayed from a previous run's spool at start
    skipped_quarantined: int
    write_errors: int
    batches: int
    lost: int  # generated, then dropped on the way out: neither the database nor the spool took them
    spool_rows: int
    queue_high_water: int
    queue_bound: int
    queue_blocked_s: float
    lag: dict[str, float | int | None]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Progress:
    """A live snapshot for the demo's progress line (lag over the window since the previous snapshot)."""

    elapsed_s: float
    generated: int
    written: int
    queue_rows: int
    spool_rows: int
    quarantined: int
    database_up: bool
    lag_p50_s: float | None
    lag_p99_s: float | None
