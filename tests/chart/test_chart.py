"""`helm lint` and `helm template` of charts/dynoline, with tests on the rendered objects (default and
non-default values). helm is the one `make test` builds (tests/tools.py)."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry

from controllers import settings as operator_settings
from controllers.metrics import Metrics
from controllers.pods import WorkloadSettings
from tests import tools
from tests.e2e.conftest import CHART_TEST_VALUES
from workloads.sentinel.metrics import SentinelMetrics
from workloads.simulator.metrics import SimulatorMetrics
from workloads.store import dsn

REPO = tools.REPO
KEEP = "helm.sh/resource-policy"


def kinds(docs: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return sorted((d["kind"], d["metadata"]["name"]) for d in docs)


def one(docs: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    found = [d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]
    assert len(found) == 1, f"expected one {kind} {name or ''}, got {kinds(found)}"
    return found[0]


def operator_container(docs: list[dict[str, Any]]) -> dict[str, Any]:
    (container,) = one(docs, "Deployment")["spec"]["template"]["spec"]["containers"]
    return dict(container)


def env_of(container: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container["env"] if "value" in e}


def alert_rules(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rule = one(docs, "PrometheusRule")
    return [r for g in rule["spec"]["groups"] for r in g["rules"] if "alert" in r]


NON_DEFAULT = (
    "operator.namespaces={lines,qa}",
    "serviceMonitor.enabled=true",
    "serviceMonitor.additionalLabels.release=kps",
    "prometheusRule.enabled=true",
    "prometheusRule.labels.release=kps",
    "grafanaDashboard.enabled=true",
    "networkPolicy.enabled=true",
    "postgresql.enabled=true",
    "imagePullSecrets[0].name=regcred",
    "image.repository=registry.example/dynoline",
    "image.tag=1.2.3",
    "operator.pushgateway=http://pushgateway.monitoring.svc:9091",
)


@pytest.mark.parametrize("values", [(), NON_DEFAULT], ids=["default", "non-default"])
def test_helm_lint_is_clean(values: tuple[str, ...]) -> None:
    sets = [arg for value in values for arg in ("--set", value)]
    done = tools.run([tools.helm(), "lint", "--strict", str(tools.CHART), *sets])
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 chart(s) failed" in done.stdout


def test_default_render_is_the_operator_and_its_crds() -> None:
    docs = tools.render()
    assert kinds(docs) == [
        ("ClusterRole", "dynoline"),
        ("ClusterRoleBinding", "dynoline"),
        ("CustomResourceDefinition", "dynolines.dynoline.dev"),
        ("CustomResourceDefinition", "sentinelrules.dynoline.dev"),
        ("Deployment", "dynoline"),
        ("Service", "dynoline-metrics"),
        ("ServiceAccount", "dynoline"),
    ]
    container = operator_container(docs)
    # The image reference lives in values image.*: what `docker build -t dynoline:<appVersion> .` tags.
    app_version = yaml.safe_load((tools.CHART / "Chart.yaml").read_text())["appVersion"]
    assert container["image"] == f"dynoline:{app_version}" == env_of(container)["DYNOLINE_IMAGE"]
    assert container["readinessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}
    assert one(docs, "Deployment")["spec"]["replicas"] == 1


def test_crds_are_templates_kept_on_uninstall_and_identical_to_crds_dir() -> None:
    for path in sorted((REPO / "crds").glob("*.yaml")):
        chart_copy = tools.CHART / "files" / "crds" / path.name
        assert chart_copy.read_bytes() == path.read_bytes(), f"{chart_copy} differs from {path}: make crds"
    rendered = {d["metadata"]["name"]: d for d in tools.render() if d["kind"] == "CustomResourceDefinition"}
    committed = [yaml.safe_load(p.read_text()) for p in sorted((REPO / "crds").glob("*.yaml"))]
    assert sorted(rendered) == sorted(c["metadata"]["name"] for c in committed)
    for crd in committed:
        got = rendered[crd["metadata"]["name"]]
        assert got["metadata"]["annotations"] == {KEEP: "keep"}
        assert got["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "Helm"
        # Everything but the release's metadata is the generated CRD, unchanged.
        assert {**got, "metadata": {}} == {**crd, "metadata": {}}
        assert {k: v for k, v in got["metadata"]["labels"].items() if k in crd["metadata"]["labels"]} == crd[
            "metadata"
        ]["labels"]
    assert [d for d in tools.render("crds.create=false") if d["kind"] == "CustomResourceDefinition"] == []


def test_watched_namespaces_get_a_role_each() -> None:
    docs = tools.render("operator.namespaces={lines,qa}")
    roles = [(d["kind"], d["metadata"]["namespace"]) for d in docs if d["kind"] in ("Role", "RoleBinding")]
    assert sorted(roles) == [
        ("Role", "lines"),
        ("Role", "qa"),
        ("RoleBinding", "lines"),
        ("RoleBinding", "qa"),
    ]
    assert not [d for d in docs if d["kind"].startswith("Cluster")]
    assert env_of(operator_container(docs))["DYNOLINE_NAMESPACES"] == "lines,qa"


def test_workload_values_reach_the_operator_as_it_reads_them() -> None:
    docs = tools.render(
        "imagePullSecrets[0].name=regcred",
        "imagePullSecrets[1].name=mirror",
        "workloads.simulator.resources.limits.memory=2Gi",
        "workloads.sentinel.nodeSelector.pool=batch",
        "workloads.migration.tolerations[0].key=dedicated",
        "workloads.migration.tolerations[0].operator=Exists",
    )
    config = operator_settings.from_env(env_of(operator_container(docs)))
    w = config.workload
    assert w.image_pull_secrets == ("regcred", "mirror")
    assert w.simulator.resources == {
        "requests": {"cpu": "100m", "memory": "128Mi"},
        "limits": {"memory": "2Gi"},
    }
    assert w.sentinel.node_selector == {"pool": "batch"}
    assert w.migration.tolerations == ({"key": "dedicated", "operator": "Exists"},)
    pod = one(docs, "Deployment")["spec"]["template"]["spec"]
    assert pod["imagePullSecrets"] == [{"name": "regcred"}, {"name": "mirror"}]


def test_the_e2e_suites_values_render() -> None:
    values = {**CHART_TEST_VALUES, "image.repository": "dynoline", "image.tag": "e2e"}
    docs = tools.render(*(f"{k}={v}" for k, v in values.items()))
    container = operator_container(docs)
    assert container["image"] == "dynoline:e2e" and container["args"] == ["--verbose", "operator"]


# ------------------------------------------------------------------------------------------- monitoring


def runbook_anchors() -> set[str]:
    text = (REPO / "docs" / "runbooks.md").read_text()
    return {m.lower() for m in re.findall(r"^## (\S+)$", text, flags=re.M)}


def test_every_alert_has_for_severity_texts_and_a_runbook_section() -> None:
    rules = alert_rules(tools.render("prometheusRule.enabled=true", "serviceMonitor.enabled=true",
                                     "prometheusRule.additionalRuleLabels.team=lines"))  # fmt: skip
    assert len(rules) == 13
    anchors = runbook_anchors()
    base = "https://github.com/dynoline/dynoline/blob/main/docs/runbooks.md#"
    for rule in rules:
        name = rule["alert"]
        assert re.fullmatch(r"[0-9]+[smh]", str(rule.get("for", ""))), f"{name}: for {rule.get('for')!r}"
        assert rule["labels"]["severity"] in ("critical", "warning"), name
        assert rule["labels"]["team"] == "lines", name
        notes = rule["annotations"]
        assert notes["summary"] and notes["description"], name
        assert notes["runbook_url"] == base + name.lower(), name
        assert name.lower() in anchors, f"docs/runbooks.md has no section '## {name}'"


def test_runbook_base_is_configurable() -> None:
    rules = alert_rules(
        tools.render("prometheusRule.enabled=true", "prometheusRule.runbookUrl=https://wiki/rb/")
    )
    assert {r["annotations"]["runbook_url"] for r in rules} == {
        f"https://wiki/rb#{r['alert'].lower()}" for r in rules
    }


def test_operator_down_only_when_something_scrapes_the_operator() -> None:
    def names(*values: str) -> list[str]:
        return [r["alert"] for r in alert_rules(tools.render("prometheusRule.enabled=true", *values))]

    assert "DynolineOperatorDown" not in names()
    assert "DynolineOperatorDown" in names("serviceMonitor.enabled=true")
    docs = tools.render("prometheusRule.enabled=true", "podMonitor.enabled=true")
    assert "DynolineOperatorDown" in [r["alert"] for r in alert_rules(docs)]
    # The PodMonitor gives its target the ServiceMonitor's job, the one the alert looks for.
    endpoint = one(docs, "PodMonitor")["spec"]["podMetricsEndpoints"][0]
    assert endpoint["relabelings"][0] == {"action": "replace", "targetLabel": "job",
                                          "replacement": "dynoline-metrics"}  # fmt: skip
    (down,) = [r for r in alert_rules(docs) if r["alert"] == "DynolineOperatorDown"]
    assert 'job="dynoline-metrics"' in down["expr"]


def test_rule_groups_can_be_switched_off() -> None:
    rule = one(tools.render("prometheusRule.enabled=true", "prometheusRule.groups.sentinel.enabled=false"),
               "PrometheusRule")  # fmt: skip
    assert [g["name"] for g in rule["spec"]["groups"]] == ["dynoline-operator", "dynoline-simulator"]


def test_monitors_carry_additional_labels_and_relabelings() -> None:
    docs = tools.render(
        "serviceMonitor.enabled=true", "serviceMonitor.additionalLabels.release=kps",
        "serviceMonitor.relabelings[0].action=labeldrop", "serviceMonitor.relabelings[0].regex=pod",
    )  # fmt: skip
    monitors = [d for d in docs if d["kind"] == "ServiceMonitor"]
    assert len(monitors) == 2
    for monitor in monitors:
        assert monitor["metadata"]["labels"]["release"] == "kps"
        assert monitor["spec"]["endpoints"][0]["relabelings"] == [{"action": "labeldrop", "regex": "pod"}]


def exported_metric_names() -> set[str]:
    """Every sample name the operator, a simulator and the sentinel export (histograms with suffixes)."""
    names: set[str] = set()
    registries = [Metrics().registry, SimulatorMetrics("l", 0).registry, SentinelMetrics().registry]
    sentinel = SentinelMetrics(CollectorRegistry())
    sentinel.open_alerts.labels("r", "l", "critical").set(0)
    sentinel.last_success.labels("l").set(0)
    sentinel.last_failure.labels("l").set(0)
    registries.append(sentinel.registry)
    for registry in registries:
        for family in registry.collect():
            names.add(family.name)
            names.update(s.name for s in family.samples)
            if family.type == "histogram":
                names.update(f"{family.name}{suffix}" for suffix in ("_bucket", "_count", "_sum"))
    return names


def test_grafana_dashboard_is_valid_json_whose_panels_query_exported_metrics() -> None:
    cm = one(tools.render("grafanaDashboard.enabled=true"), "ConfigMap", "dynoline-dashboard")
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    dashboard = json.loads(cm["data"]["dynoline.json"])
    assert dashboard["uid"] and dashboard["title"] and dashboard["schemaVersion"] >= 36
    exported = exported_metric_names()
    titles = []
    for panel in dashboard["panels"]:
        titles.append(panel["title"])
        for target in panel["targets"]:
            used = set(re.findall(r"\b(dynoline_[a-z_]+)", target["expr"]))
            assert used and used <= exported, f"{panel['title']}: {sorted(used - exported)} not exported"
    assert titles == [
        "Ingest rows/s per line", "Generation-to-commit lag p99", "Spool depth", "Open alerts by severity",
        "Quarantined units", "Operator reconcile errors", "telemetry_latest behind",
    ]  # fmt: skip
    for var in dashboard["templating"]["list"][1:]:
        assert set(re.findall(r"\b(dynoline_[a-z_]+)", var["query"]["query"])) <= exported


# ------------------------------------------------------------------------------------- bundled PostgreSQL


def test_bundled_postgresql_secret_is_what_a_dynoline_secret_ref_reads() -> None:
    docs = tools.render(
        "postgresql.enabled=true", "postgresql.image.repository=docker.io/library/dynoline-e2e-postgres",
        "postgresql.image.tag=15", "postgresql.secretNamespaces={lines}",
    )  # fmt: skip
    secrets = [d for d in docs if d["kind"] == "Secret"]
    assert sorted(s["metadata"]["namespace"] for s in secrets) == ["dynoline-system", "lines"]
    data = secrets[0]["stringData"]
    assert data == secrets[1]["stringData"]
    assert secrets[0]["metadata"]["annotations"][KEEP] == "keep"
    # The key a DynoLine's secretRef defaults to, in the format the workloads accept.
    from workloads.api.line import SecretKeyRef

    assert SecretKeyRef(name="x").key == "uri"
    assert dsn.validate(data["uri"]) == data["uri"]
    assert dsn.describe(data["uri"]) == "dynoline-postgresql.dynoline-system.svc:5432/dynoline"
    assert len(data["password"]) == 32 and f":{data['password']}@" in data["uri"]
    sts = one(docs, "StatefulSet", "dynoline-postgresql")
    pod = sts["spec"]["template"]["spec"]
    images = {c["image"] for c in [*pod["initContainers"], *pod["containers"]]}
    assert images == {"docker.io/library/dynoline-e2e-postgres:15"}
    env = {
        e["name"]: e["valueFrom"]["secretKeyRef"]["key"]
        for e in pod["containers"][0]["env"]
        if "valueFrom" in e
    }
    assert env == {"POSTGRES_USER": "username", "POSTGRES_PASSWORD": "password", "POSTGRES_DB": "dbname"}
    (claim,) = sts["spec"]["volumeClaimTemplates"]
    assert claim["spec"]["resources"]["requests"]["storage"] == "8Gi"
    assert one(docs, "Service", "dynoline-postgresql")["spec"]["ports"][0]["port"] == 5432


def test_bundled_postgresql_gets_the_recommended_settings_and_overrides() -> None:
    def args(*values: str) -> list[str]:
        docs = tools.render("postgresql.enabled=true", *values)
        pod = one(docs, "StatefulSet", "dynoline-postgresql")["spec"]["template"]["spec"]
        return list(pod["containers"][0].get("args", []))

    assert args() == [
        "-c", "checkpoint_timeout=15min", "-c", "max_wal_size=4GB",
        "-c", "synchronous_commit=on", "-c", "wal_compression=lz4",
    ]  # fmt: skip
    changed = args("postgresql.settings.max_wal_size=8GB", "postgresql.settings.wal_compression=pglz")
    assert "max_wal_size=8GB" in changed and "wal_compression=pglz" in changed
    assert "max_wal_size=4GB" not in changed
    assert args("postgresql.settings=null") == []


def test_a_given_postgresql_password_is_used_as_is() -> None:
    docs = tools.render("postgresql.enabled=true", "postgresql.password=s3cret-pw")
    assert one(docs, "Secret")["stringData"]["password"] == "s3cret-pw"


def test_network_policy_admits_metrics_from_the_listed_peers() -> None:
    docs = tools.render(
        "networkPolicy.enabled=true", "postgresql.enabled=true",
        "networkPolicy.metricsFrom[0].namespaceSelector.matchLabels.name=monitoring",
    )  # fmt: skip
    policy = one(docs, "NetworkPolicy", "dynoline")
    assert policy["spec"]["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "operator"
    metrics = policy["spec"]["ingress"][0]
    assert metrics["ports"] == [{"port": "metrics", "protocol": "TCP"}]
    assert metrics["from"] == [{"namespaceSelector": {"matchLabels": {"name": "monitoring"}}}]
    db = one(docs, "NetworkPolicy", "dynoline-postgresql")
    assert db["spec"]["ingress"][0]["from"][1]["podSelector"]["matchLabels"] == {
        "app.kubernetes.io/managed-by": "dynoline-operator"
    }


def test_chart_readme_does_not_point_at_a_published_image() -> None:
    text = (tools.CHART / "README.md").read_text() + (tools.CHART / "values.yaml").read_text()
    assert "ghcr.io" not in text
    notes = (tools.CHART / "templates" / "NOTES.txt").read_text()
    assert "examples/" not in notes


def test_default_workload_values_leave_the_pods_as_an_operator_without_them_makes() -> None:
    """Upgrading to a chart with workload values must not re-run migrations or roll every shard."""
    from controllers import manifests
    from workloads.api.line import DynoLineSpec

    owner = manifests.Owner("DynoLine", "line-a", "lines", "uid")
    spec = DynoLineSpec.model_validate({"database": {"secretRef": {"name": "db"}}})
    env = env_of(operator_container(tools.render()))
    from_chart = operator_settings.from_env(env).workload
    bare = operator_settings.from_env({"DYNOLINE_IMAGE": env["DYNOLINE_IMAGE"]}).workload
    assert manifests.migration_job(owner, spec, from_chart) == manifests.migration_job(owner, spec, bare)

    def shards(workload: WorkloadSettings) -> dict[str, Any]:
        return manifests.simulator_statefulset(owner, spec, workload, image="i", replicas=1, config="h")

    assert shards(from_chart) == shards(bare)


def test_every_value_the_readme_names_exists() -> None:
    values = yaml.safe_load((tools.CHART / "values.yaml").read_text())
    text = (tools.CHART / "README.md").read_text() + (REPO / "docs" / "runbooks.md").read_text()
    named = set(re.findall(r"`([a-z][A-Za-z]*(?:\.[A-Za-z]+)+)(?:=[^`]*)?`", text))
    checked = []
    # Named as removed (upgrading from 0.1.0): the schema refuses it by name.
    removed = {"serviceMonitor.labels"}
    assert "additional properties 'labels' not allowed" in tools.render_error(
        "serviceMonitor.labels.release=x"
    )
    for path in sorted(named - removed):
        head, *rest = path.split(".")
        if head not in values or not isinstance(values[head], dict):
            continue  # not a value (a file name, a metric, a label)
        node: Any = values
        for part in [head, *rest]:
            if part in ("release", "team") and isinstance(node, dict) and not node:
                break  # an example key under a free-form map (additionalLabels.release)
            assert isinstance(node, dict) and part in node, f"README names `{path}`, not in values.yaml"
            node = node[part]
        checked.append(path)
    assert len(checked) >= 20, checked
