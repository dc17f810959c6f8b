"""Regime assignment and per-regime statistics: the pure reference the SQL twin is held to."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from psycopg import sql

from workloads.catalog import sensor
from workloads.cli import main
from workloads.errors import DynolineError
from workloads.sentinel.health_index import fit, parse_model
from workloads.sentinel.regimes import fit_regimes, normalised_sql
from workloads.sentinel.statement import Binder
from workloads.sources.synthetic import FD001, FD002_SETTINGS, SyntheticSource, with_operating_points


def test_kmeans_finds_the_six_operating_points_of_the_generator() -> None:
    src = SyntheticSource(seed=5, calibration=with_operating_points(FD001))
    readings = [src.reading(u, t) for u in range(1, 6) for t in range(150)]
    settings = [r.settings for r in readings]
    values = {"T50": [r.sensors[3] for r in readings]}
    model = fit_regimes(settings, values, [True] * len(readings), 6)
    truth = {p: i for i, p in enumerate(FD002_SETTINGS)}
    pairs = {(min(truth, key=lambda p: sum((a - b) ** 2 for a, b in zip(p, r.settings, strict=True))),
              model.assign(r.settings)) for r in readings}  # fmt: skip
    assert len(pairs) == 6 and len({g for _, g in pairs}) == 6  # one regime per operating point
    for r in readings[:50]:
        z = model.normalise("T50", r.sensors[3], model.assign(r.settings))
        assert abs(z) < 6  # standardised within its regime (raw T50 differs by hundreds across points)


def test_too_many_regimes_or_too_few_healthy_samples_are_refused() -> None:
    with pytest.raises(DynolineError, match="between 1 and 16"):
        fit_regimes([(0.0, 0.0, 100.0)] * 3, {}, [True] * 3, 17)
    with pytest.raises(DynolineError, match="fewer than 2 healthy samples"):
        fit_regimes([(0.0, 0.0, 100.0), (40.0, 0.8, 60.0)] * 3, {"T50": [1.0] * 6}, [True, False] * 3, 2)


def test_the_regime_sql_binds_every_number() -> None:
    src = SyntheticSource(seed=6, calibration=with_operating_points(FD001))
    model = fit({u: [src.reading(u, t) for t in range(src.life(u, 0).length)] for u in (1, 2, 3)}, regimes=6)
    regimes = model.model.regimes
    assert regimes is not None and model.model.training["regimes"] == 6
    b = Binder()
    text = sql.SQL("{}").format(normalised_sql(b, regimes, "T50")).as_string(None)
    assert "1394" not in text and str(regimes.centroids[1][0])[:6] not in text
    # five tests pick one of six regimes, computed once; then six branches
    assert text.count("CASE") == 2
    assert text.count(" THEN ") == 5 + 6 and "%(p" in text


def test_sentinel_fit_regimes_writes_a_model_that_reads_back_and_refuses_bad_shapes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = SyntheticSource(seed=8, calibration=with_operating_points(FD001))
    data = tmp_path / "six.txt"
    data.write_text(
        "".join(
            f"{u} {r.cycle} " + " ".join(str(v) for v in (*r.settings, *r.sensors)) + "\n"
            for u in range(1, 9)
            for r in (src.reading(u, t) for t in range(src.life(u, 0).length))
        )
    )
    out = tmp_path / "m.json"
    args = ["sentinel", "fit", "--dataset", str(data), "--out", str(out), "--folds", "2", "--regimes", "6"]
    assert main(args) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["regimes"] == 6 and report["out_of_sample"]["folds"] == 2
    model = parse_model(out.read_text(), "m.json")
    assert model.regimes is not None and len(model.regimes.centroids) == 6
    reading = src.reading(1, 0)
    assert model.score_reading(reading) == model.score(
        {s.name: reading.sensors[sensor(s.name).index - 1] for s in model.sensors}, reading.settings
    )
    broken = json.loads(out.read_text())
    broken["regimes"]["means"]["T50"] = broken["regimes"]["means"]["T50"][:5]
    with pytest.raises(DynolineError, match=r"regimes: .*T50: one mean and one sd per regime"):
        parse_model(json.dumps(broken), "m.json")
    assert main([*args[:-1], "17"]) == 2
    assert "regimes must be between 1 and 16" in capsys.readouterr().err
