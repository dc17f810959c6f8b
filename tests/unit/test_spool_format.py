from __future__ import annotations

import math
import struct
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from workloads.simulator.spool import (
    MAGIC,
    SpoolFormatError,
    batch_rows,
    decode_batch,
    encode_batch,
    frame,
    scan,
)

T0 = datetime(2026, 5, 1, 8, 30, tzinfo=UTC)


def make_rows(n: int, line: str = "line-a") -> list[tuple[object, ...]]:
    return [
        (
            line,
            u,
            u + 1,
            T0 + timedelta(microseconds=1001 * u),
            0.5,
            -0.25,
            100.0,
            *[u / 3 + i for i in range(21)],
        )
        for u in range(n)
    ]


def test_round_trip_is_exact() -> None:
    batch = make_rows(50)
    assert decode_batch(encode_batch(batch)) == batch
    assert batch_rows(encode_batch(batch)) == 50


@given(
    st.lists(
        st.tuples(
            st.integers(0, 2**31 - 1),
            st.integers(-(2**31), 2**31 - 1),
            st.datetimes(
                min_value=datetime(1971, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)
            ),
            st.lists(st.floats(allow_nan=False), min_size=24, max_size=24),
        ),
        min_size=1,
        max_size=20,
    ),
    st.text(min_size=1, max_size=40),
)
def test_any_batch_round_trips(raw: list[tuple[int, int, datetime, list[float]]], line: str) -> None:
    batch = [(line, unit, cycle, ts, *values) for unit, cycle, ts, values in raw]
    assert decode_batch(encode_batch(batch)) == batch


def test_nan_survives() -> None:
    row = list(make_rows(1)[0])
    row[10] = math.nan
    (back,) = decode_batch(encode_batch([tuple(row)]))
    assert math.isnan(float(str(back[10])))


def test_a_batch_holds_one_line() -> None:
    with pytest.raises(ValueError, match="one line"):
        encode_batch(make_rows(2, "a") + make_rows(1, "b"))
    with pytest.raises(ValueError, match="empty"):
        encode_batch([])


def test_scan_finds_frames_and_stops_at_a_torn_tail() -> None:
    payloads = [encode_batch(make_rows(n)) for n in (1, 2, 3)]
    data = b"".join(frame(p) for p in payloads)
    frames, end = scan(data)
    assert [rows for _, _, rows in frames] == [1, 2, 3]
    assert end == len(data)
    for cut in range(1, len(frame(payloads[-1]))):
        torn = data[:-cut]
        frames, end = scan(torn)
        assert [rows for _, _, rows in frames] == [1, 2]
        assert end == len(frame(payloads[0])) + len(frame(payloads[1]))


def test_scan_rejects_a_flipped_bit_and_everything_after() -> None:
    first, second = frame(encode_batch(make_rows(1))), frame(encode_batch(make_rows(2)))
    damaged = bytearray(first + second)
    damaged[len(first) + 20] ^= 0x01
    frames, end = scan(bytes(damaged))
    assert [rows for _, _, rows in frames] == [1]
    assert end == len(first)


def test_scan_rejects_a_bad_length_without_reading_past_the_end() -> None:
    bogus = struct.pack("<4sII", MAGIC, 2**31, 0) + b"x" * 10
    assert scan(bogus) == ([], 0)


def test_decode_rejects_garbage_that_passed_a_crc() -> None:
    with pytest.raises(SpoolFormatError):
        decode_batch(b"\x09\x00\x00")
    good = encode_batch(make_rows(2))
    with pytest.raises(SpoolFormatError, match="bytes of rows"):
        decode_batch(good[:-8])
