"""Synthetic fleet: calibrated on FD001, deterministic per seed, degrading over each life, any size."""

from __future__ import annotations

import itertools
import math
import random
import statistics
from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workloads.catalog import SENSOR_NAMES, sensor
from workloads.sample import Reading
from workloads.sources.cmapss import load_builtin
from workloads.sources.synthetic import FD001, SyntheticSource, calibrate

CONSTANT_IN_FD001 = ("T2", "P2", "epr", "farB", "Nf_dmd", "PCNfR_dmd")
MOVING_IN_FD001 = (
    "T24", "T30", "T50", "P30", "Nf", "Nc", "Ps30", "phi", "NRf", "NRc", "BPR", "htBleed", "W31", "W32",
)  # fmt: skip


def idx(name: str) -> int:
    return sensor(name).index - 1


def lives(source: SyntheticSource, unit: int, count: int) -> list[list[Reading]]:
    """The first `count` complete lives of `unit`, reading tick after tick."""
    out: list[list[Reading]] = []
    tick = 0
    for _ in range(count):
        life = source.life(unit, tick)
        out.append([source.reading(unit, t) for t in range(life.start_tick, life.start_tick + life.length)])
        tick = life.start_tick + life.length
    return out


def early_noise(trajectories: Sequence[Sequence[Reading]], j: int, cycles: int = 50) -> float:
    """Pooled within-trajectory std over the first cycles, where wear has barely moved."""
    squares, dof = 0.0, 0
    for rows in trajectories:
        early = [r.sensors[j] for r in rows[:cycles]]
        mean = statistics.fmean(early)
        squares += sum((x - mean) ** 2 for x in early)
        dof += len(early) - 1
    return math.sqrt(squares / dof)


