"""`dynoline demo`: a line streaming, the sentinel catching the faulted unit and stopping it.

The end-to-end test runs the real command as a new user would (a subprocess, output not a terminal), on
its own embedded PostgreSQL, with the fault a few seconds in instead of a minute.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.waiting import wait_for
from workloads.cli import main
from workloads.store.embedded import EmbeddedPostgres, free_port, remembered_port

RULES = Path(__file__).resolve().parents[2] / "examples" / "rules"
PROGRESS = re.compile(
    r"^ +\d+s +[\d.]+ samples/s  lag p50 (\d+ ms|-) p99 (\d+ ms|-)  stored [\d,]+ rows  spool \d+  db up"
    r"  alerts (\d+) critical (\d+) warning (\d+) info  quarantined (none|[\d, +]+)$"
)


@pytest.fixture
def pg_dir() -> Iterator[Path]:
    """The demo's data directory; not under tmp_path, which another pytest session may lock to 0700 while
    the demo's (non-root) server user still needs it (see tests/conftest.py)."""
    base = Path(tempfile.mkdtemp(prefix="dynoline-demo-"))
    yield base / "pg"
    shutil.rmtree(base, ignore_errors=True)


def _demo(pg_dir: Path, *args: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "workloads",
        "demo",
        "--data-dir",
        str(pg_dir),
        "--rules",
        str(RULES),
        *args,
    ]


def _environment() -> dict[str, str]:
    """As a login without a session has it: no XDG_RUNTIME_DIR, the cause of platformdirs' warning."""
    env = dict(os.environ)
    env.pop("XDG_RUNTIME_DIR", None)
    return env


