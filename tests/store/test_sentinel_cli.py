"""`dynoline sentinel run|watch`, `dynoline alerts`: summaries, exit codes, metrics, honest failures."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import httpx
import psycopg
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.store.sentinel_series import at, fingerprint, write
from tests.waiting import wait_for
from workloads.cli import main
from workloads.store.embedded import EmbeddedPostgres, free_port

UNTIL = at(9).isoformat()
CRITICAL = """
name: t50-hot
line: line-t
severity: critical
condition: {type: threshold, sensor: T50, op: ">", value: 1430}
"""
WARNING = """
name: ps30-high
line: line-t
condition: {type: threshold, sensor: Ps30, op: ">", value: 48.0}
"""


@pytest.fixture
def rules_dir(tmp_path: Path) -> Path:
    d = tmp_path / "rules"
    d.mkdir()
    (d / "t50-hot.yaml").write_text(CRITICAL)
    (d / "ps30-high.yaml").write_text(WARNING)
    return d


def sentinel(*args: str) -> list[str]:
    return ["sentinel", "run", *args]


def test_run_prints_a_json_summary_and_fails_on_critical(
    database_url: str, rules_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(database_url, 1, [1400] * 5 + [1440] * 5)
    write(database_url, 2, [48.5] * 10, sensor_name="Ps30")
    args = sentinel("--rules", str(rules_dir), "--database-url", database_url, "--until", UNTIL, "--json")
    assert main([*args, "--backfill", "all"]) == 0
    summary = json.loads(capsys.readouterr().out)
    line = summary["lines"]["line-t"]
    assert line["samples_scanned"] == 20 and line["opened"] == 2 and summary["rules"] == 2
    assert summary["open_alerts"] == {"critical": 1, "warning": 1, "info": 0}
    assert {(r["rule"], r["open"]) for r in summary["open_alerts_by_rule"]} == {
        ("t50-hot", 1),
        ("ps30-high", 1),
    }
    assert main([*args, "--fail-on", "critical"]) == 3
    again = json.loads(capsys.readouterr().out)
    assert again["lines"]["line-t"]["samples_scanned"] == 0 and again["opened"] == 0
    (rules_dir / "t50-hot.yaml").unlink()
    assert main([*args, "--fail-on", "critical"]) == 0  # only a warning is open among these rules
    assert main([*args, "--fail-on", "warning"]) == 3
    capsys.readouterr()

    assert main(["alerts", "--database-url", database_url, "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert sorted((a["rule"], a["unit_id"], a["open"]) for a in listed) == [
        ("ps30-high", 2, True),
        ("t50-hot", 1, True),
    ]
    firsts = {(a["rule"], datetime.fromisoformat(a["first_sample_ts"])) for a in listed}
    assert firsts == {("ps30-high", at(0)), ("t50-hot", at(5))}
    assert main(["alerts", "--database-url", database_url, "--rule", "t50-hot"]) == 0
    text = capsys.readouterr().out
    assert "t50-hot" in text and "ps30-high" not in text and "open" in text


HOSTILE = {
    "sql-in-name.yaml": CRITICAL.replace("name: t50-hot", 'name: "t50\'; DROP TABLE alerts; --"'),
    "sql-in-value.yaml": CRITICAL.replace("1430", '"1430 OR true; DELETE FROM telemetry"'),
    "sql-in-sensor.yaml": CRITICAL.replace("sensor: T50", 'sensor: "t50 FROM telemetry; DROP TABLE x; --"'),
    "unknown-sensor.yaml": CRITICAL.replace("T50", "T51"),
    "absurd-window.yaml": WARNING.replace(
        '{type: threshold, sensor: Ps30, op: ">", value: 48.0}',
        '{type: sustained, sensor: Ps30, op: ">", value: 48.0, for: 400d}',
    ),
    "wrong-type.yaml": CRITICAL.replace("severity: critical", "severity: [critical]"),
    "not-yaml.yaml": "name: {",
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_rule_files_are_refused_and_change_nothing(
    database_url: str, rules_dir: Path, name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    write(database_url, 1, [1440] * 10)
    (rules_dir / name).write_text(HOSTILE[name])
    before = fingerprint(database_url)
    code = main(sentinel("--rules", str(rules_dir), "--database-url", database_url, "--until", UNTIL))
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    assert err.startswith(f"dynoline: error: {rules_dir / name}") and err.count("\n") == 1
    assert fingerprint(database_url) == before
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT count(*) FROM telemetry").fetchone() == (10,)


def test_an_unreachable_database_is_an_error_never_fake_alerts(
    rules_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"postgresql://postgres@127.0.0.1:{free_port()}/nowhere"
    assert main(sentinel("--rules", str(rules_dir), "--database-url", url, "--json")) == 4
    out, err = capsys.readouterr()
    assert out == "" and "cannot reach database 127.0.0.1" in err and err.count("\n") == 1


def test_a_database_that_goes_down_is_an_error(
    pg_server: EmbeddedPostgres, database_url: str, rules_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(database_url, 1, [1440] * 10)
    pg_server.stop()
    try:
        assert main(sentinel("--rules", str(rules_dir), "--database-url", database_url, "--json")) == 4
    finally:
        pg_server.start()
    out, err = capsys.readouterr()
    assert out == "" and err.startswith("dynoline: error: cannot reach database")
    assert fingerprint(database_url)[0][1] == (0, "d41d8cd98f00b204e9800998ecf8427e")  # no alerts at all


def test_an_unmigrated_database_is_named(
    empty_database_url: str, rules_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(sentinel("--rules", str(rules_dir), "--database-url", empty_database_url)) == 2
    assert "run `dynoline db migrate` first" in capsys.readouterr().err


PUSHGATEWAY = Path("/usr/bin/prometheus-pushgateway")  # Debian package prometheus-pushgateway


@pytest.fixture
def pushgateway(tmp_path: Path) -> Iterator[str]:
    """A real Pushgateway on 127.0.0.1 (its own persistence file: Debian's default is shared)."""
    if not PUSHGATEWAY.exists():
        pytest.fail(f"{PUSHGATEWAY} missing: apt-get install prometheus-pushgateway (make test installs it)")
    port = free_port()
    proc = subprocess.Popen(
        [str(PUSHGATEWAY), f"--web.listen-address=127.0.0.1:{port}",
         f"--persistence.file={tmp_path / 'pushgateway.data'}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        try:
            return httpx.get(f"{url}/-/ready", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_for("the Pushgateway to answer", ready)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def pushed(gateway: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """What the Pushgateway serves for the sentinel's job: (name, labels) -> value."""
    text = httpx.get(f"{gateway}/metrics", timeout=5).text
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.labels.get("job") == "dynoline-sentinel"
    }


def series(name: str, **labels: str) -> tuple[str, frozenset[tuple[str, str]]]:
    return name, frozenset({"job": "dynoline-sentinel", "instance": "", **labels}.items())


def test_run_pushes_its_metrics_to_a_pushgateway(
    database_url: str, rules_dir: Path, pushgateway: str, capsys: pytest.CaptureFixture[str]
) -> None:
    write(database_url, 1, [1440] * 10)
    args = sentinel("--rules", str(rules_dir), "--database-url", database_url, "--until", UNTIL)
    push = ["--pushgateway", pushgateway, "--push-group", "pack-a", "--push-namespace", "factory"]
    assert main([*args, "--backfill", "all", *push]) == 0
    capsys.readouterr()
    got = pushed(pushgateway)
    # The namespace is part of the group: the same line and rule names elsewhere are another group.
    group = {"namespace": "factory", "rules": "pack-a", "line": "line-t"}
    assert got[series("dynoline_sentinel_open_alerts", **group, rule="t50-hot", severity="critical")] == 1
    assert got[series("dynoline_sentinel_open_alerts", **group, rule="ps30-high", severity="warning")] == 0
    # Per line, so a stale rule's line is its own series (the alert does not aggregate them away).
    assert got[series("dynoline_sentinel_last_success_timestamp_seconds", **group)] > 0
    # No per-process counter: pushed, it would be 1 on every run and never increase.
    assert not [name for name, _ in got if name.endswith("_total")]


def test_a_failed_run_keeps_the_last_figures_and_stamps_the_failure(
    database_url: str, rules_dir: Path, pushgateway: str, capsys: pytest.CaptureFixture[str]
) -> None:
    write(database_url, 1, [1440] * 10)
    push = ["--pushgateway", pushgateway, "--push-group", "pack-a"]
    args = sentinel("--rules", str(rules_dir), "--database-url", database_url, "--until", UNTIL)
    assert main([*args, "--backfill", "all", *push]) == 0
    before = pushed(pushgateway)
    down = f"postgresql://dynoline@127.0.0.1:{free_port()}/dynoline"
    assert main([*sentinel("--rules", str(rules_dir), "--database-url", down), *push]) == 4
    capsys.readouterr()
    after = pushed(pushgateway)
    group = {"rules": "pack-a", "line": "line-t"}
    critical = series("dynoline_sentinel_open_alerts", **group, rule="t50-hot", severity="critical")
    success = series("dynoline_sentinel_last_success_timestamp_seconds", **group)
    failure = series("dynoline_sentinel_last_failure_timestamp_seconds", **group)
    # The open critical alert is still reported while the sentinel cannot look, and success stopped moving.
    assert after[critical] == before[critical] == 1
    assert after[success] == before[success]
    assert failure not in before and after[failure] >= after[success]


def test_an_unreachable_pushgateway_is_an_error(
    database_url: str, rules_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    gateway = f"http://127.0.0.1:{free_port()}"
    args = sentinel("--rules", str(rules_dir), "--database-url", database_url, "--until", UNTIL)
    assert main([*args, "--pushgateway", gateway]) == 2
    out, err = capsys.readouterr()
    assert '"open_alerts"' not in out and "open alerts:" in out  # the pass itself ran and was reported
    assert f"cannot push metrics to {gateway}" in err


def test_watch_serves_metrics_while_it_runs_and_stops_on_sigterm(database_url: str, rules_dir: Path) -> None:
    write(database_url, 1, [1440] * 10)
    port = free_port()
    args = ["sentinel", "watch", "--rules", str(rules_dir), "--database-url", database_url, "--until", UNTIL,
            "--backfill", "all", "--interval", "1s", "--metrics-port", str(port), "--metrics-address",
            "127.0.0.1", "--json"]  # fmt: skip
    proc = subprocess.Popen([sys.executable, "-m", "workloads", *args], stdout=subprocess.PIPE, text=True)
    seen: list[str] = []

    def scraped() -> bool:
        try:
            text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=1).text
        except httpx.HTTPError:
            return False
        seen.append(text)
        return 'dynoline_sentinel_runs_total{result="success"} 2.0' in text

    try:
        wait_for("watch to serve the metrics of two passes", scraped)
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0
    assert 'dynoline_sentinel_open_alerts{line="line-t",rule="t50-hot",severity="critical"} 1.0' in seen[-1]
    passes = [json.loads(line) for line in out.splitlines()]
    assert len(passes) >= 2 and passes[0]["opened"] == 1 and all(p["opened"] == 0 for p in passes[1:])
