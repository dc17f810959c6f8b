"""A synthetic fleet after the damage-propagation model of Saxena et al. 2008 (PHM08), any size, per seed.

The model (as in the paper, simplified to the one HPC fault mode of FD001):

* Each life of a unit starts with a random initial wear `d0 ~ U(0, D)` (manufacturing variation and
  prior use) and wears exponentially until the health margin `h(t) = 1 - w(t)` reaches 0, with
  ``w(t) = d0 + c * (exp(a * t) - 1)``, where `a = k / T` for a life of `T` cycles and a unit-specific
  curvature `k`, and `c = (1 - d0) / (exp(k) - 1)` so that `w(T) = 1`: failure. The tester then starts
  a new life (new engine, new wear), so a line runs forever.
* Each sensor responds linearly to wear, ``x_j = baseline_j + shift_j * w(t) + sigma_j * z``, with
  Gaussian noise `z`; settings 1-2 are small noise around 0 and setting 3 is 100 (FD001's single
  operating condition). Constant FD001 channels (T2, P2, epr, farB, Nf_dmd, PCNfR_dmd) have no shift and
  no noise.
* Optionally (`operating_points`, see `with_operating_points`), every cycle runs at one of several
  operating points, picked by a hash of (unit, tick) as FD002/FD004 pick one of six conditions per
  cycle: the point sets the three settings (plus their noise) and adds its own offset to every channel.

All constants are calibrated on FD001 train (NASA PCoE C-MAPSS, Saxena et al. 2008) by `calibrate`,
which documents how; `FD001` holds its result and a test recomputes it from the shipped data.

Every (unit, tick) is computed in O(1): a unit's lives are laid out by a counter-based hash
(splitmix64), so no trajectory is ever precomputed, and a 100,000-unit fleet costs nothing up front.
Life `i` of a unit starts at tick `i * P + o_i - o_0` with hashed offsets `o_i ~ U(0, J)`, which gives
lives of `P ± J` cycles (triangular, mean `P`, std `J / sqrt(6)`: FD001's mean and std of life).
Noise comes from a fixed pool of standard-normal vectors picked by a hash of (seed, unit, tick).
"""

from __future__ import annotations

import dataclasses
import functools
import math
import random
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from workloads.errors import DynolineError
from workloads.sample import Reading

N_SENSORS = 21
_M64 = (1 << 64) - 1
_POOL_BITS = 12  # 4096 noise vectors: plenty for i.i.d.-looking noise, ~3 MB
_POOL_SEED = 0x5EED_D1A0
_CURVATURE_SPREAD = 0.15  # each life's curvature is k * U(1 - s, 1 + s): unit-specific degradation rate

# Cycle windows used by `calibrate`.
EARLY_CYCLES = 50  # within-unit noise and unit-to-unit spread, while wear has barely moved
FIRST_CYCLES = 20  # "new" level
LAST_CYCLES = 5  # level at failure


@dataclass(frozen=True)
class OperatingPoint:
    settings: tuple[float, float, float]
    offset: tuple[float, ...]  # added to every channel's level at this point, catalogue order
    gain: tuple[float, ...]  # scales every channel's noise and response to wear at this point


@dataclass(frozen=True)
class Calibration:
    """Everything the model needs; sensor tuples are in catalogue order (T2 … W32)."""

    baseline: tuple[float, ...]  # sensor value at zero wear
    shift: tuple[float, ...]  # change from zero wear to failure (w = 1)
    noise: tuple[float, ...]  # Gaussian sigma per sensor
    setting_mean: tuple[float, float, float]
    setting_noise: tuple[float, float, float]
    max_initial_wear: float  # D: d0 ~ U(0, D)
    curvature: float  # k: how late in life wear takes off
    life_mean: float  # cycles
    life_std: float  # cycles
    operating_points: tuple[OperatingPoint, ...] = ()  # none: the single condition of setting_mean


