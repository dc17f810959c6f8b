"""values.schema.json: bad values fail `helm template` (so `helm install`) with the path of the culprit."""

from __future__ import annotations

import json

import pytest

from tests import tools


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("replicas=2", "at '/replicas': maximum: got 2, want 1"),
        (
            "serviceMonitor.intervall=1m",
            "at '/serviceMonitor': additional properties 'intervall' not allowed",
        ),
        ("imagee.tag=1", "additional properties 'imagee' not allowed"),
        ("image.pullPolicy=Sometimes", "at '/image/pullPolicy': value must be one of"),
        ("image.repository=", "at '/image/repository'"),
        ("prometheusRule.operatorDownFor=5", "at '/prometheusRule/operatorDownFor': got number, want string"),
        ("prometheusRule.lineNotReadyFor=soon", "at '/prometheusRule/lineNotReadyFor'"),
        ("prometheusRule.runbookUrl=docs/runbooks.md", "at '/prometheusRule/runbookUrl'"),
        ("prometheusRule.groups.sentinal.enabled=false", "additional properties 'sentinal' not allowed"),
        ("imagePullSecrets[0]=regcred", "at '/imagePullSecrets/0': got string, want object"),
        ("operator.namespaces={Lines}", "at '/operator/namespaces/0'"),
        ("operator.workers=0", "at '/operator/workers'"),
        ("operator.pushgateway=pushgateway:9091", "at '/operator/pushgateway'"),
        ("workloads.simulator.resource.limits.cpu=1", "at '/workloads/simulator'"),
        ("workloads.batch.resources.limits.cpu=1", "additional properties 'batch' not allowed"),
        ("postgresql.password=p@ss:word", "at '/postgresql/password'"),
        ("postgresql.persistence.size=8G", "at '/postgresql/persistence/size'"),
        ("postgresql.settings.Max-WAL=1GB", "invalid propertyName 'Max-WAL'"),
        ("postgresql.settings.max_wal_size.x=1", "at '/postgresql/settings/max_wal_size'"),
        ("metrics.port=70000", "at '/metrics/port'"),
    ],
)
def test_bad_values_fail_with_the_path(value: str, message: str) -> None:
    error = tools.render_error(value)
    assert "values don't meet the specifications of the schema" in error, error
    assert message in error, error


def test_defaults_and_the_documented_options_pass() -> None:
    tools.render(
        "replicas=0",
        "image.tag=1.2",
        "postgresql.enabled=true",
        "postgresql.image.tag=15",
        "serviceMonitor.scrapeTimeout=10s",
        "prometheusRule.additionalRuleLabels.team=lines",
    )


def test_the_schema_closes_every_object_it_describes() -> None:
    """additionalProperties: false wherever properties are listed, so no typo slips through."""
    schema = json.loads((tools.CHART / "values.schema.json").read_text())
    open_objects = []

    def walk(node: object, path: str) -> None:
        if isinstance(node, dict):
            if "properties" in node and node.get("additionalProperties") is not False:
                open_objects.append(path or "/")
            for key, value in node.items():
                walk(value, f"{path}/{key}")
        elif isinstance(node, list):
            for i, value in enumerate(node):
                walk(value, f"{path}/{i}")

    walk(schema, "")
    assert open_objects == []
