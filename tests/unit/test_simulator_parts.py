"""The simulator's collaborators, driven directly: no threads, no database, the clock passed in."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from prometheus_client import CollectorRegistry

from workloads.sample import Reading
from workloads.simulator.delivery import PartitionCoverage
from workloads.simulator.generator import build_chunk, values_of
from workloads.simulator.metrics import SimulatorMetrics
from workloads.simulator.pacing import Schedule, to_micros
from workloads.simulator.quarantine import QuarantineReader

T0 = datetime(2031, 3, 4, 23, 59, 59, tzinfo=UTC)


class TickSource:
    """Readings derived from (unit, tick); unit 5 has none (a tester with no data)."""

    def reading(self, unit_id: int, tick: int) -> Reading | None:
        if unit_id == 5:
            return None
        return Reading(
            unit_id, tick + 1, (0.0, 0.0, 100.0), tuple(float(unit_id * 100 + tick) for _ in range(21))
        )


def test_a_chunk_is_the_schedule_in_order_with_quarantined_units_skipped_and_counted() -> None:
    units = (1, 3, 5, 7)
    sched = Schedule(units, 2.0, to_micros(T0))
    asked: list[int] = []

    def quarantined_at(tick: int) -> frozenset[int]:
        asked.append(tick)
        return frozenset({3}) if tick == 1 else frozenset()

    # samples 2..9: the second half of tick 0, all of tick 1, the first half of tick 2
    rows, skipped = build_chunk("l", units, sched, values_of(TickSource()), 2, 10, quarantined_at)
    assert asked == [0, 1, 2]
    assert skipped == 1  # unit 3 in tick 1
    expected = [
        ("l", sched.unit(k), sched.tick(k) + 1, sched.ts(k))
        for k in range(2, 10)
        if sched.unit(k) != 5 and not (sched.unit(k) == 3 and sched.tick(k) == 1)
    ]
    assert [r[:4] for r in rows] == expected
    for r in rows:  # the reading of (unit, tick) whole: settings, then sensors
        unit, cycle = r[1], r[2]
        assert isinstance(unit, int) and isinstance(cycle, int)
        assert r[4:] == (0.0, 0.0, 100.0) + (float(unit * 100 + cycle - 1),) * 21


def test_an_empty_range_builds_nothing_and_asks_nothing() -> None:
    sched = Schedule((0,), 1.0, to_micros(T0))
    asked: list[int] = []

    def quarantined(t: int) -> frozenset[int]:
        asked.append(t)
        return frozenset()

    assert build_chunk("l", (0,), sched, values_of(TickSource()), 4, 4, quarantined) == ([], 0)
    assert asked == []


def test_partition_coverage_is_trusted_only_after_it_is_recorded_and_until_forgotten() -> None:
    coverage = PartitionCoverage(days_ahead=2)
    lo, hi = T0, T0 + timedelta(seconds=2)  # straddles midnight
    assert not coverage.covers(lo, hi)
    start, end = coverage.span(lo, hi, now=T0 - timedelta(days=1))
    assert (start, end) == (lo, hi + timedelta(days=2))
    # a clock ahead of the samples pushes the horizon, never the start
    assert coverage.span(lo, hi, now=T0 + timedelta(days=5)) == (lo, T0 + timedelta(days=7))
    coverage.record(start, end)
    assert coverage.covers(lo, hi)
    assert coverage.covers(datetime(2031, 3, 4, tzinfo=UTC), hi)  # from midnight of lo's day
    assert not coverage.covers(lo - timedelta(days=1), hi)  # never reaches back before lo's day
    assert coverage.covers(lo, end - timedelta(days=1))
    assert not coverage.covers(lo, end - timedelta(hours=23))  # the last day is renewed a day early
    coverage.forget()
    assert not coverage.covers(lo, hi)


def _gauge(registry: CollectorRegistry) -> float | None:
    return registry.get_sample_value("dynoline_simulator_quarantined_units", {"line": "l", "shard": "1"})


def test_quarantine_counts_and_exports_only_this_shards_units() -> None:
    metrics = SimulatorMetrics("l", 1)
    reader = QuarantineReader("postgresql://unused", "l", frozenset({1, 4, 7}), metrics, threading.Event())
    assert reader.mine == 0
    reader.apply(frozenset({2, 4, 9}))  # units 2 and 9 belong to other shards
    assert reader.current == frozenset({2, 4, 9})
    assert (reader.mine, _gauge(metrics.registry)) == (1, 1.0)
    reader.apply(frozenset({1, 4, 7}))
    assert (reader.mine, _gauge(metrics.registry)) == (3, 3.0)
    reader.apply(frozenset())
    assert (reader.mine, _gauge(metrics.registry)) == (0, 0.0)