# calibrate(load_builtin("FD001", "train")), rounded to 8 significant digits; test_synthetic recomputes it.
# sensor: (baseline at zero wear, shift from zero wear to failure, noise sigma)
_FD001_SENSORS: dict[str, tuple[float, float, float]] = {
    "T2": (518.67, 0.0, 0.0),
    "T24": (641.9887, 1.7634342, 0.30206425),
    "T30": (1582.1417, 21.131679, 4.0166867),
    "T50": (1394.8004, 35.793548, 3.9849831),
    "P2": (14.62, 0.0, 0.0),
    "P15": (21.609368, 0.00066338997, 0.0019168426),
    "P30": (554.69741, -3.3590306, 0.41003807),
    "Nf": (2388.0055, 0.23767826, 0.030299303),
    "Nc": (9043.2391, 57.427761, 4.2752653),
    "epr": (1.3, 0.0, 0.0),
    "Ps30": (47.112316, 1.0801972, 0.10201582),
    "phi": (522.5487, -2.873354, 0.30289983),
    "NRf": (2388.0017, 0.24313584, 0.030180782),
    "NRc": (8128.4038, 40.341708, 3.1269525),
    "BPR": (8.3872373, 0.1396732, 0.020152746),
    "farB": (0.03, 0.0, 0.0),
    "htBleed": (391.05032, 5.4432173, 0.94023879),
    "Nf_dmd": (2388.0, 0.0, 0.0),
    "PCNfR_dmd": (100.0, 0.0, 0.0),
    "W31": (39.080858, -0.66587255, 0.10023197),
    "W32": (23.448292, -0.39678441, 0.060357672),
}
FD001 = Calibration(
    baseline=tuple(v[0] for v in _FD001_SENSORS.values()),
    shift=tuple(v[1] for v in _FD001_SENSORS.values()),
    noise=tuple(v[2] for v in _FD001_SENSORS.values()),
    setting_mean=(-8.8701469e-06, 2.3508313e-06, 100.0),
    setting_noise=(0.0021872604, 0.00029305502, 0.0),
    max_initial_wear=0.43818145,
    curvature=4.0,
    life_mean=206.31,
    life_std=46.110453,
)


def _mix(x: int) -> int:
    """splitmix64's finaliser: a fast, well-spread 64-bit hash of an integer counter."""
    x = (x + 0x9E3779B97F4A7C15) & _M64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _M64
    return x ^ (x >> 31)


_UNIT = 0xD1B54A32D192ED03
_STEP = 0xABC98388FB8FAC03
_STREAM = 0x8CB92BA72F3D8DD7
_OFFSET, _WEAR, _CURVE, _NOISE, _POINT = 1, 2, 3, 4, 5
_TO_UNIT = 2.0**-53


@functools.cache
def _noise_pool(cal: Calibration) -> tuple[tuple[tuple[float, float, float], tuple[float, ...]], ...]:
    """Per pool entry: (settings, baseline + noise of each sensor); shift * wear is added per reading.

    The standard normals are re-standardised per channel so the pool's own mean and std are exact.
    """
    rng = random.Random(_POOL_SEED)
    size = 1 << _POOL_BITS
    columns: list[list[float]] = []
    for _ in range(2 + N_SENSORS):
        col = [rng.gauss(0.0, 1.0) for _ in range(size)]
        mean, std = statistics.fmean(col), statistics.pstdev(col)
        columns.append([(z - mean) / std for z in col])
    s1, s2, *sensor_cols = columns
    m1, m2, m3 = cal.setting_mean
    n1, n2, _ = cal.setting_noise
    return tuple(
        (
            (m1 + n1 * s1[i], m2 + n2 * s2[i], m3),
            tuple(b + n * col[i] for b, n, col in zip(cal.baseline, cal.noise, sensor_cols, strict=True)),
        )
        for i in range(size)
    )


