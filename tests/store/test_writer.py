from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import timedelta

import psycopg
import pytest

from tests.store.epoch import EPOCH
from tests.store.sim_helpers import partitioned
from workloads.catalog import TELEMETRY_COLUMNS
from workloads.store.writer import copy_rows, insert_rows_idempotent

T0 = EPOCH + timedelta(hours=12)


def rows(line: str, units: range, ticks: range) -> list[tuple[object, ...]]:
    out: list[tuple[object, ...]] = []
    for tick in ticks:
        for unit in units:
            settings = (0.001 * unit, -0.0003, 100.0)
            sensors = tuple(500.0 + unit + tick + i / 7 for i in range(21))
            out.append((line, unit, tick + 1, T0 + timedelta(seconds=tick), *settings, *sensors))
    return out


@pytest.fixture
def conn(database_url: str) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    with partitioned(database_url, T0) as c:
        yield c


def stored(conn: psycopg.Connection[tuple[object, ...]]) -> list[tuple[object, ...]]:
    cols = ", ".join(TELEMETRY_COLUMNS)
    return conn.execute(f"SELECT {cols} FROM telemetry ORDER BY ts, unit_id").fetchall()


def test_copy_rows_stores_every_value_exactly(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    batch = rows("a", range(3), range(4))
    assert copy_rows(conn, batch) == 12
    conn.commit()
    assert stored(conn) == sorted(batch, key=lambda r: (str(r[3]), str(r[1]).zfill(3)))


def test_copy_rows_keeps_nan_as_a_measurement(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    row = list(rows("a", range(1), range(1))[0])
    row[-1] = math.nan
    copy_rows(conn, [tuple(row)])
    conn.commit()
    got = conn.execute("SELECT w32 FROM telemetry").fetchone()
    assert got is not None and math.isnan(float(str(got[0])))


def test_copy_of_a_stored_key_fails_the_whole_batch(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    copy_rows(conn, rows("a", range(2), range(1)))
    conn.commit()
    with pytest.raises(psycopg.errors.UniqueViolation):
        copy_rows(conn, rows("a", range(3), range(1)))
    conn.rollback()
    assert len(stored(conn)) == 2


def test_idempotent_insert_skips_rows_already_stored(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    first = rows("a", range(2), range(3))
    copy_rows(conn, first)
    conn.commit()
    everything = rows("a", range(4), range(3))
    assert insert_rows_idempotent(conn, everything) == len(everything) - len(first)
    conn.commit()
    assert insert_rows_idempotent(conn, everything) == 0
    conn.commit()
    assert set(stored(conn)) == set(everything)


def test_idempotent_insert_twice_in_one_transaction(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    # the staging table must be empty after each call, or the second call would re-insert the first's rows
    assert insert_rows_idempotent(conn, rows("a", range(1), range(2))) == 2
    assert insert_rows_idempotent(conn, rows("b", range(1), range(2))) == 2
    conn.commit()
    assert conn.execute("SELECT count(*) FROM telemetry").fetchone() == (4,)


def test_idempotent_insert_collapses_duplicates_within_a_batch(
    conn: psycopg.Connection[tuple[object, ...]],
) -> None:
    batch = rows("a", range(2), range(2))
    assert insert_rows_idempotent(conn, batch + batch) == 4
    conn.commit()
    assert len(stored(conn)) == 4


def test_rolled_back_copy_leaves_nothing(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    copy_rows(conn, rows("a", range(5), range(5)))
    conn.rollback()
    assert stored(conn) == []
