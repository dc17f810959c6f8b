from __future__ import annotations

import argparse
import gc
import json
from pathlib import Path

import pytest

from workloads.cli import build_parser
from workloads.errors import DynolineError
from workloads.simulator.cli import config_from_args, long_lived_heap
from workloads.simulator.config import SimulatorConfig, parse_shard


def parse(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(["simulate", *argv])


def test_flags_make_a_config() -> None:
    c = config_from_args(
        parse(
            "--line",
            "a",
            "--units",
            "10",
            "--rate",
            "2.5",
            "--shard",
            "1",
            "--shards",
            "3",
            "--metrics-port",
            "0",
        )
    )
    assert (c.line, c.units, c.rate_hz, c.shard, c.shards, c.metrics_port) == ("a", 10, 2.5, 1, 3, 0)
    assert c.shard_units == 3  # units 1, 4, 7
    assert c.spool_path == Path(".dynoline/spool/a-shard1.spool")


def test_default_queue_bound_holds_seconds_of_rows() -> None:
    assert SimulatorConfig(line="a", units=10_000, rate_hz=1.0).queue_bound == 50_000
    assert SimulatorConfig(line="a", units=3, rate_hz=1.0).queue_bound == 1000
    assert SimulatorConfig(line="a", units=3, rate_hz=1.0, queue_rows=7).queue_bound == 7


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--rate", "0"], "--rate must be a positive finite number of Hz, got 0.0"),
        (["--rate", "-2"], "--rate must be a positive finite number of Hz, got -2.0"),
        (["--rate", "nan"], "--rate must be a positive finite number of Hz, got nan"),
        (["--rate", "inf"], "--rate must be a positive finite number of Hz, got inf"),
        (["--rate", "fast"], "--rate 'fast': expected a number of Hz"),
        (["--units", "0"], "--units must be at least 1, got 0"),
        (["--shard", "2", "--shards", "2"], "--shard 2 is out of range: shards are 0..1"),
        (["--shard", "-1", "--shards", "2"], "--shard -1 is out of range: shards are 0..1"),
        (["--shard", "one"], "--shard 'one': expected a shard number or a pod name ending in -N"),
        (["--shards", "5", "--units", "4"], "--shards 5 exceeds --units 4"),
        (["--no-pace"], "--no-pace needs --ticks"),
        (["--seed", "3"], "--seed applies to --source synthetic only"),
        (["--max-latency-ms", "-1"], "--max-latency-ms must be between 0 and 60000"),
        (["--duration", "nan"], "--duration must be a finite number"),
        (["--latest-interval-ms", "-5"], "--latest-interval-ms must be between 0 and 99000, got -5"),
        (["--latest-interval-ms", "100000"], "--latest-interval-ms must be between 0 and 99000, got 100000"),
    ],
)
def test_bad_flags_are_one_line_errors(argv: list[str], message: str) -> None:
    with pytest.raises(DynolineError) as err:
        config_from_args(parse("--line", "a", *argv))
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_line_is_required_without_a_file() -> None:
    with pytest.raises(DynolineError, match="--line is required"):
        config_from_args(parse("--units", "3"))


def test_bad_line_name() -> None:
    with pytest.raises(DynolineError, match="DNS label"):
        config_from_args(parse("--line", "Line A"))


def test_shard_from_a_statefulset_pod_name() -> None:
    assert parse_shard("line-a-sim-3") == 3
    assert parse_shard("2") == 2
    with pytest.raises(DynolineError):
        parse_shard("line-a-sim")


def test_dynoline_resource_as_config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    f = tmp_path / "line.yaml"
    f.write_text(
        "apiVersion: dynoline.dev/v1alpha1\nkind: DynoLine\nmetadata: {name: line-a}\n"
        "spec:\n  units: 12\n  rateHz: 2\n  shards: 4\n  source: {type: synthetic, seed: 7}\n"
        "  faults: [{unit: 5, startAfter: 30s}]\n"
        "  database: {secretRef: {name: telemetry-db}}\n  retention: 3d\n"
    )
    monkeypatch.setenv("DYNOLINE_SHARD", "line-a-sim-2")
    c = config_from_args(parse("--config", str(f), "--metrics-port", "0"))
    assert (c.line, c.units, c.rate_hz, c.shards, c.shard) == ("line-a", 12, 2.0, 4, 2)
    assert c.source.type == "synthetic" and c.source.seed == 7
    assert [fault.unit for fault in c.faults] == [5]
    assert c.retention.days == 3
    assert c.latest_interval == 1.0  # the spec's default
    # a flag beats the environment
    assert config_from_args(parse("--config", str(f), "--shard", "1")).shard == 1