def test_demo_streams_into_a_given_database(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    argv = ["demo", "--database-url", database_url, "--rules", str(RULES), "--no-faults"]
    assert main([*argv, "--duration", "2", "--units", "5", "--rate", "5", "--source", "synthetic"]) == 0
    out = capsys.readouterr().out
    assert f"database: {database_url}" in out
    assert f"dynoline alerts --open --line line-a --database-url {database_url}" in out
    progress = [line for line in out.splitlines() if "samples/s" in line]
    assert progress, out  # not a terminal: one plain line per second
    assert all(PROGRESS.match(line) for line in progress), progress
    written = int(re.search(r"stopped: ([\d,]+) samples written", out).group(1).replace(",", ""))  # type: ignore[union-attr]
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT count(*) FROM telemetry WHERE line = 'line-a'").fetchone() == (written,)
    assert written > 0


def test_demo_refuses_a_rule_pack_for_another_line(
    database_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [
        "demo",
        "--database-url",
        database_url,
        "--rules",
        str(RULES),
        "--line",
        "demo",
        "--duration",
        "1",
    ]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "no rule names line 'demo' (they name line-a)" in err
    with psycopg.connect(database_url) as conn:  # refused before anything streamed
        assert conn.execute("SELECT count(*) FROM telemetry").fetchone() == (0,)


def test_the_port_is_kept_with_the_data_directory(tmp_path: Path) -> None:
    wanted = free_port()
    first = remembered_port(tmp_path / "pg", wanted)
    assert (first.port, first.wanted) == (wanted, wanted)
    assert (tmp_path / "pg.port").read_text().strip() == str(wanted)
    with __import__("socket").socket() as taken:
        taken.bind(("127.0.0.1", wanted))
        taken.listen()
        moved = remembered_port(tmp_path / "pg", wanted + 1)  # the kept port wins over the default
        assert moved.wanted == wanted and moved.port != wanted
    assert remembered_port(tmp_path / "pg", wanted).port == moved.port  # and the new one is kept


@pytest.mark.slow
def test_demo_alerts_on_the_faulted_unit_and_stops_only_it(tmp_path: Path, pg_dir: Path) -> None:
    port = free_port()
    done = subprocess.run(
        _demo(pg_dir, "--port", str(port), "--duration", "75", "--units", "6", "--fault-at", "5",
              "--interval", "2s"),
        cwd=tmp_path, env=_environment(), capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "Warning" not in done.stderr, done.stderr  # nothing before (or after) the header
    out = done.stdout.splitlines()
    url = f"postgresql://postgres@127.0.0.1:{port}/demo"
    replay = "FD001, each engine's first 40 cycles on a loop"
    assert out[0] == f"dynoline demo: line line-a, 6 units at 1 Hz replaying {replay}", out[:3]
    assert "fault: unit 5 starts a thermal runaway 5s in" in done.stdout
    assert f"database: {url}" in out
    assert f"  dynoline unit release --line line-a --unit 5 --database-url {url}" in out

    progress = [line for line in out if "samples/s" in line]
    assert progress and all(PROGRESS.match(line) for line in progress), progress
    assert progress[-1].endswith("quarantined 5"), progress[-1]
    alerts = [line for line in out if " ALERT " in line]
    critical = [line for line in alerts if "ALERT critical t50-rising-fast unit 5:" in line]
    assert critical and "change(T50, 60s) reached" in critical[0] and "unit quarantined" in critical[0], (
        alerts
    )
    assert all(" unit 5:" in line for line in alerts), alerts  # the healthy units raise nothing
    assert [line.split("QUARANTINED ")[1] for line in out if "QUARANTINED" in line] == [
        "unit 5 by sentinel:t50-rising-fast: its rows stop"
    ]
    assert re.search(
        r"^fault on unit 5 from 5s: alerted at \d+ s .*, quarantined at \d+ s", done.stdout, re.M
    )
    assert "other units alerted: none; quarantined: none" in out
    found = re.search(r"([\d,]+) samples of quarantined units not sent", done.stdout)
    assert found, done.stdout
    skipped = int(found.group(1).replace(",", ""))
    assert skipped > 0

    server = EmbeddedPostgres(pg_dir, port=port)
    assert not server.running(), "the demo stops its PostgreSQL on the way out"
    with server, psycopg.connect(url) as conn:
        assert conn.execute(
            "SELECT unit_id, quarantined_by FROM unit_state WHERE line = 'line-a' AND quarantined"
        ).fetchall() == [(5, "sentinel:t50-rising-fast")]
        assert conn.execute("SELECT DISTINCT unit_id FROM alerts WHERE line = 'line-a'").fetchall() == [(5,)]
        rows: dict[int, int] = dict(
            conn.execute(
                "SELECT unit_id, count(*) FROM telemetry WHERE line = 'line-a' GROUP BY 1"
            ).fetchall()
        )
    assert sorted(rows) == [0, 1, 2, 3, 4, 5]
    assert rows[5] < min(rows[u] for u in range(5)), rows  # its rows stopped, the others' did not


@pytest.mark.slow
def test_demo_runs_its_own_postgres_and_stops_on_ctrl_c(tmp_path: Path, pg_dir: Path) -> None:
    out = tmp_path / "out.txt"
    with open(out, "w") as stdout:
        proc = subprocess.Popen(
            _demo(pg_dir, "--port", str(free_port()), "--units", "4", "--rate", "4"),
            cwd=tmp_path, env=_environment(), stdout=stdout, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            wait_for(
                "progress", lambda: "samples/s" in out.read_text() or proc.poll() is not None, timeout=120
            )
            assert proc.poll() is None
            proc.send_signal(signal.SIGINT)
            _, err = proc.communicate(timeout=120)
        finally:
            if proc.poll() is None:
                proc.kill()
    assert proc.returncode == 0, err
    text = out.read_text()
    assert "database: postgresql://postgres@127.0.0.1:" in text and "stopped:" in text
    assert (pg_dir / "PG_VERSION").exists()
    assert not (pg_dir / "postmaster.pid").exists(), "the embedded server must be stopped on exit"
