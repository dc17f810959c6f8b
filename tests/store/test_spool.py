from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest

from tests.store.epoch import EPOCH
from workloads.errors import DynolineError
from workloads.simulator.spool import Spool, encode_batch, frame
from workloads.store.partitions import ensure_partitions
from workloads.store.writer import insert_rows_idempotent

T0 = EPOCH


def batch(first_tick: int, ticks: int, units: int = 2, line: str = "a") -> list[tuple[object, ...]]:
    return [
        (
            line,
            u,
            t + 1,
            T0 + timedelta(seconds=t),
            0.0,
            0.0,
            100.0,
            *[float(u * 1000 + t + i) for i in range(21)],
        )
        for t in range(first_tick, first_tick + ticks)
        for u in range(units)
    ]


def test_append_then_replay_in_order_and_truncate_when_drained(tmp_path: Path) -> None:
    path = tmp_path / "s.spool"
    batches = [batch(0, 1), batch(1, 2), batch(3, 3)]
    with Spool(path) as spool:
        for b in batches:
            spool.append(b)
        assert spool.pending_rows == 12 and spool.pending_records == 3
    with Spool(path) as spool:  # reopened: same records, same order
        seen = []
        while spool.pending:
            records, rows = spool.peek(max_rows=6)
            seen.append(rows)
            spool.confirm(records)
        assert seen == [batches[0] + batches[1], batches[2]]  # packed up to max_rows, at least one record
        assert spool.pending_rows == 0 and spool.pending_bytes == 0
    assert path.stat().st_size == 0
    assert path.with_name("s.spool.offset").read_text().strip() == "0"


def test_confirmed_records_do_not_come_back(tmp_path: Path) -> None:
    path = tmp_path / "s.spool"
    with Spool(path) as spool:
        spool.append(batch(0, 1))
        spool.append(batch(1, 1))
        records, _ = spool.peek(max_rows=1)
        spool.confirm(records)
    with Spool(path) as spool:
        assert spool.peek(max_rows=100)[1] == batch(1, 1)


def test_torn_final_record_is_cut_and_appends_continue(tmp_path: Path) -> None:
    path = tmp_path / "s.spool"
    with Spool(path) as spool:
        spool.append(batch(0, 1))
        spool.append(batch(1, 1))
        good_size = path.stat().st_size
    torn = frame(encode_batch(batch(2, 1)))
    with open(path, "ab") as f:
        f.write(torn[: len(torn) // 2])  # the process died mid-append
    with Spool(path) as spool:
        assert spool.pending_records == 2
        assert path.stat().st_size == good_size
        spool.append(batch(5, 1))
        assert spool.peek(max_rows=100)[1] == batch(0, 1) + batch(1, 1) + batch(5, 1)


def test_crash_between_truncate_and_offset_reset(tmp_path: Path) -> None:
    path = tmp_path / "s.spool"
    path.write_bytes(b"")
    path.with_name("s.spool.offset").write_text("4096\n")
    with Spool(path) as spool:
        assert not spool.pending
        spool.append(batch(0, 1))
    with Spool(path) as spool:
        assert spool.peek(max_rows=100)[1] == batch(0, 1)


def test_one_simulator_per_spool(tmp_path: Path) -> None:
    with Spool(tmp_path / "s.spool"), pytest.raises(DynolineError, match="in use by another simulator"):
        Spool(tmp_path / "s.spool")


def test_unwritable_spool_location_is_a_one_line_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(DynolineError, match="cannot open spool"):
        Spool(blocker / "s.spool")


def test_crash_between_commit_and_offset_update_replays_without_duplicates(
    tmp_path: Path, database_url: str
) -> None:
    path = tmp_path / "s.spool"
    first, second = batch(0, 3), batch(3, 3)
    with Spool(path) as spool:
        spool.append(first)
        spool.append(second)
    with psycopg.connect(database_url) as conn:
        ensure_partitions(conn, T0, T0 + timedelta(days=1))
        with Spool(path) as spool:
            records, rows = spool.peek(max_rows=1)
            assert insert_rows_idempotent(conn, rows) == len(first)
            conn.commit()
            # crash: the commit happened, the offset was never moved
        with Spool(path) as spool:
            assert spool.pending_records == 2
            inserted = []
            while spool.pending:
                records, rows = spool.peek(max_rows=1)
                inserted.append(insert_rows_idempotent(conn, rows))
                conn.commit()
                spool.confirm(records)
        assert inserted == [0, len(second)]
        count, distinct = conn.execute(
            "SELECT count(*), count(DISTINCT (unit_id, ts)) FROM telemetry"
        ).fetchone()  # type: ignore[misc]
    assert count == distinct == len(first) + len(second)
    assert os.path.getsize(path) == 0
