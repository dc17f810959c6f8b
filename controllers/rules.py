"""SentinelRule reconcile: the rule as a file in a ConfigMap, a CronJob running `dynoline sentinel run`.

Status comes from two places. The last run is read from the CronJob's Jobs (the newest finished one gives
lastResult/lastRunTime; an active one makes it Progressing). Open alerts are counted in the store, where
the sentinel keeps them: the operator reads them with the line's database Secret through one cached query
per database (controllers/store_access.py), so a rule's status needs neither a sidecar nor write access
to the API from the sentinel pods. Without store access (`DYNOLINE_STORE_QUERIES=false`) openAlerts stays
unset.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from controllers import events, manifests, naming
from controllers.conditions import DEGRADED, PROGRESSING, READY, Observed
from controllers.context import Context, check_secret
from controllers.jobs import JobReport, job_report
from controllers.manifests import LABEL_COMPONENT, LABEL_INSTANCE, SENTINEL, Owner
from controllers.reporting import reject, write_status
from controllers.store_access import StoreError
from workloads.api.groupversion import DYNOLINE, SENTINELRULE
from workloads.api.line import SecretKeyRef
from workloads.api.rule import SentinelRuleSpec
from workloads.api.status import RunResult, SentinelRuleStatus
from workloads.errors import format_validation_error

KIND = SENTINELRULE.kind
CONTROLLER = "sentinelrule"


@dataclass(frozen=True)
class Runs:
    """What the rule's Jobs say: the newest finished run, and whether one is running now."""

    finished: JobReport | None = None
    finished_at: str | None = None
    running: JobReport | None = None

    @property
    def result(self) -> RunResult | None:
        if self.running is not None:
            return "Running"
        if self.finished is None:
            return None
        return "Succeeded" if self.finished.state == "Complete" else "Failed"


def _finished_at(job: dict[str, Any], report: JobReport) -> str | None:
    status = job.get("status") or {}
    if report.state == "Complete" and status.get("completionTime"):
        return str(status["completionTime"])
    for cond in status.get("conditions") or []:
        if cond.get("type") == report.state and cond.get("status") == "True":
            return str(cond.get("lastTransitionTime") or "") or None
    return None


def runs(jobs: list[dict[str, Any]]) -> Runs:
    ordered = sorted(
        jobs,
        key=lambda j: (j["metadata"].get("creationTimestamp") or "", j["metadata"]["name"]),
        reverse=True,
    )
    finished: JobReport | None = None
    finished_at: str | None = None
    running: JobReport | None = None
    for job in ordered:
        report = job_report(job)
        if report.state == "Running":
            if running is None and finished is None:
                running = report
            continue
        finished, finished_at = report, _finished_at(job, report)
        break
    return Runs(finished, finished_at, running)


def observe(
    *, line: str, namespace: str, line_found: bool, schedule: str, history: Runs, store_error: str | None
) -> list[Observed]:
    if not line_found:
        message = f"DynoLine {line!r} not found in namespace {namespace}; the CronJob is suspended"
        return [
            Observed(READY, "False", "LineNotFound", message),
            Observed(PROGRESSING, "False", "LineNotFound", message),
            Observed(DEGRADED, "True", "LineNotFound", message),
        ]
    done = history.finished
    if done is None:
        ready = Observed(READY, "True", "Scheduled", f"runs on {schedule!r}; no run has finished yet")
    elif done.state == "Failed":
        ready = Observed(
            READY, "False", "LastRunFailed", f"Job {done.name} failed: {done.message}".rstrip(": ")
        )
    else:
        ready = Observed(READY, "True", "LastRunSucceeded", f"Job {done.name} succeeded")
    progressing = (
        Observed(PROGRESSING, "True", "Running", f"Job {history.running.name} is running")
        if history.running
        else Observed(PROGRESSING, "False", "Idle", f"next run on {schedule!r}")
    )
    if done is not None and done.state == "Failed":
        degraded = Observed(DEGRADED, "True", "LastRunFailed", ready.message)
    elif store_error:
        degraded = Observed(DEGRADED, "True", "StoreUnreachable", store_error)
    else:
        degraded = Observed(DEGRADED, "False", "AsExpected", "")
    return [ready, progressing, degraded]


