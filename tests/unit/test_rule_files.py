"""Rule files: plain rules or SentinelRule resources, validated whole; one-line errors name the file."""

from __future__ import annotations

from pathlib import Path

import pytest

from workloads.errors import DynolineError
from workloads.sentinel.health_index import packaged_models
from workloads.sentinel.rules import load_rules

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "rules"

THRESHOLD = """
name: t50-hot
line: line-a
condition: {type: threshold, sensor: T50, op: ">", value: 1430}
"""


def write(dir_: Path, name: str, text: str) -> Path:
    path = dir_ / name
    path.write_text(text, encoding="utf-8")
    return path


def test_the_default_pack_loads_and_covers_every_condition_kind() -> None:
    rules = load_rules(EXAMPLES)
    kinds = {r.rule.condition.type for r in rules}
    assert kinds == {"threshold", "sustained", "rateOfChange", "drift", "healthIndex", "rul"}
    assert {r.rule.line for r in rules} == {"line-a"}
    assert any(r.rule.action == "quarantine" for r in rules)
    # tiers that mean what they say: every critical rule stops the unit, no warning rule does
    assert all((r.rule.action == "quarantine") == (r.rule.severity == "critical") for r in rules)
    # each file is one rule named like the file
    assert sorted(f"{r.rule.name}.yaml" for r in rules) == sorted(p.name for p in EXAMPLES.glob("*.yaml"))
    hi = [r for r in rules if r.rule.condition.type in ("healthIndex", "rul")]
    assert hi and all(r.model is not None and r.model_source == "builtin:fd001-health" for r in hi)
    assert "fd001-health" in packaged_models()


def test_a_sentinelrule_resource_is_read_as_a_rule(tmp_path: Path) -> None:
    write(
        tmp_path,
        "cr.yaml",
        """
apiVersion: dynoline.dev/v1alpha1
kind: SentinelRule
metadata: {name: hpc-overheat}
spec:
  lineRef: {name: line-a}
  severity: critical
  condition: {type: sustained, sensor: T50, op: ">", value: 1430.0, for: 30s}
  clear: {op: "<", value: 1425.0}
  action: quarantine
""",
    )
    (loaded,) = load_rules(tmp_path)
    assert loaded.rule.name == "hpc-overheat" and loaded.rule.line == "line-a"
    assert loaded.rule.severity == "critical" and loaded.rule.action == "quarantine"


def test_a_model_file_is_found_next_to_the_rule(tmp_path: Path) -> None:
    (tmp_path / "models").mkdir()
    model = (Path(__file__).resolve().parents[2] / "workloads/sentinel/models/fd001-health.json").read_text()
    write(tmp_path / "models", "m.json", model)
    write(
        tmp_path,
        "hi.yaml",
        "name: hi\nline: l\ncondition: {type: healthIndex, model: models/m.json, value: 0.5}\n",
    )
    (loaded,) = load_rules(tmp_path)
    assert loaded.model is not None and loaded.model_source == str(tmp_path / "models" / "m.json")


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ({"a.yaml": "name: [unclosed\n"}, "a.yaml: line 2: not valid YAML"),
        ({"a.yaml": "- just\n- a list\n"}, "a.yaml: a rule is a mapping of fields, got list"),
        ({"a.yaml": THRESHOLD.replace("T50", "T99")}, "a.yaml: invalid rule: condition.threshold.sensor"),
        ({"a.yaml": THRESHOLD.replace("1430", "'1430; DROP TABLE telemetry'")}, "condition.threshold.value"),
        ({"a.yaml": THRESHOLD.replace("t50-hot", '"t50\'; DROP TABLE alerts; --"')}, "invalid rule: name"),
        (
            {"a.yaml": THRESHOLD, "b.yaml": THRESHOLD},
            "b.yaml: rule 't50-hot' on line 'line-a' is also defined in",
        ),
        ({"a.yaml": THRESHOLD + "---\n" + THRESHOLD}, "a.yaml (document 2): rule 't50-hot'"),
        (
            {"a.yaml": "name: hi\nline: l\ncondition: {type: healthIndex, model: nope, value: 0.5}\n"},
            "unknown health-index model 'nope'",
        ),
        (
            {
                "a.yaml": "name: hi\nline: l\n"
                "condition: {type: healthIndex, model: m/missing.json, value: 0.5}\n"
            },
            "missing.json' not found",
        ),
        (
            {"a.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n"},
            "only kind SentinelRule",
        ),
        ({"notes.txt": THRESHOLD}, "no rule files"),
    ],
)
def test_bad_rule_files_stop_everything_with_one_line(
    tmp_path: Path, files: dict[str, str], expected: str
) -> None:
    for name, text in files.items():
        write(tmp_path, name, text)
    with pytest.raises(DynolineError) as err:
        load_rules(tmp_path)
    message = str(err.value)
    assert expected in message
    assert "\n" not in message


def test_a_missing_path_is_named(tmp_path: Path) -> None:
    with pytest.raises(DynolineError, match="no such rule file or directory"):
        load_rules(tmp_path / "nope")


def test_an_oversized_rule_file_is_refused_unread(tmp_path: Path) -> None:
    write(tmp_path, "big.yaml", "#" * (1 << 20) + "\n" + THRESHOLD)
    with pytest.raises(DynolineError, match="too large"):
        load_rules(tmp_path)
