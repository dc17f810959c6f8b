"""promtool on the chart's own alerting rules: `check rules`, and `test rules` with series that make every
alert fire and stay silent as it should (rules_test.yml, annotations_test.yml).

The rules are rendered by helm exactly as a release named `dynoline` in `dynoline-system` would have them,
with the operator scraped (so DynolineOperatorDown exists) and an additional rule label.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

from tests import tools

HERE = Path(__file__).resolve().parent
RENDER = (
    "prometheusRule.enabled=true",
    "serviceMonitor.enabled=true",
    "prometheusRule.additionalRuleLabels.team=lines",
)


def chart_groups() -> list[dict[str, Any]]:
    (rule,) = [d for d in tools.render(*RENDER) if d["kind"] == "PrometheusRule"]
    groups: list[dict[str, Any]] = rule["spec"]["groups"]
    return groups


def alerts(groups: list[dict[str, Any]]) -> list[str]:
    return [r["alert"] for g in groups for r in g["rules"] if "alert" in r]


def write_rules(directory: Path) -> list[dict[str, Any]]:
    groups = chart_groups()
    (directory / "rules-annotated.yml").write_text(yaml.safe_dump({"groups": groups}))
    # promtool compares annotations whole: rules_test.yml checks firing on the rules without them.
    bare = copy.deepcopy(groups)
    for group in bare:
        for rule in group["rules"]:
            rule.pop("annotations", None)
    (directory / "rules.yml").write_text(yaml.safe_dump({"groups": bare}))
    return groups


def test_promtool_checks_the_charts_rules(tmp_path: Path) -> None:
    write_rules(tmp_path)
    done = tools.run([tools.promtool(), "check", "rules", str(tmp_path / "rules-annotated.yml")])
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS: 13 rules found" in done.stdout, done.stdout


def test_every_alert_fires_and_stays_silent_as_promtool_tests_say(tmp_path: Path) -> None:
    groups = write_rules(tmp_path)
    tests = ("rules_test.yml", "annotations_test.yml")
    for name in tests:
        (tmp_path / name).write_text((HERE / name).read_text())
    done = tools.run([tools.promtool(), "test", "rules", *tests], cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr

    cases = yaml.safe_load((HERE / "rules_test.yml").read_text())["tests"]
    expectations = [t for case in cases for t in case["alert_rule_test"]]
    for alert in alerts(groups):
        mine = [t for t in expectations if t["alertname"] == alert]
        assert any(t["exp_alerts"] for t in mine), f"{alert}: no promtool case in which it fires"
        assert any(not t["exp_alerts"] for t in mine), f"{alert}: no promtool case in which it stays silent"