@dataclass(frozen=True)
class Life:
    """Where a unit is at a tick: which life, how worn, how long it has left (ground truth for RUL)."""

    index: int
    start_tick: int
    length: int  # cycles from new to failure
    cycle: int  # 1-based cycle within this life
    initial_wear: float
    wear: float  # 0 = new, 1 = failed

    @property
    def remaining(self) -> int:
        """Cycles left after this one (0 on the last cycle), as C-MAPSS counts RUL."""
        return self.length - self.cycle


class SyntheticSource:
    """A deterministic synthetic fleet: `reading(unit, tick)` is a pure function of (seed, unit, tick)."""

    def __init__(self, seed: int = 42, calibration: Calibration = FD001) -> None:
        period = round(calibration.life_mean)
        jitter = round(calibration.life_std * math.sqrt(6))
        if not 0 < jitter < period:
            raise DynolineError(
                f"synthetic calibration: life std {calibration.life_std}"
                f" is too wide for life mean {calibration.life_mean}"
            )
        self.seed = seed
        self.calibration = calibration
        self._period = period
        self._jitter = jitter
        self._key = _mix(seed & _M64)
        self._shift = calibration.shift
        self._pool = _noise_pool(calibration)
        self._pool_mask = (1 << _POOL_BITS) - 1
        # unit -> (start, end, d0, c, a) of the life last asked about: the simulator asks tick after
        # tick, so one entry per unit turns the life lookup into a comparison.
        self._lives: dict[int, tuple[int, int, float, float, float]] = {}

    def _uniform(self, unit: int, step: int, stream: int) -> float:
        h = _mix((self._key + unit * _UNIT + step * _STEP + stream * _STREAM) & _M64)
        return (h >> 11) * _TO_UNIT

    def _offset(self, unit: int, life: int) -> int:
        return int(self._uniform(unit, life, _OFFSET) * self._jitter)

    def _locate(self, unit: int, tick: int) -> tuple[int, int, int]:
        """(life index, start tick, end tick) of the life containing `tick`."""
        period = self._period
        origin = self._offset(unit, 0)  # shifts the layout so life 0 starts at tick 0
        k = tick + origin
        index = k // period
        start = index * period + self._offset(unit, index)
        if start > k:
            index -= 1
            start = index * period + self._offset(unit, index)
        end = (index + 1) * period + self._offset(unit, index + 1)
        return index, start - origin, end - origin

    def _life_params(self, unit: int, index: int, length: int) -> tuple[float, float, float]:
        cal = self.calibration
        d0 = cal.max_initial_wear * self._uniform(unit, index, _WEAR)
        k = cal.curvature * (1.0 + _CURVATURE_SPREAD * (2.0 * self._uniform(unit, index, _CURVE) - 1.0))
        return d0, (1.0 - d0) / math.expm1(k), k / length

    def life(self, unit_id: int, tick: int) -> Life:
        """The life `unit_id` is in at `tick`, with its wear: the ground truth behind its readings."""
        if tick < 0:
            raise ValueError(f"tick must be 0 or more, got {tick}")
        index, start, end = self._locate(unit_id, tick)
        d0, c, a = self._life_params(unit_id, index, end - start)
        t = tick - start
        return Life(index, start, end - start, t + 1, d0, d0 + c * math.expm1(a * t))

    def reading(self, unit_id: int, tick: int) -> Reading:
        life = self._lives.get(unit_id)
        if life is None or not life[0] <= tick < life[1]:
            if tick < 0:
                raise ValueError(f"tick must be 0 or more, got {tick}")
            index, start, end = self._locate(unit_id, tick)
            life = (start, end, *self._life_params(unit_id, index, end - start))
            self._lives[unit_id] = life
        start, _, d0, c, a = life
        t = tick - start
        wear = d0 + c * math.expm1(a * t)
        h = _mix((self._key + unit_id * _UNIT + tick * _STEP + _NOISE * _STREAM) & _M64)
        settings, base = self._pool[h & self._pool_mask]
        points = self.calibration.operating_points
        if points:
            point = points[int(self._uniform(unit_id, tick, _POINT) * len(points))]
            means = self.calibration.setting_mean
            settings = (
                point.settings[0] + settings[0] - means[0],
                point.settings[1] + settings[1] - means[1],
                point.settings[2] + settings[2] - means[2],
            )
            levels = self.calibration.baseline
            return Reading(unit_id, t + 1, settings, tuple([
                b0 + o + g * (b - b0 + wear * s)
                for b, b0, o, g, s in zip(base, levels, point.offset, point.gain, self._shift, strict=True)
            ]))  # fmt: skip
        return Reading(
            unit_id, t + 1, settings, tuple([b + wear * s for b, s in zip(base, self._shift, strict=True)])
        )


