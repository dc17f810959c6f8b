"""C-MAPSS run-to-failure files: parse them strictly, replay them as a line of testers.

The data is NASA's Turbofan Engine Degradation Simulation Data Set (C-MAPSS), from the NASA Ames
Prognostics Center of Excellence (PCoE): A. Saxena, K. Goebel, D. Simon and N. Eklund, "Damage
Propagation Modeling for Aircraft Engine Run-to-Failure Simulation", PHM08, Denver CO, 2008.
Subset FD001 ships unmodified (gzip'd) in `workloads/sources/data/`, see the NOTICE there.

Each text row is one engine cycle: unit, cycle, 3 operating settings, 21 sensors, separated by
whitespace (trailing spaces are normal). A file that breaks that shape is rejected as a whole, with the
file and line named, rather than replayed in part.
"""

from __future__ import annotations

import functools
import gzip
import math
from collections.abc import Iterable, Mapping
from importlib import resources
from pathlib import Path
from types import MappingProxyType

from workloads.errors import DynolineError
from workloads.sample import Reading

COLUMNS = 26
N_SETTINGS = 3
N_SENSORS = 21
DATASETS = ("FD001",)
SPLITS = ("train", "test")

Trajectory = tuple[Reading, ...]
"""One engine's readings in cycle order, with the file's own unit id and cycle numbers."""

Trajectories = Mapping[int, Trajectory]
"""File unit id → trajectory, in file order."""

_GZIP_MAGIC = b"\x1f\x8b"


def _read_text(path: Path, name: str) -> list[str]:
    try:
        raw = path.read_bytes()
        if raw[:2] == _GZIP_MAGIC:
            raw = gzip.decompress(raw)
        return raw.decode("ascii").splitlines()
    except FileNotFoundError:
        raise DynolineError(f"{name}: no such file") from None
    except IsADirectoryError:
        raise DynolineError(f"{name}: is a directory, not a C-MAPSS file") from None
    except (OSError, EOFError) as exc:  # unreadable, or a truncated/corrupt gzip stream
        raise DynolineError(f"{name}: cannot read: {exc}") from None
    except UnicodeDecodeError as exc:
        raise DynolineError(f"{name}: not a C-MAPSS text file (byte {exc.start} is not ASCII)") from None


def _whole(token: str, what: str, where: str) -> int:
    try:
        value = int(token)
    except ValueError:
        raise DynolineError(f"{where}: {what} {token!r} is not a whole number") from None
    if value < 1:
        raise DynolineError(f"{where}: {what} {value} must be 1 or more")
    return value


def parse(lines: Iterable[str], name: str) -> Trajectories:
    """Rows of the 26-column format → trajectories; `name` is used in error messages."""
    # Identical tokens share one float object: C-MAPSS repeats values a lot, so this keeps a
    # 20,000-row file to a few MB while the readings stay plain tuples (no copying on replay).
    floats: dict[str, float] = {}
    rows: dict[int, list[Reading]] = {}
    current: list[Reading] | None = None
    current_unit = 0
    for lineno, line in enumerate(lines, start=1):
        tokens = line.split()
        if not tokens:
            continue  # blank lines (a trailing newline, an empty last line) carry no data
        where = f"{name}: line {lineno}"
        if len(tokens) != COLUMNS:
            raise DynolineError(f"{where}: expected {COLUMNS} columns, got {len(tokens)}")
        unit = _whole(tokens[0], "unit", where)
        cycle = _whole(tokens[1], "cycle", where)
        values: list[float] = []
        for col, token in enumerate(tokens[2:], start=3):
            value = floats.get(token)
            if value is None:
                try:
                    value = float(token)
                except ValueError:
                    raise DynolineError(f"{where}: column {col}: {token!r} is not a number") from None
                if not math.isfinite(value):
                    raise DynolineError(f"{where}: column {col}: {token!r} is not a finite number")
                floats[token] = value
            values.append(value)
        if unit != current_unit:
            if unit in rows:
                raise DynolineError(f"{where}: unit {unit} appears again after other units")
            current = rows[unit] = []
            current_unit = unit
        assert current is not None
        if current and cycle <= current[-1].cycle:
            raise DynolineError(
                f"{where}: cycle {cycle} of unit {unit} does not follow cycle {current[-1].cycle}"
                " (cycles must increase within a unit)"
            )
        current.append(Reading(unit, cycle, (values[0], values[1], values[2]), tuple(values[N_SETTINGS:])))
    if not rows:
        raise DynolineError(f"{name}: empty file, expected rows of {COLUMNS} columns")
    return MappingProxyType({unit: tuple(readings) for unit, readings in rows.items()})


def load(path: str | Path) -> Trajectories:
    """Parse a C-MAPSS train/test file, plain text or gzip'd."""
    path = Path(path)
    return parse(_read_text(path, str(path)), str(path))


