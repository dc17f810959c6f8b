"""C-MAPSS reader and replay source: FD001 as shipped, strict errors on malformed files, loop semantics."""

from __future__ import annotations

import gzip
import math
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from workloads.errors import DynolineError
from workloads.sample import Reading
from workloads.sources import Source
from workloads.sources.cmapss import (
    CmapssSource,
    load,
    load_builtin,
    load_builtin_rul,
    load_rul,
    parse,
)


def row(unit: int, cycle: int, sensor: float = 1.0) -> str:
    """A well-formed 26-column row, with the trailing space the NASA files have."""
    return f"{unit} {cycle} -0.0007 -0.0004 100.0 " + " ".join([f"{sensor}"] * 21) + " "


def good_rows(n: int) -> list[str]:
    """n valid rows: unit 1 for the first half, unit 2 after, cycles counting from 1."""
    half = n // 2
    return [row(1, c) for c in range(1, half + 1)] + [row(2, c) for c in range(1, n - half + 1)]


def write(tmp_path: Path, lines: list[str], name: str = "train_X.txt") -> Path:
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n")
    return path


def test_fd001_train_from_shared(cmapss_dir: Path) -> None:
    data = load(cmapss_dir / "train_FD001.txt")
    assert len(data) == 100
    assert sum(len(t) for t in data.values()) == 20_631
    assert list(data) == list(range(1, 101))
    unit1 = data[1]
    assert len(unit1) == 192
    assert [r.cycle for r in unit1] == list(range(1, 193))
    assert all(r.unit_id == 1 for r in unit1)
    # first row of the file: 1 1 -0.0007 -0.0004 100.0 518.67 641.82 1589.70 1400.60 ...
    first = unit1[0]
    assert first.settings == (-0.0007, -0.0004, 100.0)
    assert len(first.sensors) == 21
    assert first.sensors[:4] == (518.67, 641.82, 1589.70, 1400.60)
    assert first.sensors[-1] == 23.4190


def test_builtin_copy_is_the_same_data(cmapss_dir: Path) -> None:
    for split in ("train", "test"):
        assert dict(load_builtin("FD001", split)) == dict(load(cmapss_dir / f"{split}_FD001.txt"))
    rul = load_rul(cmapss_dir / "RUL_FD001.txt")
    assert load_builtin_rul("FD001") == rul
    assert len(rul) == len(load_builtin("FD001", "test")) == 100
    assert rul[:3] == (112, 98, 69)


def test_builtin_is_parsed_once() -> None:
    assert load_builtin() is load_builtin("FD001", "train")


def test_gzip_file_reads_like_plain(tmp_path: Path) -> None:
    lines = good_rows(6)
    plain = write(tmp_path, lines)
    packed = tmp_path / "train_X.txt.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    assert dict(load(packed)) == dict(load(plain))
    assert [len(t) for t in load(packed).values()] == [3, 3]


def test_blank_lines_are_ignored_but_numbering_counts_them(tmp_path: Path) -> None:
    lines = [row(1, 1), "", "   ", row(1, 2), row(1, 2)]
    with pytest.raises(DynolineError, match=r"line 5: cycle 2 of unit 1 does not follow cycle 2"):
        load(write(tmp_path, lines))
    assert len(load(write(tmp_path, lines[:4]))[1]) == 2


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (row(1, 9)[: row(1, 9).rstrip().rfind(" ")], "line 17: expected 26 columns, got 25"),
        (row(1, 9) + " 1.0", "line 17: expected 26 columns, got 27"),
        (row(1, 9).replace(" 100.0 ", " abc ", 1), "line 17: column 5: 'abc' is not a number"),
        (row(1, 9).replace("-0.0004", "NaN", 1), "line 17: column 4: 'NaN' is not a finite number"),
        (row(1, 9).replace("-0.0004", "nan", 1), "line 17: column 4: 'nan' is not a finite number"),
        (row(1, 9).replace(" 1.0 ", " inf ", 1), "line 17: column 6: 'inf' is not a finite number"),
        (row(1, 9).replace(" 1.0 ", " -inf ", 1), "line 17: column 6: '-inf' is not a finite number"),
        ("1.5" + row(1, 9)[1:], "line 17: unit '1.5' is not a whole number"),
        ("1 9.0" + row(1, 9)[3:], "line 17: cycle '9.0' is not a whole number"),
        ("x" + row(1, 9)[1:], "line 17: unit 'x' is not a whole number"),
        ("0" + row(1, 9)[1:], "line 17: unit 0 must be 1 or more"),
        (row(1, 3), "line 17: cycle 3 of unit 1 does not follow cycle 8"),
        (row(1, 8), "line 17: cycle 8 of unit 1 does not follow cycle 8"),
        (row(2, 9), "line 17: unit 2 appears again after other units"),
    ],
)
def test_malformed_line_is_named(tmp_path: Path, bad: str, message: str) -> None:
    # lines 1-8: unit 2 cycles 1-8; lines 9-16: unit 1 cycles 1-8; line 17: the bad one
    lines = [row(2, c) for c in range(1, 9)] + [row(1, c) for c in range(1, 9)] + [bad]
    path = write(tmp_path, lines)
    with pytest.raises(DynolineError) as info:
        load(path)
    assert str(info.value).startswith(f"{path}: {message}")


@pytest.mark.parametrize("content", ["", "\n", "  \n\n \t\n"])
def test_empty_file(tmp_path: Path, content: str) -> None:
    path = tmp_path / "empty.txt"
    path.write_text(content)
    with pytest.raises(DynolineError, match=r"empty\.txt: empty file"):
        load(path)


