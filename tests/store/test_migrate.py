from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
import pytest

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


def test_partitions_made_ahead_and_dropped_whole(database_url: str) -> None:
    now = datetime(2026, 11, 24, 12, tzinfo=UTC)
    with psycopg.connect(database_url) as conn:
        assert ensure_partitions(conn, now - timedelta(days=20), now + timedelta(days=1)) == 22
        assert ensure_partitions(conn, now - timedelta(days=20), now + timedelta(days=1)) == 0
        conn.execute("INSERT INTO lines (line, retention) VALUES ('a', interval '3 days')")
        conn.commit()
        dropped = drop_expired(conn, timedelta(days=1))
        # the longest retention asked for (3 days) wins over --keep 1d
        remaining = [
            r[0]
            for r in conn.execute(
                "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
                " WHERE i.inhparent = 'telemetry'::regclass ORDER BY 1"
            )
        ]
    assert dropped, "old partitions should have been dropped"
    assert all(name < remaining[0] for name in dropped)
    oldest_kept = datetime.strptime(remaining[0][len("telemetry_p") :], "%Y%m%d").replace(tzinfo=UTC)
    assert datetime.now(UTC) - oldest_kept <= timedelta(days=4)


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
