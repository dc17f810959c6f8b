"""Micro-batching: rows leave for the database when a batch is full or its oldest row has waited long enough.

Pure bookkeeping with the clock passed in, so size and latency flushing are tested without sleeping.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

Row = tuple[object, ...]


class Batcher:
    """Collects rows into batches of at most `max_rows`, none older than `max_latency` seconds."""

    def __init__(self, max_rows: int, max_latency: float) -> None:
        if max_rows < 1:
            raise ValueError(f"max_rows must be ≥ 1, got {max_rows}")
        if not (math.isfinite(max_latency) and max_latency >= 0):
            raise ValueError(f"max_latency must be a finite number ≥ 0, got {max_latency}")
        self.max_rows = max_rows
        self.max_latency = max_latency
        self._rows: list[Row] = []
        self._oldest: float | None = None

    def __len__(self) -> int:
        return len(self._rows)

    def add(self, rows: Sequence[Row], born: float) -> list[list[Row]]:
        """Take rows generated at monotonic time `born`; returns the batches that are now full."""
        full: list[list[Row]] = []
        if not rows:
            return full
        if self._oldest is None or born < self._oldest:
            self._oldest = born
        self._rows.extend(rows)
        while len(self._rows) >= self.max_rows:
            full.append(self._rows[: self.max_rows])
            del self._rows[: self.max_rows]
            # what remains arrived with (or after) the rows just cut; `born` is a safe upper bound on its age
            self._oldest = born if self._rows else None
        return full

    def deadline(self) -> float | None:
        """When the pending rows must leave, or None when nothing is pending."""
        return None if self._oldest is None else self._oldest + self.max_latency

    def due(self, now: float) -> list[Row] | None:
        """The pending rows if their latency bound has been reached."""
        deadline = self.deadline()
        if deadline is None or now < deadline:
            return None
        return self.flush()

    def flush(self) -> list[Row] | None:
        """Whatever is pending, regardless of age (shutdown)."""
        if not self._rows:
            return None
        rows, self._rows, self._oldest = self._rows, [], None
        return rows
