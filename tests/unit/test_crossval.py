"""k-fold by unit and test-like truncation: the out-of-sample scaffolding of `evaluate --folds`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from workloads.api.rule import Rule
from workloads.cli import main
from workloads.errors import DynolineError
from workloads.sentinel import crossval
from workloads.sentinel.health_index import resolve_model
from workloads.sentinel.rules import LoadedRule
from workloads.sources.cmapss import load_builtin


def test_folds_partition_the_units() -> None:
    folds = crossval.split([5, 1, 4, 2, 3, 6, 7], 3)
    assert folds == [[1, 4, 7], [2, 5], [3, 6]]
    with pytest.raises(DynolineError, match="--folds"):
        crossval.split([1, 2], 3)


def test_truncation_leaves_a_test_like_record() -> None:
    train = load_builtin("FD001", "train")
    cut, ruls = crossval.truncate(train)
    assert set(cut) == set(train)
    for unit, readings in cut.items():
        assert len(readings) + ruls[unit] == len(train[unit]) and len(readings) >= crossval.MIN_CYCLES
        assert 1 <= ruls[unit] <= 150
    spread = sorted(ruls.values())
    assert spread[0] <= 15 and spread[-1] >= 140  # spread over the whole range, not one cut for all


def test_refit_replaces_the_model_with_one_fitted_on_the_training_units() -> None:
    train = load_builtin("FD001", "train")
    model, source = resolve_model("fd001-health", None)
    rule = Rule.model_validate(
        {
            "name": "r",
            "line": "l",
            "condition": {"type": "rul", "model": "fd001-health", "op": "<=", "value": 30},
        }
    )
    loaded = [LoadedRule(rule, "test", model, source)]
    fold = {u: train[u] for u in range(1, 21)}
    (refitted,) = crossval.refit(loaded, fold, "units 1-20")
    assert refitted.model is not None and refitted.model.training["units"] == 20
    assert [s.name for s in refitted.model.sensors] == [s.name for s in model.sensors]
    assert refitted.model.intercept != model.intercept
    held_out = {u: train[u] for u in range(21, 31)}
    cut, ruls = crossval.truncate(held_out)
    errors = crossval.rul_errors(cut, ruls, [refitted])["r"]
    assert errors["units"] == 10 and 0 < errors["rmse_capped_cycles"] <= errors["rmse_cycles"] + 1e-9
    scores = crossval.model_scores(refitted.model, held_out)
    assert 0 < scores["r2"] < 1


def test_sentinel_fit_reports_out_of_sample_scores(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    train = load_builtin("FD001", "train")
    data = tmp_path / "train.txt"
    data.write_text(
        "".join(
            f"{u} {r.cycle} " + " ".join(str(v) for v in (*r.settings, *r.sensors)) + "\n"
            for u in range(1, 16)
            for r in train[u]
        )
    )
    assert (
        main(["sentinel", "fit", "--dataset", str(data), "--out", str(tmp_path / "m.json"), "--folds", "3"])
        == 0
    )
    report = json.loads(capsys.readouterr().out)
    oos = report["out_of_sample"]
    assert oos["folds"] == 3 and [f["units"] for f in oos["per_fold"]] == [5, 5, 5]
    assert 0 < oos["r2_mean"] < report["r2"]  # held-out units fit worse than the ones fitted on
    assert oos["rul_rmse_capped_cycles"] <= oos["rul_rmse_cycles"] and oos["rul_rmse_cycles"] > 0
