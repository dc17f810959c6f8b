"""DynoLine reconcile against kmock: children, roll-out, repair, status, Events, Secrets, telemetry."""

from __future__ import annotations

import base64
import json
from typing import Any

import psycopg
import pytest

from controllers import lines, manifests
from controllers.context import Context
from controllers.kube import Kube
from controllers.pods import WorkloadSettings
from controllers.settings import OperatorConfig
from controllers.store_access import Store
from tests.api.conftest import IMAGE, Cluster, events_for, exists, obj

NS = "factory"
DL = "dynoline.dev/v1alpha1/dynolines"
STS = "apps/v1/statefulsets"
JOBS = "batch/v1/jobs"
CM = "v1/configmaps"
SVC = "v1/services"


def line(name: str = "line-a", **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "units": 20,
        "rateHz": 1.0,
        "shards": 2,
        "source": {"type": "cmapss"},
        "database": {"secretRef": {"name": "telemetry-db", "key": "uri"}},
    }
    body.update(spec)
    return {
        "apiVersion": "dynoline.dev/v1alpha1",
        "kind": "DynoLine",
        "metadata": {"name": name, "namespace": NS},
        "spec": body,
    }


def secret(url: str = "postgresql://dynoline:hunter2@db.example:5432/dynoline") -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "telemetry-db", "namespace": NS},
        "data": {"uri": base64.b64encode(url.encode()).decode()},
    }


def status(cluster: Cluster, name: str = "line-a") -> dict[str, Any]:
    result: dict[str, Any] = obj(cluster, DL, NS, name).get("status", {})
    return result


def condition(cluster: Cluster, kind: str, name: str = "line-a") -> tuple[str, str]:
    for cond in status(cluster, name).get("conditions", []):
        if cond["type"] == kind:
            return cond["status"], cond["reason"]
    raise AssertionError(f"no {kind} condition in {status(cluster, name)}")


def migration_job(cluster: Cluster, name: str = "line-a") -> str:
    """The name of the line's current migration Job, as its status reports it."""
    job: str = status(cluster, name)["migration"]["job"]
    return job


def complete_job(cluster: Cluster, name: str) -> None:
    """Stand in for the Job controller and the kubelet: the migration pod succeeded."""
    cluster.objects[JOBS, NS, name].patch(
        {"status": {"succeeded": 1, "conditions": [{"type": "Complete", "status": "True"}]}}
    )


def ready_statefulset(cluster: Cluster, name: str = "line-a") -> None:
    """Stand in for the StatefulSet controller: every wanted pod runs the current revision, ready."""
    sts = obj(cluster, STS, NS, name)
    replicas = sts["spec"]["replicas"]
    cluster.objects[STS, NS, name].patch(
        {
            "status": {
                "observedGeneration": sts["metadata"].get("generation", 1),
                "replicas": replicas,
                "readyReplicas": replicas,
                "updatedReplicas": replicas,
                "currentRevision": "rev-1",
                "updateRevision": "rev-1",
            }
        }
    )


async def test_create_makes_every_child_with_owner_references(
    cluster: Cluster, kube: Kube, ctx: Context
) -> None:
    await kube.create(secret())
    created = await kube.create(line())
    assert await lines.reconcile(ctx, NS, "line-a") is None

    job_name = migration_job(cluster)
    assert job_name.startswith("line-a-migrate-")
    children = [obj(cluster, CM, NS, "line-a-config"), obj(cluster, SVC, NS, "line-a")]
    children += [obj(cluster, JOBS, NS, job_name), obj(cluster, STS, NS, "line-a")]
    for child in children:
        [ref] = child["metadata"]["ownerReferences"]
        assert (ref["kind"], ref["name"], ref["uid"]) == ("DynoLine", "line-a", created["metadata"]["uid"])
    # The simulator waits for the schema: no shard runs before the migration Job completes.
    assert obj(cluster, STS, NS, "line-a")["spec"]["replicas"] == 0
    assert condition(cluster, "Ready") == ("False", "Migrating")
    assert condition(cluster, "Progressing") == ("True", "Migrating")
    assert status(cluster)["observedGeneration"] == 1
    assert status(cluster)["migration"] == {"job": job_name}
    assert [e["reason"] for e in events_for(cluster, "line-a")] == ["Migrating"]