def late_minus_early(trajectories: Sequence[Sequence[Reading]], j: int) -> float:
    """Mean over the last tenth of each life minus mean over the first tenth."""
    early, late = [], []
    for rows in trajectories:
        tenth = max(1, len(rows) // 10)
        early += [r.sensors[j] for r in rows[:tenth]]
        late += [r.sensors[j] for r in rows[-tenth:]]
    return statistics.fmean(late) - statistics.fmean(early)


@pytest.fixture(scope="module")
def fd001() -> list[list[Reading]]:
    return [list(rows) for rows in load_builtin().values()]


@pytest.fixture(scope="module")
def fleet() -> list[list[Reading]]:
    """120 synthetic lives (40 units x 3 lives), about as many as FD001 train has engines."""
    source = SyntheticSource(seed=7)
    return [life for unit in range(40) for life in lives(source, unit, 3)]


def test_constants_are_the_fd001_calibration() -> None:
    fresh = calibrate(load_builtin())
    for field in ("baseline", "shift", "noise", "setting_mean", "setting_noise"):
        assert getattr(FD001, field) == pytest.approx(getattr(fresh, field), rel=1e-6, abs=1e-12), field
    for field in ("max_initial_wear", "curvature", "life_mean", "life_std"):
        assert getattr(FD001, field) == pytest.approx(getattr(fresh, field), rel=1e-6), field
    assert len(FD001.baseline) == len(FD001.shift) == len(FD001.noise) == len(SENSOR_NAMES)


def test_calibration_matches_fd001_channels(fd001: list[list[Reading]]) -> None:
    for name in CONSTANT_IN_FD001:
        j = idx(name)
        assert {r.sensors[j] for rows in fd001 for r in rows} == {FD001.baseline[j]}
        assert FD001.shift[j] == 0.0 and FD001.noise[j] == 0.0
    for name in MOVING_IN_FD001:
        j = idx(name)
        fd001_trend = late_minus_early(fd001, j)
        assert abs(fd001_trend) > FD001.noise[j] / 2, name
        assert math.copysign(1, FD001.shift[j]) == math.copysign(1, fd001_trend), name


def test_same_seed_same_values_different_seed_different() -> None:
    a, b, c = SyntheticSource(seed=42), SyntheticSource(seed=42), SyntheticSource(seed=43)
    points = [(u, t) for u in (0, 1, 17, 99_999) for t in (0, 1, 250, 10**6)]
    assert [a.reading(u, t) for u, t in points] == [b.reading(u, t) for u, t in points]
    differing = [u_t for u_t in points if a.reading(*u_t).sensors != c.reading(*u_t).sensors]
    assert len(differing) == len(points)
    # neighbouring units and ticks are not copies of each other either
    assert a.reading(0, 5).sensors != a.reading(1, 5).sensors
    assert a.reading(0, 5).sensors != a.reading(0, 6).sensors


def test_random_access_equals_sequential_replay() -> None:
    sequential = SyntheticSource(seed=3)
    expected = {(u, t): sequential.reading(u, t) for u in range(3) for t in range(700)}
    keys = list(expected)
    random.Random(1).shuffle(keys)
    shuffled = SyntheticSource(seed=3)
    assert {k: shuffled.reading(*k) for k in keys} == expected


def test_degradation_rises_over_each_life(fleet: list[list[Reading]], fd001: list[list[Reading]]) -> None:
    for name in MOVING_IN_FD001:
        j = idx(name)
        if FD001.shift[j] == 0.0:
            continue
        ours, theirs = late_minus_early(fleet, j), late_minus_early(fd001, j)
        assert ours == pytest.approx(theirs, rel=0.15), name
    t50 = idx("T50")
    assert late_minus_early(fleet, t50) > 5 * FD001.noise[t50]


def test_noise_close_to_fd001(fleet: list[list[Reading]], fd001: list[list[Reading]]) -> None:
    for name in ("T24", "T30", "T50", "P30", "Ps30", "phi", "BPR", "htBleed", "W31", "W32"):
        j = idx(name)
        assert early_noise(fleet, j) == pytest.approx(early_noise(fd001, j), rel=0.1), name


def test_constant_channels_and_settings(fleet: list[list[Reading]]) -> None:
    rows = [r for life in fleet for r in life]
    for name in CONSTANT_IN_FD001:
        j = idx(name)
        assert {r.sensors[j] for r in rows} == {FD001.baseline[j]}
    assert {r.settings[2] for r in rows} == {100.0}
    for i in (0, 1):
        assert statistics.pstdev(r.settings[i] for r in rows) == pytest.approx(
            FD001.setting_noise[i], rel=0.1
        )


def test_lives_restart_with_new_wear_and_fd001_like_lengths() -> None:
    source = SyntheticSource(seed=11)
    lengths = []
    for unit in range(60):
        tick = 0
        for expected_index in range(5):
            life = source.life(unit, tick)
            assert life.index == expected_index
            assert life.cycle == 1 and life.start_tick == tick
            assert 0.0 <= life.initial_wear == life.wear <= FD001.max_initial_wear
            last = source.life(unit, tick + life.length - 1)
            assert last.cycle == last.length and last.remaining == 0
            assert 0.85 < last.wear < 1.0  # failure (wear 1) is the next cycle, the first of a new life
            assert source.reading(unit, tick + life.length - 1).cycle == life.length
            assert source.reading(unit, tick + life.length).cycle == 1
            lengths.append(life.length)
            tick += life.length
    assert statistics.fmean(lengths) == pytest.approx(FD001.life_mean, rel=0.05)
    assert statistics.pstdev(lengths) == pytest.approx(FD001.life_std, rel=0.15)
    assert source.life(0, 0).start_tick == 0  # every unit starts a fresh life at tick 0


def test_wear_follows_the_exponential_model() -> None:
    source = SyntheticSource(seed=5)
    first = source.life(9, 0)
    wear = [source.life(9, t).wear for t in range(first.length)]
    steps = [b - a for a, b in itertools.pairwise(wear)]
    assert all(s > 0 for s in steps)
    assert all(b > a for a, b in itertools.pairwise(steps))  # accelerating: exponential


def test_refuses_negative_tick() -> None:
    with pytest.raises(ValueError, match="tick"):
        SyntheticSource().reading(0, -1)
    with pytest.raises(ValueError, match="tick"):
        SyntheticSource().life(0, -1)


def test_huge_fleet_needs_no_precomputation() -> None:
    source = SyntheticSource(seed=1)
    readings = [source.reading(u, 86_400 * 30) for u in range(0, 100_000, 97)]
    assert len({r.sensors for r in readings}) == len(readings)
    assert all(r.cycle >= 1 for r in readings)


@settings(max_examples=200)
@given(seed=st.integers(0, 2**31 - 1), unit=st.integers(0, 99_999), tick=st.integers(0, 10**10))
def test_any_unit_and_tick_gives_finite_sensors(seed: int, unit: int, tick: int) -> None:
    source = SyntheticSource(seed)
    reading = source.reading(unit, tick)
    life = source.life(unit, tick)
    assert reading.unit_id == unit
    assert reading.cycle == life.cycle
    assert 1 <= life.cycle <= life.length
    assert 0.0 <= life.wear < 1.0
    assert len(reading.settings) == 3 and len(reading.sensors) == 21
    assert all(math.isfinite(v) for v in (*reading.settings, *reading.sensors))
    assert reading == SyntheticSource(seed).reading(unit, tick)
