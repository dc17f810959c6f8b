"""Generation-to-commit lag percentiles for run summaries, the demo's progress line and the benchmark.

Prometheus' histogram buckets are too coarse to state a p99 against a 100 ms target, so this keeps a
log-bucketed histogram with 2% wide buckets from 0.1 ms up: constant memory however long the run,
percentiles within about 1%.

A batch is committed at one instant, so its lags are `committed - ts` for every row: with the batch's
timestamps sorted, how many lags fall at or below any edge is one bisection (`record_stamps`,
`at_most`). That prices a batch by the buckets it spans rather than by its rows, which matters when
the writer commits hundreds of thousands of rows a second.
"""

from __future__ import annotations

import math
import threading
from bisect import bisect_left
from collections.abc import Iterable, Sequence
from itertools import chain, repeat
from operator import neg

from workloads.quantile import rank

_BASE = 1e-4  # seconds; everything at or below lands in bucket 0
_GROWTH = 1.02
_BUCKETS = 1200  # 0.1 ms · 1.02^1200 ≈ 2e6 s: nothing real is longer
# bucket i holds lags in (_UPPER[i-1], _UPPER[i]]; the last one also everything longer
_UPPER = tuple(_BASE * _GROWTH**i for i in range(_BUCKETS))
_LAST = _BUCKETS - 1


def at_most(committed: float, stamps: Sequence[float], edges: Iterable[float]) -> list[int]:
    """For each edge e, how many rows of a batch committed at `committed` have a lag ≤ e.

    `stamps` are the rows' generation times (epoch seconds), sorted ascending.
    """
    n = len(stamps)
    out: list[int] = []
    for e in edges:
        # `committed - e` is rounded (stamps are ~1e9 s): settle the rows next to it by their exact lag
        i = bisect_left(stamps, committed - e)
        while i > 0 and committed - stamps[i - 1] <= e:
            i -= 1
        while i < n and committed - stamps[i] > e:
            i += 1
        out.append(n - i)
    return out


def lag_sum(committed: float, stamps: Sequence[float]) -> float:
    """Σ (committed - t) over `stamps`, summed exactly (n·committed alone would round to milliseconds)."""
    return math.fsum(chain(repeat(committed, len(stamps)), map(neg, stamps)))


class LagHistogram:
    def __init__(self) -> None:
        self._counts = [0] * _BUCKETS
        self.count = 0
        self.total = 0.0
        self.max = 0.0
        self._lock = threading.Lock()

    def record(self, lags: Iterable[float]) -> None:
        indices: list[int] = []
        total = 0.0
        top = 0.0
        for lag in lags:
            total += lag
            if lag > top:
                top = lag
            indices.append(min(_LAST, bisect_left(_UPPER, lag)))
        with self._lock:
            counts = self._counts
            for i in indices:
                counts[i] += 1
            self.count += len(indices)
            self.total += total
            self.max = max(self.max, top)

    def record_stamps(self, committed: float, stamps: Sequence[float]) -> None:
        """Record the lags `committed - t` of a batch whose generation times `stamps` are sorted ascending."""
        n = len(stamps)
        if not n:
            return
        low = min(_LAST, bisect_left(_UPPER, committed - stamps[-1]))
        high = min(_LAST, bisect_left(_UPPER, committed - stamps[0]))
        if high - low >= n:  # spread over more buckets than it has rows: row by row is cheaper
            self.record([committed - t for t in stamps])
            return
        below = at_most(committed, stamps, _UPPER[low:high])
        total = lag_sum(committed, stamps)
        with self._lock:
            counts = self._counts
            seen = 0
            for i, upto in enumerate(below, start=low):
                counts[i] += upto - seen
                seen = upto
            counts[high] += n - seen
            self.count += n
            self.total += total
            self.max = max(self.max, committed - stamps[0])

    def take(self) -> LagHistogram:
        """A copy of what was recorded so far, leaving this one empty (for per-interval percentiles)."""
        taken = LagHistogram()
        with self._lock:
            taken._counts, self._counts = self._counts, [0] * _BUCKETS
            taken.count, taken.total, taken.max = self.count, self.total, self.max
            self.count, self.total, self.max = 0, 0.0, 0.0
        return taken

    def percentile(self, q: float) -> float | None:
        """The nearest-rank q-quantile (`workloads.quantile`) in seconds, as its bucket's upper edge."""
        if not 0 < q <= 1:
            raise ValueError(f"quantile must be in (0, 1], got {q}")
        with self._lock:
            if not self.count:
                return None
            wanted = rank(q, self.count)
            seen = 0
            for i, c in enumerate(self._counts):
                seen += c
                if seen >= wanted:
                    return min(self.max, _UPPER[i])
        return self.max

    def mean(self) -> float | None:
        return self.total / self.count if self.count else None

    def summary(self) -> dict[str, float | int | None]:
        return {
            "count": self.count,
            "p50_s": self.percentile(0.5),
            "p99_s": self.percentile(0.99),
            "max_s": self.max if self.count else None,
            "mean_s": self.mean(),
        }
