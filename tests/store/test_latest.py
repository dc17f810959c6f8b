"""telemetry_latest follows the newest sample of every unit, through both write paths, never backwards."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from tests.store.epoch import EPOCH
from tests.store.sim_helpers import RecordingSource, distinct_on, latest, partitioned, partitions_around
from workloads.bench.latest_baselines import LATEST_PER_UNIT_NAIVE, params
from workloads.catalog import TELEMETRY_COLUMNS
from workloads.errors import DynolineError
from workloads.simulator.config import SimulatorConfig
from workloads.simulator.runner import Simulator
from workloads.simulator.spool import Spool
from workloads.store.queries import LATEST_PER_UNIT, fetch_binary, latest_per_unit
from workloads.store.writer import (
    copy_rows,
    insert_rows_idempotent,
    newest_per_unit,
    prepare_session,
    upsert_latest,
)

Conn = psycopg.Connection[tuple[object, ...]]
T0 = EPOCH + timedelta(hours=23, minutes=59, seconds=58)  # batches straddle midnight: two partitions


def sample(line: str, unit: int, second: int) -> tuple[object, ...]:
    return (line, unit, second + 1, T0 + timedelta(seconds=second), 0.5, 0.0, 100.0, *[600.0 + second] * 21)


def batch(line: str, units: range, seconds: range) -> list[tuple[object, ...]]:
    return [sample(line, u, s) for s in seconds for u in units]


@pytest.fixture
def conn(database_url: str) -> Iterator[Conn]:
    with partitioned(database_url, T0) as c:
        yield c


def test_newest_per_unit_picks_the_newest_row_whatever_the_order() -> None:
    rows = batch("a", range(3), range(4)) + batch("b", range(1), range(2))
    newest = newest_per_unit(list(reversed(rows)))
    assert sorted((r[0], r[1], r[3]) for r in newest) == [
        ("a", 0, T0 + timedelta(seconds=3)),
        ("a", 1, T0 + timedelta(seconds=3)),
        ("a", 2, T0 + timedelta(seconds=3)),
        ("b", 0, T0 + timedelta(seconds=1)),
    ]
    assert newest_per_unit([]) == []


def test_copy_path_moves_latest_to_the_newest_row_in_the_same_transaction(conn: Conn) -> None:
    first = batch("a", range(3), range(0, 3))
    copy_rows(conn, first)
    assert upsert_latest(conn, first) == 3
    conn.commit()
    assert latest(conn) == {("a", u): sample("a", u, 2) for u in range(3)}

    second = batch("a", range(1, 4), range(3, 5))  # unit 0 silent, unit 3 new
    copy_rows(conn, second)
    upsert_latest(conn, second)
    conn.commit()
    assert latest(conn) == {("a", 0): sample("a", 0, 2), **{("a", u): sample("a", u, 4) for u in range(1, 4)}}
    assert latest(conn) == distinct_on(conn)

    # a rolled-back batch leaves neither telemetry nor the latest table changed
    third = batch("a", range(4), range(5, 6))
    copy_rows(conn, third)
    upsert_latest(conn, third)
    conn.rollback()
    assert latest(conn) == distinct_on(conn)
    assert latest(conn)[("a", 0)] == sample("a", 0, 2)


def test_replay_path_moves_latest_forward_and_an_older_batch_never_back(conn: Conn) -> None:
    newer = batch("a", range(2), range(5, 8))
    assert insert_rows_idempotent(conn, newer) == 6
    upsert_latest(conn, newer)
    conn.commit()
    assert latest(conn) == {("a", u): sample("a", u, 7) for u in range(2)}

    older = batch("a", range(3), range(0, 3))  # a spooled batch from before, replayed late
    insert_rows_idempotent(conn, older)
    upsert_latest(conn, older)
    conn.commit()
    assert latest(conn) == {**{("a", u): sample("a", u, 7) for u in range(2)}, ("a", 2): sample("a", 2, 2)}

    again = newer + older  # the same rows once more (a commit whose outcome was unknown)
    assert insert_rows_idempotent(conn, again) == 0
    upsert_latest(conn, again)
    conn.commit()
    assert latest(conn) == distinct_on(conn)


def test_two_upserts_in_one_transaction_do_not_see_each_others_rows(conn: Conn) -> None:
    one, two = batch("a", range(2), range(2)), batch("a", range(2), range(2, 4))
    copy_rows(conn, one)
    upsert_latest(conn, one)
    copy_rows(conn, two)
    upsert_latest(conn, two)  # a stale staging table would make ON CONFLICT hit a unit twice
    conn.commit()
    assert latest(conn) == distinct_on(conn) == {("a", u): sample("a", u, 3) for u in range(2)}


def test_latest_per_unit_reads_the_latest_table_of_one_line_in_unit_order(conn: Conn) -> None:
    rows = batch("a", range(5), range(3)) + batch("b", range(2), range(4))
    copy_rows(conn, rows)
    upsert_latest(conn, rows)
    conn.commit()
    got = latest_per_unit(conn, "a")
    assert got == [sample("a", u, 2) for u in range(5)]
    assert got == conn.cursor(binary=True).execute(LATEST_PER_UNIT_NAIVE, params("a")).fetchall()
    assert latest_per_unit(conn, "nowhere") == []
    some = ("unit_id", "ts", "t50")
    picked = [TELEMETRY_COLUMNS.index(c) for c in some]
    assert latest_per_unit(conn, "b", some) == [
        tuple(r[i] for i in picked) for r in latest_per_unit(conn, "b")
    ]


def test_a_chunked_fetch_returns_what_one_result_does(conn: Conn, monkeypatch: pytest.MonkeyPatch) -> None:
    """latest_per_unit fetches in chunks (the round trip in docs/benchmarks.md); the rows must not change."""
    rows = batch("a", range(600), range(2))  # 600 units: three chunks of 256
    upsert_latest(conn, rows)
    conn.commit()
    whole = fetch_binary(conn, LATEST_PER_UNIT, {"line": "a"}, chunk=None)
    assert whole == [sample("a", u, 1) for u in range(600)]
    assert fetch_binary(conn, LATEST_PER_UNIT, {"line": "a"}) == whole
    assert fetch_binary(conn, LATEST_PER_UNIT, {"line": "a"}, chunk=7) == whole
    assert latest_per_unit(conn, "a") == whole

    # a libpq older than 17 has no chunked mode: the same rows, as one result, without asking for chunks
    def no_chunks(check: bool = False) -> bool:
        if check:
            raise psycopg.NotSupportedError("chunked mode needs libpq 17")
        return False

    monkeypatch.setattr(psycopg.capabilities, "has_stream_chunked", no_chunks)
    assert latest_per_unit(conn, "a") == whole


def test_latest_per_unit_refuses_a_column_telemetry_does_not_have(conn: Conn) -> None:
    with pytest.raises(DynolineError, match=r"unknown column.*t51"):
        latest_per_unit(conn, "a", ("unit_id", "t51"))


@pytest.mark.parametrize("interval", [0.0, 1.0], ids=["in-each-batch", "every-second"])
def test_a_simulator_run_with_an_overlap_and_an_old_spool_leaves_latest_equal_to_distinct_on(
    tmp_path: Path, database_url: str, interval: float
) -> None:
    start = EPOCH + timedelta(hours=6)
    spool = tmp_path / "t.spool"

    def run(ticks: int, at: datetime) -> None:
        cfg = SimulatorConfig(
            line="t", units=6, rate_hz=10.0, metrics_port=0, spool=spool, pace=False, ticks=ticks, start=at,
            latest_interval=interval,
        )  # fmt: skip
        Simulator(cfg, database_url, source=RecordingSource()).run()

    run(12, start)  # COPY path
    with psycopg.connect(database_url) as c:
        after_first = latest(c)
        assert after_first == distinct_on(c) and len(after_first) == 6
    # a spool left by an earlier run holds samples older than every stored one: replayed first, it
    # must not move a unit back; the overlapping run then fails its COPY and replays the rest
    leftover = [("t", u, 1, start - timedelta(seconds=5), 0.0, 0.0, 100.0, *[1.0] * 21) for u in range(6)]
    with Spool(spool) as s:
        s.append(leftover)
    run(20, start)
    with psycopg.connect(database_url) as c:
        final = latest(c)
        assert final == distinct_on(c) and len(final) == 6
        newest = c.execute("SELECT max(ts) FROM telemetry").fetchone()
        old = c.execute("SELECT count(*) FROM telemetry WHERE ts = %s", (start - timedelta(seconds=5),))
        assert old.fetchone() == (6,)  # the old samples were stored, yet are nobody's latest
    assert all(row[3] > after_first[key][3] for key, row in final.items())  # type: ignore[operator]
    assert newest is not None and max(row[3] for row in final.values()) == newest[0]  # type: ignore[type-var]


def _already_exists_notices(conn: Conn) -> list[str]:
    """The server's "relation … already exists, skipping" notices: a repeated CREATE IF NOT EXISTS."""
    seen: list[str] = []
    conn.add_notice_handler(lambda d: seen.append(str(d.message_primary)) if d.sqlstate == "42P07" else None)
    return seen


