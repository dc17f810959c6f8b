from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from psycopg.pq import TransactionStatus

from workloads.cli import main
from workloads.store.migrate import available, current_version, migrate
from workloads.store.partitions import drop_expired, ensure_partitions


def test_migrate_is_idempotent_and_versioned(empty_database_url: str) -> None:
    first = migrate(empty_database_url)
    assert [m.version for m in first] == [m.version for m in available()]
    assert migrate(empty_database_url) == []
    with psycopg.connect(empty_database_url) as conn:
        assert current_version(conn) == max(m.version for m in available())
        cols = [
            r[0]
            for r in conn.execute(
                "SELECT column_name FROM information_schema.columns"
                " WHERE table_name = 'telemetry' ORDER BY ordinal_position"
            )
        ]
    assert cols[:4] == ["line", "unit_id", "cycle", "ts"]
    assert len(cols) == 4 + 3 + 21


def test_current_version_of_a_fresh_database_is_zero(empty_database_url: str) -> None:
    with psycopg.connect(empty_database_url) as conn:
        assert current_version(conn) == 0


def partitions(conn: psycopg.Connection[tuple[object, ...]]) -> list[str]:
    return [
        str(r[0])
        for r in conn.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
            " WHERE i.inhparent = 'telemetry'::regclass ORDER BY 1"
        )
    ]


def day_partition(ts: datetime) -> str:
    return f"telemetry_p{ts.astimezone(UTC):%Y%m%d}"


def test_partitions_made_ahead_and_dropped_whole(database_url: str, epoch: datetime) -> None:
    now = epoch + timedelta(hours=12)
    days = [now + timedelta(days=d) for d in range(-20, 2)]
    with psycopg.connect(database_url) as conn:
        assert ensure_partitions(conn, days[0], days[-1]) == 22
        assert ensure_partitions(conn, days[0], days[-1]) == 0
        assert partitions(conn) == [day_partition(d) for d in days]
        conn.execute("INSERT INTO lines (line, retention) VALUES ('a', interval '3 days')")
        conn.commit()
        dropped = drop_expired(conn, timedelta(days=1), now=now)
        remaining = partitions(conn)
    # Exactly the days that ended 3 days or more before `now` go: the longest retention asked for
    # (3 days) wins over keep=1d, which would also have dropped the two days before yesterday.
    assert dropped == [day_partition(d) for d in days if d.date() <= (now - timedelta(days=4)).date()]
    assert remaining == [day_partition(d) for d in days if d.date() >= (now - timedelta(days=3)).date()]
    assert len(dropped) == 17 and len(remaining) == 5


def test_retention_measures_from_the_database_clock_by_default(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT now()").fetchone()
        assert row is not None and isinstance(row[0], datetime)
        db_now = row[0]
        old = (db_now - timedelta(days=30), db_now - timedelta(days=29))
        recent = (db_now - timedelta(days=1), db_now + timedelta(days=1))
        ensure_partitions(conn, *old)
        ensure_partitions(conn, *recent)
        conn.commit()
        dropped = drop_expired(conn, timedelta(days=7))
        remaining = partitions(conn)
    # a month old is past 7 days, yesterday is not, whatever the client clock or the day the test runs
    assert dropped == [day_partition(old[0]), day_partition(old[1])]
    assert remaining == [day_partition(recent[0] + timedelta(days=d)) for d in range(3)]


def test_partition_upkeep_leaves_the_transaction_to_its_caller(database_url: str, epoch: datetime) -> None:
    days = [epoch + timedelta(days=d, hours=12) for d in range(-10, 1)]
    with psycopg.connect(database_url) as conn:
        assert ensure_partitions(conn, days[0], days[-1]) == 11
        assert conn.info.transaction_status == TransactionStatus.INTRANS
        conn.rollback()
        assert partitions(conn) == []  # never committed behind the caller's back
        ensure_partitions(conn, days[0], days[-1])
        conn.commit()
        assert drop_expired(conn, timedelta(days=3), now=days[-1]) == [day_partition(d) for d in days[:7]]
        assert conn.info.transaction_status == TransactionStatus.INTRANS
        conn.rollback()
        assert partitions(conn) == [day_partition(d) for d in days]


def test_cli_migrate_prints_json(empty_database_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["db", "migrate", "--database-url", empty_database_url]) == 0
    out = capsys.readouterr().out
    assert '"version": ' in out and '"applied": ["0001_telemetry"' in out


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("mysql://root@localhost/db", "scheme 'mysql' is not postgresql://"),
        ("postgresql://u:secret@localhost:99999/db", "port '99999' is not 1..65535"),
        ("postgresql://u@127.0.0.1:1/db", "cannot reach database 127.0.0.1:1/db"),
    ],
)
def test_bad_database_urls_give_one_line(url: str, expected: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["db", "migrate", "--database-url", url]) != 0
    err = capsys.readouterr().err.strip()
    assert expected in err
    assert "\n" not in err
    assert "secret" not in err
