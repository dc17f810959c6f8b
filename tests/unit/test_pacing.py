from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest

from workloads.simulator.pacing import (
    Schedule,
    backfill_start_us,
    from_micros,
    horizon_index,
    run_start_us,
    shard_units,
    to_micros,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def test_units_are_dealt_round_robin_over_shards() -> None:
    shards = [shard_units(10, k, 3) for k in range(3)]
    assert shards == [(0, 3, 6, 9), (1, 4, 7), (2, 5, 8)]
    assert sorted(u for s in shards for u in s) == list(range(10))


def test_phases_spread_evenly_over_the_tick() -> None:
    s = Schedule((0, 1, 2, 3), rate_hz=2.0, start_us=to_micros(T0))
    # 4 units at 2 Hz: a sample every 1/8 s, unit slots cycling, one tick per 4 samples
    assert [s.offset(k) for k in range(6)] == [0.0, 0.125, 0.25, 0.375, 0.5, 0.625]
    assert [(s.tick(k), s.unit(k)) for k in range(6)] == [(0, 0), (0, 1), (0, 2), (0, 3), (1, 0), (1, 1)]
    assert s.ts(5) == T0 + timedelta(milliseconds=625)


def test_each_unit_ticks_at_the_rate() -> None:
    s = Schedule((7, 9, 11), rate_hz=4.0, start_us=to_micros(T0))
    unit_9 = [s.ts(k) for k in range(30) if s.unit(k) == 9]
    gaps = {b - a for a, b in itertools.pairwise(unit_9)}
    assert gaps == {timedelta(milliseconds=250)}


def test_due_through_counts_samples_due() -> None:
    s = Schedule((0, 1), rate_hz=1.0, start_us=0)
    assert s.due_through(-0.1) == 0
    assert s.due_through(0.0) == 1  # sample 0 is due at the start
    assert s.due_through(0.49) == 1
    assert s.due_through(0.5) == 2
    assert s.due_through(10.0) == 21


def test_timestamps_are_whole_microseconds_and_reproducible() -> None:
    s = Schedule(tuple(range(7)), rate_hz=3.0, start_us=to_micros(T0) + 1)
    again = Schedule(tuple(range(7)), rate_hz=3.0, start_us=to_micros(T0) + 1)
    assert [s.ts(k) for k in range(100)] == [again.ts(k) for k in range(100)]
    assert all(to_micros(s.ts(k)) == s.ts_us(k) for k in range(100))
    assert from_micros(to_micros(T0)) == T0


def test_backfill_ends_at_now() -> None:
    start = backfill_start_us(T0, ticks=60, rate_hz=2.0)
    s = Schedule((0,), rate_hz=2.0, start_us=start)
    assert s.ts(0) == T0 - timedelta(seconds=30)
    assert s.ts(60) == T0


@pytest.mark.parametrize("rate", [0.0, -1.0, float("nan"), float("inf")])
def test_schedule_rejects_bad_rates(rate: float) -> None:
    with pytest.raises(ValueError, match="rate"):
        Schedule((0,), rate_hz=rate, start_us=0)


def test_schedule_needs_units() -> None:
    with pytest.raises(ValueError, match="at least one unit"):
        Schedule((), rate_hz=1.0, start_us=0)


@pytest.mark.parametrize(("units", "rate"), [(1000, 1.0), (7, 3.3), (3, 0.7), (1, 50.0)])
def test_stamps_are_the_timestamps_of_a_range(units: int, rate: float) -> None:
    s = Schedule(tuple(range(units)), rate, 1_780_000_000_123_457)
    for k0, k1 in [(0, 2500), (12_345, 14_999), (units - 1, units + 1), (5, 5)]:
        assert s.stamps(k0, k1) == [s.ts(k) for k in range(k0, k1)]


def test_a_run_starts_where_asked_else_ends_a_backfill_now_else_now() -> None:
    now = datetime(2031, 5, 6, 7, 8, 9, tzinfo=UTC)
    asked = datetime(2030, 1, 1, tzinfo=UTC)
    assert run_start_us(asked, False, 10, 2.0, now) == to_micros(asked)
    assert run_start_us(None, False, 10, 2.0, now) == to_micros(now) - 5_000_000
    assert run_start_us(None, True, 10, 2.0, now) == to_micros(now)


def test_partitions_are_made_for_the_whole_run_or_a_day_ahead() -> None:
    assert horizon_index(units=3, rate_hz=2.0, ticks=10) == 29
    assert horizon_index(units=3, rate_hz=2.0, ticks=None) == 86_400 * 2 * 3