def test_plain_line_file_with_tuning(tmp_path: Path) -> None:
    f = tmp_path / "line.json"
    f.write_text(
        json.dumps(
            {
                "line": "b",
                "spec": {"units": 4, "rateHz": 1},
                "simulator": {"batchRows": 100, "maxLatencyMs": 20, "spool": str(tmp_path)},
            }
        )
    )
    c = config_from_args(parse("--config", str(f), "--batch-rows", "50"))
    assert (c.batch_rows, c.max_latency) == (50, 0.02)
    assert c.spool_path == tmp_path / "b-shard0.spool"


def test_spool_directory_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # the operator mounts a volume and passes the directory with a trailing slash
    monkeypatch.setenv("DYNOLINE_SPOOL", f"{tmp_path}/not-yet/")
    c = config_from_args(parse("--line", "a", "--shard", "a-1", "--shards", "2", "--units", "2"))
    assert c.spool_path == tmp_path / "not-yet" / "a-shard1.spool"
    assert config_from_args(parse("--line", "a", "--spool", str(tmp_path / "f.spool"))).spool_path == (
        tmp_path / "f.spool"
    )


def test_invalid_line_file_is_named(tmp_path: Path) -> None:
    f = tmp_path / "line.yaml"
    f.write_text("line: a\nspec: {units: 3, rateHz: -1}\n")
    with pytest.raises(DynolineError) as err:
        config_from_args(parse("--config", str(f)))
    assert f"--config {f}: invalid LineFile: spec.rateHz" in str(err.value)
    f.write_text("line: a\nspec: [\n")
    with pytest.raises(DynolineError, match="not valid YAML/JSON"):
        config_from_args(parse("--config", str(f)))
    with pytest.raises(DynolineError, match="cannot read"):
        config_from_args(parse("--config", str(tmp_path / "missing.yaml")))


def test_the_simulate_command_freezes_the_heap_for_the_run_only() -> None:
    gc.unfreeze()  # whatever froze before this test
    objects = [object() for _ in range(10)]
    with long_lived_heap():
        assert gc.get_freeze_count() >= len(objects)
    assert gc.get_freeze_count() == 0


def test_the_heap_is_unfrozen_when_the_run_fails() -> None:
    gc.unfreeze()
    with pytest.raises(DynolineError), long_lived_heap():
        raise DynolineError("the run failed")
    assert gc.get_freeze_count() == 0


@pytest.mark.parametrize(("text", "interval"), [("0s", 0.0), ("250ms", 0.25), ("5s", 5.0)])
def test_the_latest_interval_comes_from_the_line_and_a_flag_beats_it(
    tmp_path: Path, text: str, interval: float
) -> None:
    f = tmp_path / "line.yaml"
    f.write_text(f"line: a\nspec:\n  units: 2\n  latestInterval: {text}\n")
    assert config_from_args(parse("--config", str(f))).latest_interval == interval
    assert config_from_args(parse("--config", str(f), "--latest-interval-ms", "0")).latest_interval == 0.0


@pytest.mark.parametrize("text", ["0", "0ms", "1m", "100s", "100000ms", "-1s"])
def test_a_latest_interval_out_of_its_form_names_the_field(tmp_path: Path, text: str) -> None:
    f = tmp_path / "line.yaml"
    f.write_text(f"line: a\nspec:\n  units: 2\n  latestInterval: '{text}'\n")
    with pytest.raises(DynolineError, match=r"latestInterval") as err:
        config_from_args(parse("--config", str(f)))
    assert "\n" not in str(err.value)
