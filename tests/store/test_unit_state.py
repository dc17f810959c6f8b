from __future__ import annotations

import json
from datetime import timedelta

import psycopg
import pytest

from workloads.cli import main
from workloads.errors import DynolineError
from workloads.store.unit_state import (
    list_units,
    quarantine,
    quarantine_many,
    quarantined_units,
    record_line,
    register_units,
    release,
)


def test_register_is_idempotent_and_keeps_quarantine(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        assert register_units(conn, "a", [0, 1, 2]) == 3
        assert quarantine(conn, "a", 1, "hot", by="test")
        assert register_units(conn, "a", [0, 1, 2, 3]) == 1
        conn.commit()
        assert quarantined_units(conn, "a") == {1}
        assert quarantined_units(conn, "b") == frozenset()
        assert [u.unit_id for u in list_units(conn, "a")] == [0, 1, 2, 3]


def test_quarantine_keeps_the_first_reason_and_release_clears(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        register_units(conn, "a", [5])
        assert quarantine(conn, "a", 5, "T50 sustained above 1430", by="rule:hpc")
        assert not quarantine(conn, "a", 5, "second opinion", by="cli")
        (state,) = list_units(conn, "a", quarantined_only=True)
        assert (state.reason, state.quarantined_by) == ("T50 sustained above 1430", "rule:hpc")
        assert state.quarantined_at is not None
        assert release(conn, "a", 5)
        assert not release(conn, "a", 5)
        assert quarantined_units(conn, "a") == frozenset()


def test_quarantine_many_is_one_statement_with_the_same_rules(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        register_units(conn, "m", [1, 2])
        assert quarantine(conn, "m", 2, "already", by="cli")
        # unit 3 is new (registered by the quarantine), 2 already was, 1 is given twice
        done = quarantine_many(conn, "m", [(3, " hot ", "r:a"), (2, "again", "r:a"), (1, "first", "r:a"),
                                           (1, "second", "r:b")])  # fmt: skip
        assert done == [3, 1]
        states = {u.unit_id: (u.quarantined, u.reason, u.quarantined_by) for u in list_units(conn, "m")}
        assert states == {1: (True, "first", "r:a"), 2: (True, "already", "cli"), 3: (True, "hot", "r:a")}
        assert quarantine_many(conn, "m", []) == []
        with pytest.raises(DynolineError, match="needs a reason"):
            quarantine_many(conn, "m", [(4, "ok", "r"), (5, " ", "r")])
        assert [u.unit_id for u in list_units(conn, "m")] == [1, 2, 3]  # refused before writing unit 4


def test_release_of_an_unknown_unit_is_an_error(database_url: str) -> None:
    with psycopg.connect(database_url) as conn, pytest.raises(DynolineError, match="not registered"):
        release(conn, "a", 9)


def test_record_line_upserts_retention(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        record_line(conn, "a", timedelta(days=3))
        record_line(conn, "a", timedelta(days=5))
        assert conn.execute("SELECT retention FROM lines").fetchall() == [(timedelta(days=5),)]


def test_unit_cli_round_trip(database_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    db = ["--database-url", database_url]
    assert main(["unit", "quarantine", "--line", "a", "--unit", "3", "--reason", "manual check", *db]) == 0
    assert json.loads(capsys.readouterr().out)["changed"] is True
    assert main(["unit", "list", "--line", "a", "--quarantined", *db]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [(u["unit"], u["reason"]) for u in listed] == [(3, "manual check")]
    assert main(["unit", "release", "--line", "a", "--unit", "3", *db]) == 0
    assert json.loads(capsys.readouterr().out)["changed"] is True
    assert main(["unit", "release", "--line", "a", "--unit", "4", *db]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "dynoline: error: unit 4 is not registered on line 'a'"