def test_a_prepared_session_sends_no_create_per_batch_and_a_reconnect_prepares_again(
    database_url: str,
) -> None:
    with psycopg.connect(database_url) as conn:
        partitions_around(conn, T0)
        prepare_session(conn)
        conn.commit()
        repeated = _already_exists_notices(conn)
        for s in range(3):
            rows = batch("a", range(4), range(s, s + 1))
            copy_rows(conn, rows)
            upsert_latest(conn, rows)
            conn.commit()
            insert_rows_idempotent(conn, rows)  # the replay path's staging table, also once
            upsert_latest(conn, rows)
            conn.commit()
        assert repeated == []  # before: one "already exists" notice per batch and path
        assert latest(conn) == distinct_on(conn)
    # a reconnect is a new session without the temporary tables: prepared again, it works the same
    with psycopg.connect(database_url) as conn:
        prepare_session(conn)
        conn.commit()
        rows = batch("a", range(4), range(3, 4))
        insert_rows_idempotent(conn, rows)
        upsert_latest(conn, rows)
        conn.commit()
        assert latest(conn) == distinct_on(conn) == {("a", u): sample("a", u, 3) for u in range(4)}


def test_rolled_back_batches_leave_the_staging_tables_usable(database_url: str) -> None:
    with psycopg.connect(database_url) as prepared, psycopg.connect(database_url) as one_off:
        partitions_around(prepared, T0)
        prepare_session(prepared)
        prepared.commit()
        for conn in (prepared, one_off):  # prepared: committed tables; one-off: created per call
            for s in (0, 1):
                rows = batch("a", range(2), range(s, s + 1))
                copy_rows(conn, rows)
                upsert_latest(conn, rows)  # one-off: creates the staging table in this transaction ...
                conn.rollback()  # ... which the caller abandons (force_rollback, a refused COMMIT)
            rows = batch("a", range(2), range(2, 3))
            insert_rows_idempotent(conn, rows)
            upsert_latest(conn, rows)
            conn.commit()
        assert latest(prepared) == distinct_on(prepared) == {("a", u): sample("a", u, 2) for u in range(2)}
