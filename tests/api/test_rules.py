"""SentinelRule reconcile against kmock: CronJob and rule file, line references, runs, open alerts."""

from __future__ import annotations

from typing import Any

import psycopg
import yaml

from controllers import manifests, rules
from controllers.context import Context
from controllers.kube import Kube
from controllers.store_access import Store
from tests.api.conftest import Cluster, events_for, exists, obj
from tests.api.test_lines import NS, line, secret
from workloads.api.rule import Rule

SR = "dynoline.dev/v1alpha1/sentinelrules"
CRON = "batch/v1/cronjobs"
JOBS = "batch/v1/jobs"
CM = "v1/configmaps"


def rule(name: str = "hpc-overheat", line_name: str = "line-a", **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "lineRef": {"name": line_name},
        "schedule": "*/1 * * * *",
        "severity": "critical",
        "condition": {"type": "threshold", "sensor": "T50", "op": ">", "value": 1430.0},
        "action": "quarantine",
    }
    body.update(spec)
    return {
        "apiVersion": "dynoline.dev/v1alpha1",
        "kind": "SentinelRule",
        "metadata": {"name": name, "namespace": NS},
        "spec": body,
    }


def condition(cluster: Cluster, kind: str, name: str = "hpc-overheat") -> tuple[str, str]:
    for cond in obj(cluster, SR, NS, name).get("status", {}).get("conditions", []):
        if cond["type"] == kind:
            return cond["status"], cond["reason"]
    raise AssertionError(f"no {kind} condition")


def status(cluster: Cluster, name: str = "hpc-overheat") -> dict[str, Any]:
    result: dict[str, Any] = obj(cluster, SR, NS, name)["status"]
    return result


async def sentinel_job(kube: Kube, name: str, created: str, state: str | None) -> None:
    """What the CronJob controller creates and the Job controller later reports."""
    job_status: dict[str, Any] = {}
    if state == "Complete":
        job_status = {"completionTime": created, "conditions": [{"type": "Complete", "status": "True"}]}
    elif state == "Failed":
        job_status = {
            "conditions": [
                {"type": "Failed", "status": "True", "lastTransitionTime": created, "message": "exit code 4"}
            ]
        }
    await kube.create(
        {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {
                "name": name,
                "namespace": NS,
                "creationTimestamp": created,
                "labels": manifests.labels("hpc-overheat", manifests.SENTINEL, "line-a"),
            },
            "status": job_status,
        }
    )


async def test_missing_line_suspends_and_retries_slowly(cluster: Cluster, kube: Kube, ctx: Context) -> None:
    await kube.create(rule())
    assert await rules.reconcile(ctx, NS, "hpc-overheat") == ctx.config.missing_ref_retry_seconds
    assert condition(cluster, "Ready") == ("False", "LineNotFound")
    assert not exists(cluster, CRON, NS, "sentinel-hpc-overheat")
    [event] = events_for(cluster, "hpc-overheat")
    assert event["type"] == "Warning" and "DynoLine 'line-a' not found" in event["message"]


async def test_cronjob_runs_the_rule_file_with_the_lines_secret(
    cluster: Cluster, kube: Kube, ctx: Context
) -> None:
    await kube.create(line())
    created = await kube.create(rule())
    assert await rules.reconcile(ctx, NS, "hpc-overheat") is None
    cron = obj(cluster, CRON, NS, "sentinel-hpc-overheat")
    assert cron["spec"]["schedule"] == "*/1 * * * *" and cron["spec"]["suspend"] is False
    assert cron["metadata"]["ownerReferences"][0]["uid"] == created["metadata"]["uid"]
    container = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
    assert container["env"][0]["valueFrom"]["secretKeyRef"] == {"name": "telemetry-db", "key": "uri"}
    text = obj(cluster, CM, NS, "sentinel-hpc-overheat")["data"]["hpc-overheat.yaml"]
    assert Rule.model_validate(yaml.safe_load(text)).line == "line-a"
    assert condition(cluster, "Ready") == ("True", "Scheduled")