def test_missing_binary_and_corrupt_files(tmp_path: Path) -> None:
    with pytest.raises(DynolineError, match=r"nope\.txt: no such file"):
        load(tmp_path / "nope.txt")
    binary = tmp_path / "bin.txt"
    binary.write_bytes(b"1 1 \xff\xfe")
    with pytest.raises(DynolineError, match=r"bin\.txt: not a C-MAPSS text file"):
        load(binary)
    truncated = tmp_path / "cut.txt.gz"
    packed = gzip.compress(("\n".join(good_rows(50)) + "\n").encode())
    truncated.write_bytes(packed[: len(packed) // 2])
    with pytest.raises(DynolineError, match=r"cut\.txt\.gz: cannot read"):
        load(truncated)
    with pytest.raises(DynolineError, match="is a directory"):
        load(tmp_path)


def test_error_is_one_line_and_nothing_half_parsed(tmp_path: Path) -> None:
    path = write(tmp_path, [*good_rows(20_000 - 1), row(2, 99_999)[:-5]])
    with pytest.raises(DynolineError) as info:
        load(path)
    assert "\n" not in str(info.value)
    assert "line 20000: expected 26 columns, got 25" in str(info.value)


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (["112", "98", "x"], "line 3: remaining life 'x' is not a whole number"),
        (["112", "98 1"], "line 2: expected 1 column, got 2"),
        (["-1"], "line 1: remaining life -1 is negative"),
        (["", " "], "empty file"),
    ],
)
def test_malformed_rul(tmp_path: Path, lines: list[str], message: str) -> None:
    path = write(tmp_path, lines, "RUL_X.txt")
    with pytest.raises(DynolineError, match=message):
        load_rul(path)


def test_unknown_builtin() -> None:
    with pytest.raises(DynolineError, match="unknown built-in C-MAPSS dataset 'FD009'"):
        load_builtin("FD009")
    with pytest.raises(DynolineError, match="unknown C-MAPSS split 'dev'"):
        load_builtin("FD001", "dev")


def small() -> CmapssSource:
    # engine 7: cycles 1-3, engine 4: cycles 1-2 (file order 7, 4)
    lines = [row(7, c, sensor=float(c)) for c in (1, 2, 3)] + [row(4, c, sensor=10.0 + c) for c in (1, 2)]
    return CmapssSource(parse(lines, "small"))


def test_line_unit_cycles_through_engines_in_file_order() -> None:
    source = small()
    assert [source.engine_of(u) for u in range(5)] == [7, 4, 7, 4, 7]
    reading = source.reading(2, 1)
    assert reading is not None
    assert reading.unit_id == 2  # the line's unit, not the file's
    assert reading.cycle == 2
    assert reading.sensors == (2.0,) * 21
    other = source.reading(3, 0)
    assert other is not None
    assert other.sensors == (11.0,) * 21
    # the file's own ids stay available for per-engine replays
    assert [r.unit_id for r in source.trajectories[7]] == [7, 7, 7]
    assert [r.cycle for r in source.trajectories[4]] == [1, 2]


def test_loop_restarts_from_cycle_one() -> None:
    source = small()
    cycles = []
    for tick in range(8):
        reading = source.reading(0, tick)
        assert reading is not None
        cycles.append(reading.cycle)
    assert cycles == [1, 2, 3, 1, 2, 3, 1, 2]


def test_no_loop_ends_with_none() -> None:
    source = CmapssSource(small().trajectories, loop=False)
    assert [r.cycle if r else None for r in (source.reading(1, t) for t in range(4))] == [1, 2, None, None]
    assert source.reading(0, 2) is not None
    assert source.reading(0, 3) is None
    assert source.reading(0, 10**9) is None


def test_negative_tick_is_refused() -> None:
    with pytest.raises(ValueError, match="tick"):
        small().reading(0, -1)


def test_ten_thousand_units_replay_fd001() -> None:
    source: Source = CmapssSource(load_builtin())
    first = source.reading(9_999, 0)  # 9999 mod 100 = 99 → engine 100
    assert first is not None
    assert first.unit_id == 9_999
    assert first.sensors == load_builtin()[100][0].sensors
    # engine 1 has 192 cycles: tick 192 starts it over
    again = source.reading(100, 192)
    assert again is not None
    assert again.cycle == 1
    assert again.sensors == load_builtin()[1][0].sensors


def test_empty_source_is_refused() -> None:
    with pytest.raises(DynolineError, match="at least one trajectory"):
        CmapssSource({})


@given(unit=st.integers(0, 99_999), tick=st.integers(0, 10**9))
def test_any_unit_and_tick_gives_a_full_finite_reading(unit: int, tick: int) -> None:
    reading = CmapssSource(load_builtin()).reading(unit, tick)
    assert reading is not None
    assert reading.unit_id == unit
    assert len(reading.settings) == 3 and len(reading.sensors) == 21
    assert all(math.isfinite(v) for v in (*reading.settings, *reading.sensors))
    expected = load_builtin()[unit % 100 + 1]
    row_ = expected[tick % len(expected)]
    assert reading == Reading(unit, row_.cycle, row_.settings, row_.sensors)


@pytest.mark.parametrize("loop", [True, False])
def test_values_are_the_reading_without_the_object(loop: bool) -> None:
    source = CmapssSource(load_builtin(), loop=loop)
    for unit in (0, 1, 99, 100, 4321):
        for tick in (0, 1, 191, 192, 361, 362, 10_000):
            reading = source.reading(unit, tick)
            expected = None if reading is None else (reading.cycle, reading.settings + reading.sensors)
            assert source.values(unit, tick) == expected
    with pytest.raises(ValueError, match="tick"):
        source.values(0, -1)
