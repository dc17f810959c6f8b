"""The health-index model: fitted by least squares, stored as a strict JSON file."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from workloads.errors import DynolineError
from workloads.sample import Reading
from workloads.sentinel.health_index import degradation_target, dump_model, fit, parse_model, resolve_model


def trajectories(units: int = 6, knee: int = 20) -> dict[int, tuple[Reading, ...]]:
    """Sensors T50 and Ps30 move exactly with the degradation target; the others wobble independently."""
    out = {}
    for u in range(1, units + 1):
        life = 40 + 7 * u
        rows = []
        for c in range(1, life + 1):
            y = degradation_target(life - c, knee)
            sensors = [500.0 + math.sin(c * 1.3 + u + i) for i in range(21)]
            sensors[3] = 1400.0 + 30.0 * y + 0.5 * math.cos(c * 0.7 + u)  # T50
            sensors[10] = 47.0 + 1.0 * y - 0.01 * math.cos(c * 0.7 + u)  # Ps30: cancels T50's wobble
            rows.append(Reading(u, c, (0.0, 0.0, 100.0), tuple(sensors)))
        out[u] = tuple(rows)
    return out


def test_fit_recovers_a_linear_degradation() -> None:
    result = fit(trajectories(), sensors=["T50", "Ps30"], knee_rul=20, source="synthetic")
    assert result.r2 > 0.999
    model = result.model
    assert [s.name for s in model.sensors] == ["T50", "Ps30"]
    assert model.target.knee_rul == 20 and model.training["units"] == 6
    healthy = model.score({"T50": 1400.0, "Ps30": 47.0})
    failed = model.score({"T50": 1430.0, "Ps30": 48.0})
    assert abs(healthy) < 0.02 and abs(failed - 1.0) < 0.02


def test_a_model_file_round_trips(tmp_path: Path) -> None:
    model = fit(trajectories(), sensors=["T50", "Ps30"], knee_rul=20).model
    path = tmp_path / "m.json"
    path.write_text(dump_model(model))
    again, where = resolve_model("m.json", tmp_path)
    assert again == model and where == str(path)


def test_constant_sensors_cannot_be_fitted() -> None:
    with pytest.raises(DynolineError, match="sensor T2 is constant"):
        data = trajectories()
        flat = {
            u: tuple(Reading(r.unit_id, r.cycle, r.settings, (1.0, *r.sensors[1:])) for r in rs)
            for u, rs in data.items()
        }
        fit(flat, sensors=["T2", "T50"])


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("not json", "not a JSON health-index model"),
        ("[]", "is a JSON object"),
        ('{"format": "other", "intercept": 0, "sensors": []}', "format"),
        (
            '{"format": "dynoline.dev/health-index/v1", "intercept": 0,'
            ' "sensors": [{"name": "T99", "center": 0, "scale": 1, "weight": 1}]}',
            "unknown sensor",
        ),
        (
            '{"format": "dynoline.dev/health-index/v1", "intercept": 0,'
            ' "sensors": [{"name": "T50", "center": 0, "scale": 0, "weight": 1}]}',
            "scale",
        ),
        (
            '{"format": "dynoline.dev/health-index/v1", "intercept": NaN,'
            ' "sensors": [{"name": "T50", "center": 0, "scale": 1, "weight": 1}]}',
            "intercept",
        ),
    ],
)
def test_bad_model_files_are_refused(text: str, expected: str) -> None:
    with pytest.raises(DynolineError) as err:
        parse_model(text, "m.json")
    assert expected in str(err.value) and str(err.value).startswith("m.json:")


def test_the_shipped_model_is_the_documented_fit() -> None:
    model, where = resolve_model("fd001-health", None)
    assert where == "builtin:fd001-health"
    assert model.training["source"] == "train_FD001.txt" and model.training["units"] == 100
    assert (
        len(model.sensors) == 14 and json.loads(dump_model(model))["format"] == "dynoline.dev/health-index/v1"
    )
