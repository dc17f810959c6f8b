"""Fault injection and the source factory: faults touch only their unit, only from their start on."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workloads.api import line as api
from workloads.catalog import sensor
from workloads.errors import DynolineError
from workloads.sample import Reading
from workloads.sources import Source
from workloads.sources.cmapss import CmapssSource, load_builtin
from workloads.sources.factory import build_source
from workloads.sources.faults import FaultedSource, ThermalRunaway, from_specs
from workloads.sources.synthetic import SyntheticSource

T24, T30, T50 = (sensor(n).index - 1 for n in ("T24", "T30", "T50"))


def fault(unit: int = 3, start_after: str = "60s", ramp: float = 30.0) -> api.Fault:
    return api.Fault(unit=unit, start_after=start_after, ramp_per_minute=ramp)


@pytest.mark.parametrize(
    ("start_after", "ramp", "rate_hz", "start_tick", "per_tick"),
    [
        ("60s", 30.0, 1.0, 60, 0.5),
        ("60s", 30.0, 2.0, 120, 0.25),
        ("1m", 30.0, 0.5, 30, 1.0),
        ("1500ms", 6.0, 1.0, 2, 0.1),  # a start between two ticks takes effect on the next one
        ("10s", 60.0, 0.1, 1, 10.0),
    ],
)
def test_spec_to_ticks(
    start_after: str, ramp: float, rate_hz: float, start_tick: int, per_tick: float
) -> None:
    built = ThermalRunaway.from_spec(fault(start_after=start_after, ramp=ramp), rate_hz)
    assert built.unit == 3
    assert built.start_tick == start_tick
    assert built.ramp_per_tick == pytest.approx(per_tick)


@pytest.mark.parametrize("rate_hz", [0.0, -1.0, float("nan"), float("inf")])
def test_bad_rate_is_refused(rate_hz: float) -> None:
    with pytest.raises(DynolineError, match="rate must be a positive number"):
        from_specs([fault()], rate_hz)
    with pytest.raises(DynolineError, match="rate must be a positive number"):
        build_source(api.SyntheticSource(type="synthetic", seed=42), [], rate_hz)


def test_thermal_runaway_only_after_start_and_only_hot_section() -> None:
    inner = SyntheticSource(seed=9)
    runaway = ThermalRunaway(unit=3, start_tick=100, ramp_per_tick=0.5)
    source = FaultedSource(inner, [runaway])
    for tick in range(0, 400):
        plain, hot = inner.reading(3, tick), source.reading(3, tick)
        assert hot is not None
        if tick < 100:
            assert hot == plain
            continue
        offset = 0.5 * (tick - 100 + 1)
        assert hot.sensors[T50] == pytest.approx(plain.sensors[T50] + offset)
        assert hot.sensors[T30] == pytest.approx(plain.sensors[T30] + offset)
        assert hot.sensors[T24] == pytest.approx(plain.sensors[T24] + 0.25 * offset)
        others = [j for j in range(21) if j not in (T24, T30, T50)]
        assert [hot.sensors[j] for j in others] == [plain.sensors[j] for j in others]
        assert (hot.unit_id, hot.cycle, hot.settings) == (plain.unit_id, plain.cycle, plain.settings)


def test_faults_on_one_unit_add_up_and_leave_others_alone() -> None:
    inner = SyntheticSource(seed=9)
    source = FaultedSource(inner, [ThermalRunaway(5, 10, 1.0), ThermalRunaway(5, 20, 2.0)])
    at_30 = source.reading(5, 30)
    assert at_30 is not None
    assert at_30.sensors[T50] == pytest.approx(inner.reading(5, 30).sensors[T50] + 21 * 1.0 + 11 * 2.0)
    for unit in (0, 4, 6, 100_005):
        assert all(source.reading(unit, t) == inner.reading(unit, t) for t in range(0, 300, 7))


def test_a_failed_non_looping_unit_stays_failed_under_a_fault() -> None:
    inner = CmapssSource(load_builtin(), loop=False)
    source = FaultedSource(inner, [ThermalRunaway(0, 0, 1.0)])
    assert source.reading(0, 191) is not None  # engine 1 has 192 cycles
    assert source.reading(0, 192) is None


# No deadline: each example loads the built-in dataset, and tests check behaviour, not speed.
@settings(deadline=None)
@given(unit=st.integers(0, 20), tick=st.integers(0, 5_000))
def test_property_fault_changes_only_its_unit_after_start(unit: int, tick: int) -> None:
    inner = CmapssSource(load_builtin())
    source = FaultedSource(inner, [ThermalRunaway(7, 1_000, 0.2)])
    changed = source.reading(unit, tick) != inner.reading(unit, tick)
    assert changed == (unit == 7 and tick >= 1_000)


def test_factory_builds_each_source_kind() -> None:
    replay = build_source(api.CmapssSource(type="cmapss"), [], 1.0)
    assert isinstance(replay, CmapssSource) and replay.loop
    assert replay.reading(1, 0) == _expected_cmapss(1, 0)
    assert build_source(api.CmapssSource(type="cmapss", loop=False), [], 1.0).reading(0, 192) is None
    test_split = build_source(api.CmapssSource(type="cmapss", split="test"), [], 1.0)
    assert isinstance(test_split, CmapssSource)
    assert test_split.trajectories is load_builtin("FD001", "test")
    synthetic = build_source(api.SyntheticSource(type="synthetic", seed=5), [], 1.0)
    assert isinstance(synthetic, SyntheticSource) and synthetic.seed == 5
    assert synthetic.reading(3, 3) == SyntheticSource(5).reading(3, 3)


def test_factory_shares_the_builtin_dataset() -> None:
    a = build_source(api.CmapssSource(type="cmapss"), [], 1.0)
    b = build_source(api.CmapssSource(type="cmapss"), [], 2.0)
    assert isinstance(a, CmapssSource) and isinstance(b, CmapssSource)
    assert a.trajectories is b.trajectories


def test_factory_applies_faults_from_the_line_spec() -> None:
    spec = api.DynoLineSpec.model_validate(
        {
            "units": 10,
            "rateHz": 2.0,
            "source": {"type": "synthetic", "seed": 1},
            "faults": [{"unit": 4, "startAfter": "30s", "rampPerMinute": 60}],
            "database": {"secretRef": {"name": "db"}},
        }
    )
    source: Source = build_source(spec.source, spec.faults, spec.rate_hz)
    plain = SyntheticSource(1)
    assert source.reading(4, 59) == plain.reading(4, 59)  # 30 s at 2 Hz: tick 60 is the first faulty one
    hot = source.reading(4, 60)
    assert hot is not None
    assert hot.sensors[T50] == pytest.approx(plain.reading(4, 60).sensors[T50] + 0.5)
    assert source.reading(3, 60) == plain.reading(3, 60)


def _expected_cmapss(unit: int, tick: int) -> Reading:
    row = load_builtin()[unit % 100 + 1][tick]
    return Reading(unit, row.cycle, row.settings, row.sensors)