def load_rul(path: str | Path) -> tuple[int, ...]:
    """Parse an RUL_FDxxx.txt file: the true remaining cycles of each test unit, in unit order."""
    path = Path(path)
    return _parse_rul(_read_text(path, str(path)), str(path))


def _parse_rul(lines: Iterable[str], name: str) -> tuple[int, ...]:
    out: list[int] = []
    for lineno, line in enumerate(lines, start=1):
        tokens = line.split()
        if not tokens:
            continue
        where = f"{name}: line {lineno}"
        if len(tokens) != 1:
            raise DynolineError(f"{where}: expected 1 column, got {len(tokens)}")
        try:
            value = int(tokens[0])
        except ValueError:
            raise DynolineError(f"{where}: remaining life {tokens[0]!r} is not a whole number") from None
        if value < 0:
            raise DynolineError(f"{where}: remaining life {value} is negative")
        out.append(value)
    if not out:
        raise DynolineError(f"{name}: empty file, expected one remaining-life value per line")
    return tuple(out)


def _builtin_text(filename: str) -> list[str]:
    data = resources.files("workloads.sources").joinpath("data", filename).read_bytes()
    return gzip.decompress(data).decode("ascii").splitlines()


def _check_dataset(dataset: str) -> None:
    if dataset not in DATASETS:
        raise DynolineError(
            f"unknown built-in C-MAPSS dataset {dataset!r}: expected one of {', '.join(DATASETS)}"
        )


def load_builtin(dataset: str = "FD001", split: str = "train") -> Trajectories:
    """The copy shipped with the package (NASA PCoE, Saxena et al. 2008); parsed once per process."""
    return _load_builtin(dataset, split)


@functools.cache
def _load_builtin(dataset: str, split: str) -> Trajectories:
    _check_dataset(dataset)
    if split not in SPLITS:
        raise DynolineError(f"unknown C-MAPSS split {split!r}: expected one of {', '.join(SPLITS)}")
    filename = f"{split}_{dataset}.txt.gz"
    return parse(_builtin_text(filename), f"{filename} (built-in)")


def load_builtin_rul(dataset: str = "FD001") -> tuple[int, ...]:
    """True remaining life of each unit of the shipped test split (NASA PCoE, Saxena et al. 2008)."""
    return _load_builtin_rul(dataset)


@functools.cache
def _load_builtin_rul(dataset: str) -> tuple[int, ...]:
    _check_dataset(dataset)
    filename = f"RUL_{dataset}.txt.gz"
    return _parse_rul(_builtin_text(filename), f"{filename} (built-in)")


class CmapssSource:
    """Replays trajectories on a line: line unit u plays engine number u mod n (in file order).

    Tick k is the engine's k-th cycle. A finished engine either starts over from its first cycle
    (`loop=True`: cycle numbers restart too, as a new engine on the same tester) or stops (None).
    """

    def __init__(self, trajectories: Trajectories, *, loop: bool = True) -> None:
        if not trajectories:
            raise DynolineError("a C-MAPSS source needs at least one trajectory")
        self._trajectories = trajectories
        self._engines: tuple[Trajectory, ...] = tuple(trajectories.values())
        self._n = len(self._engines)
        # (cycle, settings + sensors) per engine cycle, for `values` (shares the parsed float objects)
        self._values: tuple[tuple[tuple[int, tuple[float, ...]], ...], ...] = tuple(
            tuple((r.cycle, r.settings + r.sensors) for r in engine) for engine in self._engines
        )
        self.loop = loop

    @property
    def trajectories(self) -> Trajectories:
        """File unit id → readings, with the file's real unit ids and cycles (for per-engine replays)."""
        return self._trajectories

    def engine_of(self, unit_id: int) -> int:
        """The file unit id that line unit `unit_id` replays."""
        return self._engines[unit_id % self._n][0].unit_id

    def reading(self, unit_id: int, tick: int) -> Reading | None:
        if tick < 0:
            raise ValueError(f"tick must be 0 or more, got {tick}")
        engine = self._engines[unit_id % self._n]
        length = len(engine)
        if tick >= length:
            if not self.loop:
                return None
            tick %= length
        row = engine[tick]
        return Reading(unit_id, row.cycle, row.settings, row.sensors)

    def values(self, unit_id: int, tick: int) -> tuple[int, tuple[float, ...]] | None:
        """`reading(unit_id, tick)` as (cycle, settings + sensors), without building a Reading.

        The simulator's per-row path: a backfill asks this for hundreds of thousands of rows a second.
        """
        if tick < 0:
            raise ValueError(f"tick must be 0 or more, got {tick}")
        engine = self._values[unit_id % self._n]
        length = len(engine)
        if tick >= length:
            if not self.loop:
                return None
            tick %= length
        return engine[tick]