def _line_secret(line: dict[str, Any]) -> SecretKeyRef | None:
    ref = ((line.get("spec") or {}).get("database") or {}).get("secretRef")
    try:
        return SecretKeyRef.model_validate(ref)
    except ValidationError:
        return None


async def reconcile(ctx: Context, namespace: str, name: str) -> float | None:
    obj = await ctx.kube.get_or_none(KIND, namespace, name)
    if obj is None or obj["metadata"].get("deletionTimestamp"):
        ctx.metrics.set_state(CONTROLLER, (namespace, name), None)
        return None
    meta = obj["metadata"]
    previous = SentinelRuleStatus.model_validate(obj.get("status") or {})
    try:
        spec = SentinelRuleSpec.model_validate(obj.get("spec") or {})
        spec.to_rule(name)
    except ValidationError as exc:
        await reject(ctx, KIND, CONTROLLER, obj, previous, format_validation_error(exc))
        return None
    owner = Owner(KIND, name, namespace, meta["uid"])
    line_name = spec.line_ref.name
    line = await ctx.kube.get_or_none(DYNOLINE.kind, namespace, line_name)
    database = _line_secret(line) if line is not None else None
    cron_name = naming.rule_object_name(name)
    if line is None or database is None:
        cron = await ctx.kube.get_or_none("CronJob", namespace, cron_name)
        if cron is not None and not (cron.get("spec") or {}).get("suspend"):
            ctx.writes.record(
                await ctx.kube.merge_patch("CronJob", namespace, cron_name, {"spec": {"suspend": True}})
            )
        observed = observe(
            line=line_name,
            namespace=namespace,
            line_found=False,
            schedule=spec.schedule,
            history=Runs(),
            store_error=None,
        )
        await write_status(
            ctx, KIND, CONTROLLER, obj, previous, previous.model_copy(update={"last_result": None}), observed
        )
        return ctx.config.missing_ref_retry_seconds

    config_map = manifests.rule_config_map(owner, spec)
    config = naming.config_hash(config_map["data"][naming.rule_file_name(name)])
    ctx.writes.record(await ctx.kube.apply(config_map))
    cron = await ctx.kube.apply(
        manifests.sentinel_cronjob(
            owner, spec, ctx.config.workload, database=database, suspend=False, config=config
        )
    )
    ctx.writes.record(cron)
    selector = f"{LABEL_INSTANCE}={name},{LABEL_COMPONENT}={SENTINEL}"
    history = runs(await ctx.kube.list("Job", namespace, selector))

    open_alerts = previous.open_alerts
    store_error: str | None = None
    if ctx.store is not None:
        secret = await check_secret(ctx.kube, namespace, database)
        if secret.ok and secret.url:
            try:
                open_alerts = (await ctx.store.view(secret.url)).open_alerts_for(name, line_name)
            except StoreError as exc:
                store_error = str(exc)
    observed = observe(
        line=line_name,
        namespace=namespace,
        line_found=True,
        schedule=spec.schedule,
        history=history,
        store_error=store_error,
    )
    latest = history.running or history.finished
    status = SentinelRuleStatus(
        last_schedule_time=(cron.get("status") or {}).get("lastScheduleTime") or previous.last_schedule_time,
        last_run_time=history.finished_at or previous.last_run_time,
        last_result=history.result or previous.last_result,
        last_job=latest.name if latest else previous.last_job,
        open_alerts=open_alerts,
    )
    await write_status(ctx, KIND, CONTROLLER, obj, previous, status, observed)
    await _alert_events(ctx, obj, previous.open_alerts, open_alerts)
    return None


async def _alert_events(ctx: Context, obj: dict[str, Any], before: int | None, after: int | None) -> None:
    if before is None or after is None or (before > 0) == (after > 0):
        return
    now = ctx.clock()
    if after > 0:
        event = events.build(obj, KIND, "Warning", "AlertsOpen", f"{after} alert(s) open", now)
    else:
        event = events.build(obj, KIND, "Normal", "AlertsCleared", "no alerts open", now)
    await events.post(ctx.kube, event)
