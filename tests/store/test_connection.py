"""The product's sessions are in UTC whatever the server's TimeZone (connection.in_utc)."""

from __future__ import annotations

from datetime import UTC, datetime

import psycopg
import pytest
from psycopg import sql

from workloads.store.connection import connect


@pytest.mark.parametrize("autocommit", [False, True])
@pytest.mark.parametrize("server_zone", ["Etc/UTC", "Europe/Berlin", "UTC"])
def test_a_session_is_in_utc_and_returns_utc_timestamps(
    empty_database_url: str, server_zone: str, autocommit: bool
) -> None:
    dbname = psycopg.conninfo.conninfo_to_dict(empty_database_url)["dbname"]
    with psycopg.connect(empty_database_url, autocommit=True) as admin:
        admin.execute(
            sql.SQL("ALTER DATABASE {} SET timezone = {}").format(
                sql.Identifier(str(dbname)), sql.Literal(server_zone)
            )
        )
    with psycopg.connect(empty_database_url) as plain:
        assert plain.info.parameter_status("TimeZone") == server_zone  # what a session gets by default
    instant = datetime(2026, 3, 1, 23, 30, tzinfo=UTC)
    with connect(empty_database_url, autocommit=autocommit) as conn:
        assert conn.info.parameter_status("TimeZone") == "UTC"
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE  # nothing left open
        row = conn.execute("SELECT %s::timestamptz, (%s::timestamptz)::date", (instant, instant)).fetchone()
        assert row is not None
        got, day = row
        assert isinstance(got, datetime)
        assert got == instant and got.tzinfo is UTC  # timezone.utc: the fast decoding path, not a zoneinfo
        assert str(day) == "2026-03-01"  # a UTC day (in Berlin it is already 2 March)
        with conn.cursor(binary=True) as cur:
            binary = cur.execute("SELECT %s::timestamptz", (instant,)).fetchone()
        assert binary is not None and isinstance(binary[0], datetime)
        assert binary[0] == instant and binary[0].tzinfo is UTC
