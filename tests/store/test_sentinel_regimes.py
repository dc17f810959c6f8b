"""Operating-regime baselines on a real PostgreSQL: the SQL regime score equals the model's, and on a
six-point synthetic fleet the raw pack fails where the regime-normalised rules meet the issue's target."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta
from pathlib import Path

import psycopg
from psycopg import sql

from tests.store.sentinel_series import LINE, T0, alerts, rules, run
from workloads.sample import Reading
from workloads.sentinel.evaluate import evaluate
from workloads.sentinel.health_index import dump_model, fit
from workloads.sentinel.kinds import health_index_score
from workloads.sentinel.statement import Binder
from workloads.sources.synthetic import FD001, SyntheticSource, with_operating_points
from workloads.store.migrate import migrate
from workloads.store.partitions import ensure_partitions
from workloads.store.writer import copy_rows

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "rules"
SIX_POINTS = with_operating_points(FD001)
REGIME_PACK = """\
name: hpc-health-index
line: line-a
severity: warning
condition: {type: healthIndex, model: models/six-point.json, window: 10s, op: ">", value: 0.4}
clear: {op: "<", value: 0.25}
"""


def fleet(seed: int, units: int) -> dict[int, list[Reading]]:
    """One life per unit, run to failure, at the six operating points of FD002."""
    src = SyntheticSource(seed=seed, calibration=SIX_POINTS)
    return {u: [src.reading(u, t) for t in range(src.life(u, 0).length)] for u in range(1, units + 1)}


def write_cmapss(path: Path, trajectories: Mapping[int, Sequence[Reading]]) -> Path:
    with path.open("w") as out:
        for unit, rows in trajectories.items():
            for r in rows:
                print(unit, r.cycle, *(f"{v:.8g}" for v in (*r.settings, *r.sensors)), file=out)
    return path


def test_the_sql_regime_score_is_the_models(database_url: str, tmp_path: Path) -> None:
    model = fit(fleet(11, 30), regimes=6).model
    assert model.regimes is not None and len(model.regimes.centroids) == 6
    (tmp_path / "six-point.json").write_text(dump_model(model))
    hi = "{type: healthIndex, model: six-point.json, window: 10s, op: '>', value: 0.4}"
    loaded = rules(f"[{{name: hi, condition: {hi}}}]", base=tmp_path)
    unit = fleet(12, 1)[1]
    regimes_seen = {model.regimes.assign(r.settings) for r in unit}
    assert len(regimes_seen) == 6  # every point occurs, so every CASE branch is exercised
    rows = [(LINE, 1, r.cycle, T0 + timedelta(seconds=r.cycle), *r.settings, *r.sensors) for r in unit]
    migrate(database_url)
    with psycopg.connect(database_url) as conn:
        ensure_partitions(conn, T0, T0 + timedelta(days=1))
        copy_rows(conn, rows)
        b = Binder()
        expr = health_index_score(b, loaded[0])
        query = sql.SQL("SELECT {} FROM telemetry WHERE line = {} ORDER BY ts").format(expr, b.bind(LINE))
        got = [row[0] for row in conn.execute(query, b.params).fetchall()]
    assert len(got) == len(unit)
    for value, reading in zip(got, unit, strict=True):
        assert abs(value - model.score_reading(reading)) < 1e-9


def test_drift_with_regimes_judges_the_standardised_sensor(database_url: str, tmp_path: Path) -> None:
    model = fit(fleet(11, 30), regimes=6).model
    assert model.regimes is not None
    (tmp_path / "six-point.json").write_text(dump_model(model))
    drift = "{type: drift, sensor: Ps30, regimes: six-point.json, window: 20s, threshold: 0.01}"
    loaded = rules(f"[{{name: z, condition: {drift}}}]", base=tmp_path)
    unit = fleet(12, 1)[1]
    rows = [(LINE, 1, r.cycle, T0 + timedelta(seconds=r.cycle), *r.settings, *r.sensors) for r in unit]
    migrate(database_url)
    with psycopg.connect(database_url) as conn:
        ensure_partitions(conn, T0, T0 + timedelta(days=1))
        copy_rows(conn, rows)
        conn.commit()
    last = unit[-1].cycle
    run(database_url, loaded, last)
    (a,) = alerts(database_url)
    regimes = model.regimes
    window = [regimes.normalise("Ps30", r.sensors[10], regimes.assign(r.settings)) for r in unit[-20:]]
    expected = abs(sum(window) / len(window))
    assert expected > 3  # the last 20 cycles before failure: far above the healthy per-regime level
    assert a["open"] and abs(a["worst_value"] - expected) < 1e-9


def test_regime_normalised_rules_detect_a_six_point_fleet_the_raw_pack_cannot(
    database_url: str, tmp_path: Path
) -> None:
    # fitted on one fleet, judged on another (other seed: other units, lives and noise)
    model = fit(fleet(11, 60), regimes=6).model
    pack = tmp_path / "pack"
    (pack / "models").mkdir(parents=True)
    (pack / "models" / "six-point.json").write_text(dump_model(model))
    (pack / "hpc-health-index.yaml").write_text(REGIME_PACK)
    data = write_cmapss(tmp_path / "six-point.txt", fleet(12, 30))
    raw = evaluate(str(data), str(EXAMPLES), database_url=database_url, step=2)
    normalised = evaluate(str(data), str(pack), database_url=database_url, step=2)
    raw_warning = raw["by_severity"]["warning"]
    warning = normalised["by_severity"]["warning"]
    # the shipped pack (FD001 levels, fd001-health) is swamped by the operating points
    assert raw_warning["false_alarms_per_1000"] > 1 or raw_warning["detection_rate"] < 0.9
    assert warning["detection_rate"] >= 0.9
    assert warning["false_alarms_per_1000"] <= 1.0
    assert warning["median_lead_cycles"] is not None and warning["median_lead_cycles"] >= 30
