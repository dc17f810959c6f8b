from __future__ import annotations

import re
import signal
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from tests.waiting import wait_for
from workloads.cli import main


def test_demo_streams_into_a_given_database(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    argv = ["demo", "--database-url", database_url, "--duration", "2", "--units", "5", "--rate", "5"]
    assert main([*argv, "--source", "synthetic", "--seed", "3"]) == 0
    out, err = capsys.readouterr()
    progress = [line for line in out.splitlines() if "samples/s" in line]
    assert progress, out  # not a terminal: one plain line per second
    assert all(re.search(r"lag p50 (\d+ ms|-) p99 (\d+ ms|-)  stored [\d,]+ rows", line) for line in progress)
    written = int(re.search(r"stopped: ([\d,]+) samples written", err).group(1).replace(",", ""))  # type: ignore[union-attr]
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT count(*) FROM telemetry WHERE line = 'demo'").fetchone() == (written,)
    assert written > 0


@pytest.mark.slow
def test_demo_runs_its_own_postgres_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    out = tmp_path / "out.txt"
    data = tmp_path / "pg"
    with open(out, "w") as stdout:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "workloads",
                "demo",
                "--data-dir",
                str(data),
                "--units",
                "4",
                "--rate",
                "4",
            ],
            cwd=tmp_path,
            stdout=stdout,
            stderr=subprocess.PIPE,
            text=True,
        )
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
    assert "embedded PostgreSQL on 127.0.0.1:" in err and "stopped:" in err
    assert (data / "PG_VERSION").exists()
    assert not (data / "postmaster.pid").exists(), "the embedded server must be stopped on exit"
