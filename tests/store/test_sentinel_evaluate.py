"""`dynoline evaluate` replays C-MAPSS through the real store and sentinel and scores what it caught."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg
import pytest

from workloads.cli import main

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "rules"
KEYS = {"detection_rate", "median_lead_cycles", "p10_lead_cycles", "false_alarms_per_1000"}


def subset(source: Path, out: Path, units: set[int]) -> Path:
    lines = [ln for ln in source.read_text().splitlines() if ln.split() and int(ln.split()[0]) in units]
    out.write_text("\n".join(lines) + "\n")
    return out


def test_evaluate_the_default_pack_on_run_to_failure_units(
    cmapss_dir: Path, tmp_path: Path, database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    data = subset(cmapss_dir / "train_FD001.txt", tmp_path / "train.txt", {1, 2, 3, 4, 5, 6})
    args = [
        "evaluate",
        "--dataset",
        str(data),
        "--rules",
        str(EXAMPLES),
        "--database-url",
        database_url,
        "--json",
    ]
    assert main(args) == 0
    report = json.loads(capsys.readouterr().out)
    assert report.keys() >= KEYS and "precision" not in report
    assert report["units"] == 6 and report["samples"] == sum(1 for _ in data.open())
    assert report["passes"] == 287  # the longest of the six units lives 287 cycles; one pass per cycle
    assert 0.0 <= report["detection_rate"] <= 1.0 and report["false_alarms_per_1000"] >= 0
    assert report["healthy_cycles"] == sum(
        max(0, n - 126) for n in (192, 287, 179, 189, 269, 188)
    )  # RUL > 125
    detected = round(report["detection_rate"] * 6)
    assert detected + len(report["missed_units"]) == 6
    if detected:
        assert 0 < report["p10_lead_cycles"] <= report["median_lead_cycles"] <= 125
    assert set(report["per_rule"]) == {p.stem for p in EXAMPLES.glob("*.yaml")}
    with psycopg.connect(database_url) as conn:  # the replay cleaned up after itself
        assert conn.execute("SELECT count(*) FROM telemetry").fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM alerts").fetchone() == (0,)


def test_evaluate_a_test_set_with_its_remaining_life(
    cmapss_dir: Path, tmp_path: Path, database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    units = set(range(1, 11))
    data = subset(cmapss_dir / "test_FD001.txt", tmp_path / "test.txt", units)
    ruls = (cmapss_dir / "RUL_FD001.txt").read_text().split()[:10]
    (tmp_path / "rul.txt").write_text("\n".join(ruls) + "\n")
    args = ["evaluate", "--dataset", str(data), "--rul", str(tmp_path / "rul.txt"), "--rules", str(EXAMPLES),
            "--database-url", database_url, "--step", "5", "--json"]  # fmt: skip
    assert main(args) == 0
    report = json.loads(capsys.readouterr().out)
    assert KEYS | {"precision", "recall"} <= report.keys()
    confusion = report["confusion"]
    assert sum(confusion.values()) == 10
    assert confusion["tp"] + confusion["fn"] == sum(1 for r in ruls if int(r) <= 30) == report["scored_units"]
    assert report["step_cycles"] == 5
    critical, warning = report["by_severity"]["critical"], report["by_severity"]["warning"]
    assert sum(critical["confusion"].values()) == 10 and {"precision", "recall"} <= critical.keys()
    assert warning.keys() >= KEYS and "precision" not in warning


def test_the_prototype_rule_never_fires_on_fd001(
    cmapss_dir: Path, tmp_path: Path, database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    rule = tmp_path / "prototype.yaml"
    rule.write_text(
        "name: sensor-11-over-500\nline: prototype\nseverity: critical\n"
        'condition: {type: threshold, sensor: sensor_11, op: ">", value: 500}\n'
    )
    data = subset(cmapss_dir / "train_FD001.txt", tmp_path / "train.txt", {1, 2, 3})
    assert (
        main(
            [
                "evaluate",
                "--dataset",
                str(data),
                "--rules",
                str(rule),
                "--database-url",
                database_url,
                "--json",
            ]
        )
        == 0
    )
    report = json.loads(capsys.readouterr().out)
    assert report["alerts"] == 0 and report["detection_rate"] == 0.0 and report["median_lead_cycles"] is None
    assert report["missed_units"] == [1, 2, 3]


def test_evaluate_runs_its_own_postgresql_by_default(
    cmapss_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = subset(cmapss_dir / "train_FD001.txt", tmp_path / "train.txt", {1})
    assert main(["evaluate", "--dataset", str(data), "--rules", str(EXAMPLES)]) == 0
    text = capsys.readouterr().out
    assert "detection rate" in text and "1 units" in text


@pytest.mark.parametrize(
    ("extra", "expected"),
    [(["--step", "0"], "--step must be at least 1"), (["--rul", "missing.txt"], "missing.txt: no such file")],
)
def test_evaluate_refuses_bad_input(
    cmapss_dir: Path, extra: list[str], expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["evaluate", "--dataset", str(cmapss_dir / "test_FD001.txt"), "--rules", str(EXAMPLES), *extra]
    assert main(args) == 2
    assert expected in capsys.readouterr().err


def test_evaluate_k_fold_refits_the_models_and_pools_the_held_out_units(
    cmapss_dir: Path, tmp_path: Path, database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    data = subset(cmapss_dir / "train_FD001.txt", tmp_path / "train.txt", set(range(1, 9)))
    args = ["evaluate", "--dataset", str(data), "--rules", str(EXAMPLES), "--database-url", database_url,
            "--folds", "2", "--step", "10"]  # fmt: skip
    assert main(args) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["folds"] == 2 and [f["units"] for f in report["per_fold"]] == [[1, 3, 5, 7], [2, 4, 6, 8]]
    for fold in report["per_fold"]:
        (source,) = fold["models"]
        assert "refitted" in source and fold["models"][source]["r2"] < 1
    failure, truncated = report["run_to_failure"], report["truncated"]
    assert failure["units"] == truncated["units"] == 8 and "precision" not in failure
    assert sum(truncated["by_severity"]["critical"]["confusion"].values()) == 8
    assert truncated["rul_estimates"]["rul-imminent"]["units"] == 8
    with psycopg.connect(database_url) as conn:  # every fold's replay cleaned up after itself
        assert conn.execute("SELECT count(*) FROM telemetry").fetchone() == (0,)