async def test_status_follows_the_jobs(cluster: Cluster, kube: Kube, ctx: Context) -> None:
    await kube.create(line())
    await kube.create(rule())
    await rules.reconcile(ctx, NS, "hpc-overheat")

    await sentinel_job(kube, "sentinel-hpc-overheat-1", "2026-03-01T12:00:00Z", "Failed")
    await rules.reconcile(ctx, NS, "hpc-overheat")
    assert condition(cluster, "Ready") == ("False", "LastRunFailed")
    assert status(cluster)["lastResult"] == "Failed"

    await sentinel_job(kube, "sentinel-hpc-overheat-2", "2026-03-01T12:01:00Z", "Complete")
    await sentinel_job(kube, "sentinel-hpc-overheat-3", "2026-03-01T12:02:00Z", None)
    await rules.reconcile(ctx, NS, "hpc-overheat")
    assert condition(cluster, "Ready") == ("True", "LastRunSucceeded")
    assert condition(cluster, "Progressing") == ("True", "Running")
    assert status(cluster)["lastRunTime"] == "2026-03-01T12:01:00Z"
    assert status(cluster)["lastJob"] == "sentinel-hpc-overheat-3"
    reasons = [e["reason"] for e in events_for(cluster, "hpc-overheat")]
    assert reasons == ["Scheduled", "LastRunFailed", "LastRunSucceeded"]


async def test_a_deleted_line_suspends_the_cronjob(cluster: Cluster, kube: Kube, ctx: Context) -> None:
    await kube.create(line())
    await kube.create(rule())
    await rules.reconcile(ctx, NS, "hpc-overheat")
    await kube.delete("DynoLine", NS, "line-a")
    await rules.reconcile(ctx, NS, "hpc-overheat")
    assert obj(cluster, CRON, NS, "sentinel-hpc-overheat")["spec"]["suspend"] is True
    assert condition(cluster, "Ready") == ("False", "LineNotFound")


async def test_open_alerts_are_counted_in_the_store(
    cluster: Cluster, kube: Kube, ctx: Context, store: Store, database_url: str
) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        for unit, resolved in ((1, False), (2, False), (3, True)):
            conn.execute(
                "INSERT INTO alerts (rule, line, unit_id, severity, kind, statistic, action, first_sample_ts,"
                " last_sample_ts, worst_value, hits, evaluated_to, resolved_sample_ts, resolved_at)"
                " VALUES ('hpc-overheat', 'line-a', %s, 'critical', 'threshold', 'T50', 'quarantine',"
                " now(), now(), 1440, 1, now(), CASE WHEN %s THEN now() END, CASE WHEN %s THEN now() END)",
                (unit, resolved, resolved),
            )
    await kube.create(secret(database_url))
    await kube.create(line())
    await kube.create(rule())
    await kube.create(rule("other"))
    sctx = Context(kube=ctx.kube, config=ctx.config, metrics=ctx.metrics, store=store)
    await rules.reconcile(sctx, NS, "hpc-overheat")
    await rules.reconcile(sctx, NS, "other")
    assert status(cluster)["openAlerts"] == 2
    assert status(cluster, "other")["openAlerts"] == 0

    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("UPDATE alerts SET resolved_at = now(), resolved_sample_ts = now()")
    await rules.reconcile(sctx, NS, "hpc-overheat")
    assert status(cluster)["openAlerts"] == 0
    assert [e["reason"] for e in events_for(cluster, "hpc-overheat")][-1] == "AlertsCleared"


async def test_a_model_file_the_pod_cannot_have_is_reported(
    cluster: Cluster, kube: Kube, ctx: Context
) -> None:
    """The CRD refuses it at apply time now; one stored under an older CRD is still reported."""
    await kube.create(line())
    condition_spec = {"type": "healthIndex", "model": "models/mine.json", "value": 0.8}
    await kube.create(rule(condition=condition_spec))
    assert await rules.reconcile(ctx, NS, "hpc-overheat") is None
    assert condition(cluster, "Ready") == ("False", "InvalidSpec")
    ready = next(c for c in status(cluster)["conditions"] if c["type"] == "Ready")
    assert "model must be one shipped with dynoline" in ready["message"]
    assert not exists(cluster, CRON, NS, "sentinel-hpc-overheat")