async def test_migration_then_shards_then_ready(cluster: Cluster, kube: Kube, ctx: Context) -> None:
    await kube.create(secret())
    await kube.create(line())
    await lines.reconcile(ctx, NS, "line-a")
    complete_job(cluster, migration_job(cluster))

    await lines.reconcile(ctx, NS, "line-a")
    assert obj(cluster, STS, NS, "line-a")["spec"]["replicas"] == 2
    assert condition(cluster, "Ready") == ("False", "RollingOut")
    assert status(cluster)["migration"]["completedImage"] == IMAGE

    ready_statefulset(cluster)
    await lines.reconcile(ctx, NS, "line-a")
    assert condition(cluster, "Ready") == ("True", "ShardsStreaming")
    assert condition(cluster, "Progressing") == ("False", "Stable")
    assert condition(cluster, "Degraded") == ("False", "AsExpected")
    assert status(cluster)["shardsReady"] == 2 and status(cluster)["state"] == "ShardsStreaming"
    reasons = [e["reason"] for e in events_for(cluster, "line-a")]
    assert reasons[-1] == "ShardsStreaming"


async def test_a_quiet_reconcile_writes_no_status(cluster: Cluster, kube: Kube, ctx: Context) -> None:
    await kube.create(secret())
    await kube.create(line())
    await lines.reconcile(ctx, NS, "line-a")
    before = len(cluster.objects[DL, NS, "line-a"].history)
    await lines.reconcile(ctx, NS, "line-a")
    assert len(cluster.objects[DL, NS, "line-a"].history) == before  # nothing changed, nothing written
    assert len(events_for(cluster, "line-a")) == 1


async def test_spec_change_rolls_out_through_the_config_hash(
    cluster: Cluster, kube: Kube, ctx: Context
) -> None:
    await kube.create(secret())
    await kube.create(line())
    await lines.reconcile(ctx, NS, "line-a")
    old = obj(cluster, STS, NS, "line-a")["spec"]["template"]["metadata"]["annotations"]
    await kube.merge_patch("DynoLine", NS, "line-a", {"spec": {"units": 40, "rateHz": 2.0}})
    await lines.reconcile(ctx, NS, "line-a")
    new = obj(cluster, STS, NS, "line-a")["spec"]["template"]["metadata"]["annotations"]
    assert new[manifests.CONFIG_HASH] != old[manifests.CONFIG_HASH]
    assert "units: 40" in obj(cluster, CM, NS, "line-a-config")["data"]["line.yaml"]


async def test_a_claim_template_reaches_the_statefulset_and_stays_the_same(
    cluster: Cluster, kube: Kube, ctx: Context
) -> None:
    claim = {"spec": {"resources": {"requests": {"storage": "5Gi"}}, "storageClassName": "fast-ssd"}}
    await kube.create(secret())
    await kube.create(line(spool={"volumeClaimTemplate": claim}))
    await lines.reconcile(ctx, NS, "line-a")
    sts = obj(cluster, STS, NS, "line-a")["spec"]
    [template] = sts["volumeClaimTemplates"]
    assert template["metadata"]["name"] == "spool"
    assert template["spec"] == {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": "5Gi"}},
        "storageClassName": "fast-ssd",
    }
    assert sts["persistentVolumeClaimRetentionPolicy"] == {"whenDeleted": "Delete", "whenScaled": "Retain"}
    assert [v["name"] for v in sts["template"]["spec"]["volumes"]] == ["config"]

    # Later passes (migration done, settings changed) apply the very same (immutable) template.
    complete_job(cluster, migration_job(cluster))
    await kube.merge_patch("DynoLine", NS, "line-a", {"spec": {"units": 40}})
    await lines.reconcile(ctx, NS, "line-a")
    again = obj(cluster, STS, NS, "line-a")["spec"]
    assert again["replicas"] == 2 and again["volumeClaimTemplates"] == [template]
    assert again["template"]["metadata"] != sts["template"]["metadata"]  # the new settings roll the pods


async def test_drift_is_repaired(cluster: Cluster, kube: Kube, ctx: Context) -> None:
    await kube.create(secret())
    await kube.create(line())
    await lines.reconcile(ctx, NS, "line-a")
    complete_job(cluster, migration_job(cluster))
    await lines.reconcile(ctx, NS, "line-a")
    await kube.delete("ConfigMap", NS, "line-a-config")
    await kube.merge_patch("StatefulSet", NS, "line-a", {"spec": {"replicas": 7}})
    await kube.delete("Service", NS, "line-a")

    await lines.reconcile(ctx, NS, "line-a")
    assert exists(cluster, CM, NS, "line-a-config") and exists(cluster, SVC, NS, "line-a")
    assert obj(cluster, STS, NS, "line-a")["spec"]["replicas"] == 2


async def test_pause_scales_to_zero_and_stays_ready(cluster: Cluster, kube: Kube, ctx: Context) -> None:
    await kube.create(secret())
    await kube.create(line(paused=True))
    await lines.reconcile(ctx, NS, "line-a")
    complete_job(cluster, migration_job(cluster))
    await lines.reconcile(ctx, NS, "line-a")
    assert obj(cluster, STS, NS, "line-a")["spec"]["replicas"] == 0
    ready_statefulset(cluster)
    await lines.reconcile(ctx, NS, "line-a")
    assert condition(cluster, "Ready") == ("True", "Paused")