# The six operating conditions of C-MAPSS FD002/FD004 (altitude kft, Mach number, throttle resolver angle).
FD002_SETTINGS: tuple[tuple[float, float, float], ...] = (
    (0.0, 0.0, 100.0), (10.0, 0.25, 100.0), (20.0, 0.7, 100.0),
    (25.0, 0.62, 60.0), (35.0, 0.84, 100.0), (42.0, 0.84, 100.0),
)  # fmt: skip


def with_operating_points(
    cal: Calibration,
    settings: Sequence[tuple[float, float, float]] = FD002_SETTINGS,
    *,
    spread: float = 4.0,
    gains: tuple[float, float] = (0.6, 1.4),
    seed: int = 2,
) -> Calibration:
    """`cal` run at several operating points: the first at the calibrated levels, each other one moving
    every channel that wears by U(-spread, spread) times its whole wear shift and scaling its noise and
    wear response by U(*gains) (seeded), so a level that is normal at one point lies beyond failure at
    another, as the channels of FD002 do, and no fixed linear mix of raw channels cancels the points."""
    rng = random.Random(seed)
    points = [OperatingPoint(settings[0], (0.0,) * N_SENSORS, (1.0,) * N_SENSORS)]
    for s in settings[1:]:
        offset = tuple(rng.uniform(-spread, spread) * abs(shift) for shift in cal.shift)
        gain = tuple(rng.uniform(*gains) for _ in cal.shift)
        points.append(OperatingPoint(s, offset, gain))
    return dataclasses.replace(cal, operating_points=tuple(points))


def _g(fraction: float, k: float) -> float:
    """Normalised wear growth at a fraction of life: 0 when new, 1 at failure."""
    return math.expm1(k * fraction) / math.expm1(k)


def _fit_curvature(trajectories: Sequence[Sequence[Reading]], moving: Sequence[int], bins: int = 20) -> float:
    """The k whose normalised exponential best matches FD001's mean sensor profile over life fraction."""
    sums = [[0.0] * bins for _ in moving]
    counts = [0] * bins
    frac_sums = [0.0] * bins
    for rows in trajectories:
        length = len(rows)
        for t, row in enumerate(rows):
            b = t * bins // length
            counts[b] += 1
            frac_sums[b] += t / length
            for m, j in enumerate(moving):
                sums[m][b] += row.sensors[j]
    fractions = [f / n for f, n in zip(frac_sums, counts, strict=True)]
    profiles = []
    for m in range(len(moving)):
        means = [s / n for s, n in zip(sums[m], counts, strict=True)]
        span = means[-1] - means[0]
        profiles.append([(x - means[0]) / span for x in means])

    def error(k: float) -> float:
        g = [_g(f, k) for f in fractions]
        model = [(x - g[0]) / (g[-1] - g[0]) for x in g]
        return sum((p - q) ** 2 for prof in profiles for p, q in zip(prof, model, strict=True))

    grid = [0.5 + 0.05 * i for i in range(191)]  # k in 0.5 .. 10.0
    best: float = min(grid, key=error)
    return round(best, 2)


