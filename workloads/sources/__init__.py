"""Where readings come from: C-MAPSS replay or the synthetic damage-propagation model, plus injected faults.

A source is random-access by (unit, tick) so that any shard can produce any of its units at any
tick without replaying the others, and so that a restarted simulator resumes deterministically.
"""

from __future__ import annotations

from typing import Protocol

from workloads.sample import Reading


class Source(Protocol):
    def reading(self, unit_id: int, tick: int) -> Reading | None:
        """The reading of `unit_id` at `tick` (0-based sample number).

        None once a unit that does not loop has run to failure.
        """
        ...