async def test_missing_secret_is_a_condition_and_a_slow_retry(
    cluster: Cluster, kube: Kube, ctx: Context
) -> None:
    await kube.create(line())
    again = await lines.reconcile(ctx, NS, "line-a")
    assert again == ctx.config.missing_ref_retry_seconds  # looked at again slowly, not in a storm
    assert condition(cluster, "Ready") == ("False", "SecretNotFound")
    assert condition(cluster, "Degraded") == ("True", "SecretNotFound")
    [message] = [c["message"] for c in status(cluster)["conditions"] if c["type"] == "Ready"]
    assert message == "Secret 'telemetry-db' not found in namespace factory"
    # The children still exist: their pods wait for the Secret, as Kubernetes pods do.
    assert exists(cluster, STS, NS, "line-a")

    await kube.create({**secret(), "data": {"password": "eA=="}})
    await lines.reconcile(ctx, NS, "line-a")
    assert condition(cluster, "Ready") == ("False", "SecretKeyNotFound")

    await kube.delete("Secret", NS, "telemetry-db")
    await kube.create(secret())
    assert await lines.reconcile(ctx, NS, "line-a") is None
    assert condition(cluster, "Ready") == ("False", "Migrating")
    degraded = [e for e in events_for(cluster, "line-a") if e["reason"] == "SecretNotFound"]
    assert degraded and all(e["type"] == "Warning" for e in degraded)


async def test_the_database_url_never_leaves_the_secret(cluster: Cluster, kube: Kube, ctx: Context) -> None:
    await kube.create(secret())
    await kube.create(line())
    await lines.reconcile(ctx, NS, "line-a")
    complete_job(cluster, migration_job(cluster))
    await lines.reconcile(ctx, NS, "line-a")
    written = [
        json.dumps(item.raw) for (res, _, _), item in cluster.objects.items() if res.plural != "secrets"
    ]
    assert written and not any("hunter2" in text or "db.example" in text for text in written)


async def test_invalid_spec_is_reported_without_children(cluster: Cluster, kube: Kube, ctx: Context) -> None:
    # The CRD refuses this; an object stored under an older CRD might still carry it.
    await kube.create(line(units=2, shards=3))
    assert await lines.reconcile(ctx, NS, "line-a") is None
    assert condition(cluster, "Ready") == ("False", "InvalidSpec")
    assert not exists(cluster, STS, NS, "line-a")


async def test_a_gone_line_is_a_no_op(cluster: Cluster, ctx: Context) -> None:
    assert await lines.reconcile(ctx, NS, "nothing-here") is None
    assert not exists(cluster, STS, NS, "nothing-here")


# ----------------------------------------------------------------------------- the store (real PostgreSQL)


def store_ctx(ctx: Context, store: Store) -> Context:
    return Context(kube=ctx.kube, config=ctx.config, metrics=ctx.metrics, store=store)


def seed_units(url: str, line_name: str, quarantined: list[int], others: list[int]) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        for unit in quarantined + others:
            conn.execute(
                "INSERT INTO unit_state (line, unit_id, quarantined) VALUES (%s, %s, %s)",
                (line_name, unit, unit in quarantined),
            )


async def test_quarantined_units_come_from_the_store(
    cluster: Cluster, kube: Kube, ctx: Context, store: Store, database_url: str
) -> None:
    seed_units(database_url, "line-a", [3, 17], [1, 2])
    seed_units(database_url, "line-b", [5], [])
    await kube.create(secret(database_url))
    await kube.create(line())
    await lines.reconcile(store_ctx(ctx, store), NS, "line-a")
    assert status(cluster)["quarantinedUnits"] == [3, 17]

    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("UPDATE unit_state SET quarantined = true WHERE line = 'line-a' AND unit_id = 2")
    await lines.reconcile(store_ctx(ctx, store), NS, "line-a")
    assert status(cluster)["quarantinedUnits"] == [2, 3, 17]
    [event] = [e for e in events_for(cluster, "line-a") if e["reason"] == "UnitsQuarantined"]
    assert event["type"] == "Warning" and event["message"] == "sentinel quarantined unit(s) 2"