def calibrate(trajectories: Mapping[int, Sequence[Reading]]) -> Calibration:
    """Fit the model to run-to-failure trajectories (FD001 train gives `FD001`).

    * noise: pooled within-unit std over each unit's first EARLY_CYCLES cycles;
    * curvature k: least squares of the normalised mean profile (20 life-fraction bins, all moving
      channels) against (exp(k f) - 1) / (exp(k) - 1);
    * mean levels: "new" = mean of the first FIRST_CYCLES cycles, "failed" = mean of the last LAST_CYCLES;
      with d0 ~ U(0, D) the model predicts new = b + s (D/2 + (1 - D/2) g_new) and
      failed = b + s (D/2 + (1 - D/2) g_failed), where g_* is the mean normalised growth over those rows;
    * D: the unit-to-unit spread of early means (noise removed) relative to the new→failed change,
      median over moving channels, equals sd(d0) / ((1 - D/2)(g_failed - g_new)) with sd(d0) = D/sqrt(12);
    * then shift s and baseline b per channel from the two levels;
    * settings: mean and std over all rows; life: mean and std of the trajectory lengths.
    """
    units = [list(rows) for rows in trajectories.values()]
    if not units or any(len(rows) < EARLY_CYCLES for rows in units):
        raise DynolineError(f"calibration needs trajectories of at least {EARLY_CYCLES} cycles")
    noise: list[float] = []
    spread: list[float] = []
    first: list[float] = []
    last: list[float] = []
    constant = [len({r.sensors[j] for rows in units for r in rows}) == 1 for j in range(N_SENSORS)]
    for j in range(N_SENSORS):
        squares, dof, unit_means = 0.0, 0, []
        for rows in units:
            early = [r.sensors[j] for r in rows[:EARLY_CYCLES]]
            mean = statistics.fmean(early)
            unit_means.append(mean)
            squares += sum((x - mean) ** 2 for x in early)
            dof += len(early) - 1
        sigma = math.sqrt(squares / dof)
        noise.append(sigma)
        spread.append(math.sqrt(max(0.0, statistics.pvariance(unit_means) - sigma**2 / EARLY_CYCLES)))
        first.append(statistics.fmean(r.sensors[j] for rows in units for r in rows[:FIRST_CYCLES]))
        last.append(statistics.fmean(r.sensors[j] for rows in units for r in rows[-LAST_CYCLES:]))
    moving = [j for j in range(N_SENSORS) if abs(last[j] - first[j]) > 0.5 * noise[j] > 0]
    k = _fit_curvature(units, moving)
    g_new = statistics.fmean(_g(t / len(rows), k) for rows in units for t in range(FIRST_CYCLES))
    g_failed = statistics.fmean(
        _g(t / len(rows), k) for rows in units for t in range(len(rows) - LAST_CYCLES, len(rows))
    )
    gamma = g_failed - g_new
    ratio = statistics.median(spread[j] / abs(last[j] - first[j]) for j in moving)
    x = ratio * gamma * math.sqrt(12)
    d = x / (1 + x / 2)
    shift = [0.0 if constant[j] else (last[j] - first[j]) / ((1 - d / 2) * gamma) for j in range(N_SENSORS)]
    baseline = [first[j] - shift[j] * (d / 2 + (1 - d / 2) * g_new) for j in range(N_SENSORS)]
    baseline = [units[0][0].sensors[j] if constant[j] else baseline[j] for j in range(N_SENSORS)]
    noise = [0.0 if constant[j] else noise[j] for j in range(N_SENSORS)]
    settings = [[r.settings[i] for rows in units for r in rows] for i in range(3)]
    lengths = [len(rows) for rows in units]
    return Calibration(
        baseline=tuple(baseline),
        shift=tuple(shift),
        noise=tuple(noise),
        setting_mean=(
            statistics.fmean(settings[0]),
            statistics.fmean(settings[1]),
            statistics.fmean(settings[2]),
        ),
        setting_noise=(
            statistics.pstdev(settings[0]),
            statistics.pstdev(settings[1]),
            statistics.pstdev(settings[2]),
        ),
        max_initial_wear=d,
        curvature=k,
        life_mean=statistics.fmean(lengths),
        life_std=statistics.pstdev(lengths),
    )