async def test_unreachable_store_degrades_but_keeps_the_last_known(
    cluster: Cluster, kube: Kube, ctx: Context, store: Store
) -> None:
    await kube.create(secret("postgresql://dynoline:hunter2@127.0.0.1:1/dynoline"))
    await kube.create(line())
    await lines.reconcile(store_ctx(ctx, store), NS, "line-a")
    assert condition(cluster, "Degraded") == ("True", "StoreUnreachable")
    [message] = [c["message"] for c in status(cluster)["conditions"] if c["type"] == "Degraded"]
    assert "127.0.0.1:1/dynoline" in message and "hunter2" not in message


async def test_telemetry_policy_delete_purges_rows_before_letting_go(
    cluster: Cluster, kube: Kube, ctx: Context, store: Store, database_url: str
) -> None:
    seed_units(database_url, "line-a", [3], [1])
    seed_units(database_url, "line-b", [], [1])
    await kube.create(secret(database_url))
    await kube.create(line(telemetryPolicy="Delete"))
    sctx = store_ctx(ctx, store)
    await lines.reconcile(sctx, NS, "line-a")
    assert obj(cluster, DL, NS, "line-a")["metadata"]["finalizers"] == [lines.FINALIZER]

    # What the API server does on delete when a finalizer is present.
    cluster.objects[DL, NS, "line-a"].patch({"metadata": {"deletionTimestamp": "2026-03-01T12:00:00Z"}})
    await lines.reconcile(sctx, NS, "line-a")
    assert not exists(cluster, DL, NS, "line-a")  # finalizer gone, so the server let it go
    with psycopg.connect(database_url) as conn:
        rows = conn.execute("SELECT line, count(*) FROM unit_state GROUP BY line ORDER BY line").fetchall()
    assert rows == [("line-b", 1)]
    [event] = [e for e in events_for(cluster, "line-a") if e["reason"] == "TelemetryDeleted"]
    assert "unit_state 2" in event["message"]


async def test_retain_is_the_default_and_keeps_rows(
    cluster: Cluster, kube: Kube, ctx: Context, store: Store, database_url: str
) -> None:
    seed_units(database_url, "line-a", [], [1, 2])
    await kube.create(secret(database_url))
    await kube.create(line())
    await lines.reconcile(store_ctx(ctx, store), NS, "line-a")
    assert "finalizers" not in obj(cluster, DL, NS, "line-a")["metadata"]
    cluster.objects[DL, NS, "line-a"].patch({"metadata": {"deletionTimestamp": "2026-03-01T12:00:00Z"}})
    await lines.reconcile(store_ctx(ctx, store), NS, "line-a")
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT count(*) FROM unit_state").fetchone() == (2,)


async def test_failed_purge_keeps_the_finalizer_and_says_why(
    cluster: Cluster, kube: Kube, ctx: Context, store: Store
) -> None:
    await kube.create(line(telemetryPolicy="Delete"))  # no Secret: nothing can be deleted
    await lines.reconcile(store_ctx(ctx, store), NS, "line-a")
    cluster.objects[DL, NS, "line-a"].patch({"metadata": {"deletionTimestamp": "2026-03-01T12:00:00Z"}})
    with pytest.raises(Exception, match="telemetry not deleted yet"):
        await lines.reconcile(store_ctx(ctx, store), NS, "line-a")
    assert obj(cluster, DL, NS, "line-a")["metadata"]["finalizers"] == [lines.FINALIZER]
    assert [e["reason"] for e in events_for(cluster, "line-a")][-1] == "TelemetryCleanupFailed"


async def test_a_new_image_migrates_first_while_the_shards_keep_the_old_one(
    cluster: Cluster, kube: Kube, ctx: Context
) -> None:
    await kube.create(secret())
    await kube.create(line())
    await lines.reconcile(ctx, NS, "line-a")
    complete_job(cluster, migration_job(cluster))
    await lines.reconcile(ctx, NS, "line-a")
    ready_statefulset(cluster)
    await lines.reconcile(ctx, NS, "line-a")
    old_job = migration_job(cluster)

    new_image = "registry.example/dynoline:2.0.0"
    upgraded = Context(
        kube=ctx.kube, config=OperatorConfig(workload=WorkloadSettings(image=new_image)), metrics=ctx.metrics
    )
    await lines.reconcile(upgraded, NS, "line-a")
    new_job = migration_job(cluster)
    assert new_job != old_job and not exists(cluster, JOBS, NS, old_job)  # the superseded Job is deleted
    image = obj(cluster, STS, NS, "line-a")["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image == IMAGE  # no shard runs an image whose migrations have not run
    assert condition(cluster, "Progressing") == ("True", "Migrating")
    assert condition(cluster, "Ready") == ("True", "ShardsStreaming")

    complete_job(cluster, new_job)
    await lines.reconcile(upgraded, NS, "line-a")
    image = obj(cluster, STS, NS, "line-a")["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image == new_image and status(cluster)["migration"]["completedImage"] == new_image
