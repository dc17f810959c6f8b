"""The whole stack on real pods: the chart's operator, one line's life, the faults it must survive, and the
chart's removal.

The steps share one operator release and one DynoLine and run in order (`incremental`: after a failed
step the rest are skipped, naming it). Every wait polls what the cluster, the store or Prometheus reports
against a deadline; none sleeps and then asserts (the one deliberate sleep is the length of the database
outage, a fault being injected, not a wait for a result). The line name is random, so rows retained from
earlier runs in the same database never count here.

What "no sample lost" means, from the simulator (workloads/simulator/runner.py, pacing.py): a shard
samples each of its units once per 1/rate seconds on a grid anchored at its process start (tick 0 = now,
the source's first cycle again). Every generated sample is stored exactly once: COPY while the database
takes it, the pod's spool (fsync'd, replayed oldest first through an idempotent insert) while it does
not, and on SIGTERM the queue is flushed and the spool replayed before exit. A shard whose pod is gone
generates nothing: a deleted pod's replacement starts a new grid, so that unit's samples have a gap as
long as the pod was down. The tests check exactly that: gap-free at the unit's step within each process
life and across a database outage, the deleted pod's generated count all in the store, no sample twice.
"""

from __future__ import annotations

import itertools
import json
import secrets
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.conftest import (
    CRDS,
    DB_DEPLOYMENT,
    Database,
    Kubectl,
    KubectlError,
    Operator,
    Settings,
    condition,
    wait_for,
)

pytestmark = [pytest.mark.timeout(1800)]

API = "dynoline.dev/v1alpha1"
# Fully qualified: plain `dynoline` is also the category both kinds belong to (`kubectl get dynoline`).
DL = "dynolines.dynoline.dev"
SR = "sentinelrules.dynoline.dev"
UNITS, SHARDS, RATE_HZ = 5, 2, 1.0
SCALED_UNITS, SCALED_SHARDS = 8, 3
FAULT_UNIT = 3  # shard 1 (unit u belongs to shard u mod shards)
RESTARTED_SHARD = 0  # the shard whose pod is deleted: units 0, 2, 4, none of them faulted
RULE = "t50-runaway"
# FD001's T50 never exceeds 1441.5 °R; the injected runaway adds 2 °R a second from 30 s after start, so
# only the faulted unit crosses 1470 and keeps climbing (the ramp is unbounded).
T50_BOUND = 1470.0
OPERATOR_UID = 10001
KEEP = "helm.sh/resource-policy"
# Each shard's spool on a PVC of the default StorageClass (spec.spool.volumeClaimTemplate), so what a pod
# spooled survives the pod. None: the spool stays on the pod's emptyDir (and no PVC may appear).
SPOOL_VOLUME_CLAIM_TEMPLATE: dict[str, Any] | None = {
    "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "64Mi"}}}
}

READY_TIMEOUT = 900.0  # first run on CI: image load, postgres pull, migration Job, two shards
STORE_TIMEOUT = 600.0  # sentinel CronJob every minute, operator store reads every storeTtlSeconds
ROLL_TIMEOUT = 600.0
GC_TIMEOUT = 300.0
ALERT_TIMEOUT = 300.0  # a sentinel pass a minute, pushed, scraped every 5 s, evaluated every 5 s

RATE_WINDOW_S = 60.0  # sample time, not wall-clock time of the test
RATE_SETTLE_S = 10.0  # the window ends this long before the database's now(): rows still in flight
RATE_TOLERANCE = 0.10
STEP_TOLERANCE_S = 0.002  # a unit's stamps are whole µs on an integer grid: 1 s ± a few µs
GAP_S = 1.5  # a step longer than this is a gap between two process lives
DB_OUTAGE_S = 20.0
PRE_OUTAGE_S = 10.0  # samples checked from at least this long before the outage


def line_manifest(name: str, units: int, shards: int) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "units": units,
        "rateHz": RATE_HZ,
        "shards": shards,
        "source": {"type": "cmapss", "dataset": "FD001", "loop": True},
        "faults": [{"unit": FAULT_UNIT, "kind": "thermalRunaway", "startAfter": "30s", "rampPerMinute": 120}],
        "database": {"secretRef": {"name": "telemetry-db", "key": "uri"}},
        "retention": "7d",
        "telemetryPolicy": "Retain",
    }
    if SPOOL_VOLUME_CLAIM_TEMPLATE is not None:
        spec["spool"] = {"volumeClaimTemplate": SPOOL_VOLUME_CLAIM_TEMPLATE}
    return {"apiVersion": API, "kind": "DynoLine", "metadata": {"name": name}, "spec": spec}


def rule_manifest(line: str) -> dict[str, Any]:
    return {
        "apiVersion": API,
        "kind": "SentinelRule",
        "metadata": {"name": RULE},
        "spec": {
            "lineRef": {"name": line},
            "schedule": "*/1 * * * *",
            "severity": "critical",
            "description": "e2e: thermal runaway on the faulted unit",
            "condition": {"type": "sustained", "sensor": "T50", "op": ">", "value": T50_BOUND, "for": "10s"},
            "clear": {"op": "<", "value": T50_BOUND - 20},
            "action": "quarantine",
        },
    }


# -------------------------------------------------------------------------------------------- helpers


def ready_for_generation(kube: Kubectl, kind: str, name: str) -> tuple[bool, dict[str, Any]]:
    """Ready=True reported for the object's current generation (a stale Ready does not count)."""
    obj = kube.get(kind, name)
    if obj is None:
        return False, {"missing": f"{kind}/{name}"}
    generation = obj["metadata"].get("generation", 0)
    status = obj.get("status") or {}
    ready = condition(obj, "Ready") or {}
    done = (
        status.get("observedGeneration", 0) >= generation
        and ready.get("status") == "True"
        and (ready.get("observedGeneration") or generation) >= generation
    )
    return done, {"generation": generation, "status": status}


def quarantined_in_status(kube: Kubectl, line: str) -> list[int]:
    obj = kube.get(DL, line) or {}
    units: list[int] = (obj.get("status") or {}).get("quarantinedUnits") or []
    return sorted(units)


def last_sample(db: Database, line: str, unit: int) -> datetime | None:
    value = db.value("SELECT max(ts) FROM telemetry WHERE line = :'p1' AND unit_id = :'p2'", line, unit)
    return datetime.fromisoformat(value) if value else None


def db_now(db: Database) -> float:
    """The database's clock (the simulators stamp with the node's; the e2e reads both on one node)."""
    return float(db.value("SELECT extract(epoch FROM clock_timestamp())"))


def unit_stamps(
    db: Database, line: str, units: Sequence[int], since: float, until: float | None = None
) -> dict[int, list[float]]:
    """Per unit, the sample times (epoch seconds, µs resolution) in [since, until], ascending."""
    sql = (
        "SELECT unit_id, extract(epoch FROM ts) FROM telemetry WHERE line = :'p1'"
        " AND unit_id = ANY(:'p2'::int[]) AND ts >= to_timestamp(:'p3'::float8)"
        + (" AND ts <= to_timestamp(:'p4'::float8)" if until is not None else "")
        + " ORDER BY unit_id, ts"
    )
    params: list[str | int] = [line, "{" + ",".join(map(str, units)) + "}", f"{since:.6f}"]
    if until is not None:
        params.append(f"{until:.6f}")
    out: dict[int, list[float]] = {u: [] for u in units}
    for unit, ts in db.rows(sql, *params):
        out[int(unit)].append(float(ts))
    return out


def segments(stamps: Sequence[float], gap: float = GAP_S) -> list[list[float]]:
    """Runs of samples whose steps are at most `gap`: one run per process life of the shard."""
    runs: list[list[float]] = []
    for ts in stamps:
        if runs and ts - runs[-1][-1] <= gap:
            runs[-1].append(ts)
        else:
            runs.append([ts])
    return runs


def bad_steps(stamps: Sequence[float], step: float = 1.0 / RATE_HZ) -> list[tuple[float, float]]:
    """Consecutive pairs not one step apart: a gap (lost samples) or a short step (a sample twice)."""
    return [(a, b) for a, b in itertools.pairwise(stamps) if abs(b - a - step) > STEP_TOLERANCE_S]


def metrics_port(pod: dict[str, Any]) -> int:
    for container in pod["spec"]["containers"]:
        for port in container.get("ports") or []:
            if port.get("name") == "metrics":
                return int(port["containerPort"])
    raise AssertionError(f"pod {pod['metadata']['name']} has no port named metrics")


def pod_metrics(kube: Kubectl, pod: dict[str, Any]) -> dict[str, float]:
    """A simulator pod's /metrics through the API server's pod proxy (no route to pod IPs needed)."""
    name = pod["metadata"]["name"]
    text = kube.raw(f"/api/v1/namespaces/{kube.namespace}/pods/{name}:{metrics_port(pod)}/proxy/metrics")
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if not sample.labels.get("le") and not sample.labels.get("path"):
                out[sample.name] = float(sample.value)
    return out


def simulator_pods(kube: Kubectl, line: str) -> list[dict[str, Any]]:
    pods = kube.items("pod", f"dynoline.dev/line={line},app.kubernetes.io/component=simulator")
    return sorted(pods, key=lambda p: str(p["metadata"]["name"]))


def spool_claims(kube: Kubectl, line: str, shards: int) -> list[str]:
    """The PVC names the line's StatefulSet claims for its shards (`<template>-<sts>-<ordinal>`)."""
    sts = kube.get("statefulset", line)
    assert sts is not None, f"StatefulSet {line} is missing"
    templates = [t["metadata"]["name"] for t in sts["spec"].get("volumeClaimTemplates") or []]
    return [f"{t}-{line}-{i}" for t in templates for i in range(shards)]


def http_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as resp:
        return json.loads(resp.read())


def prometheus_query(base: str, query: str) -> list[dict[str, Any]]:
    body = http_json(f"{base}/api/v1/query?{urllib.parse.urlencode({'query': query})}")
    if body.get("status") != "success":
        raise AssertionError(f"Prometheus query {query!r} failed: {body}")
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


class LogFollower:
    """`kubectl logs -f` of one container until it exits: the deleted pod's last words (its run stats)."""

    def __init__(self, kube: Kubectl, pod: str, container: str) -> None:
        self.lines: list[str] = []
        self._proc = subprocess.Popen(
            ["kubectl", "--namespace", kube.namespace, "logs", "-f", f"pod/{pod}", "-c", container],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self._proc.stdout is not None
        for line in self._proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def finish(self, timeout: float) -> list[str]:
        try:
            self._proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        self._reader.join(timeout=10)
        return self.lines


def run_stats(lines: Sequence[str]) -> dict[str, Any] | None:
    """The simulator's final line: its RunStats as JSON."""
    for line in reversed(lines):
        try:
            found = json.loads(line)
        except ValueError:
            continue
        if isinstance(found, dict) and "generated" in found and "written" in found:
            return found
    return None


@pytest.fixture(scope="module")
def line() -> str:
    return f"e2e-{secrets.token_hex(3)}"


# ------------------------------------------------------------------------------------------- scenario


@pytest.mark.incremental
class TestStack:
    def test_operator_runs_as_10001_on_a_read_only_root(self, operator: Operator, settings: Settings) -> None:
        k = Kubectl(operator.namespace)
        deploy = k.get("deployment", operator.deployment)
        assert deploy is not None, f"Deployment {operator.deployment} is missing after helm install"
        available = condition(deploy, "Available") or {}
        assert available.get("status") == "True", f"Deployment not Available: {deploy.get('status')}"
        selector = ",".join(f"{k_}={v}" for k_, v in deploy["spec"]["selector"]["matchLabels"].items())
        pods = [p for p in k.items("pod", selector) if p["status"].get("phase") == "Running"]
        assert len(pods) == 1, (
            f"expected one running operator pod, got {[p['metadata']['name'] for p in pods]}"
        )
        pod = pods[0]
        (container,) = [c for c in pod["spec"]["containers"] if c["name"] == "operator"]
        assert container["image"] == f"{settings.image_repository}:{settings.image_tag}"

        # The pod spec asks for it ...
        pod_sc = pod["spec"].get("securityContext") or {}
        assert pod_sc.get("runAsNonRoot") is True
        assert pod_sc.get("runAsUser") == OPERATOR_UID
        sc = container.get("securityContext") or {}
        assert sc.get("readOnlyRootFilesystem") is True
        assert sc.get("allowPrivilegeEscalation") is False
        assert "ALL" in ((sc.get("capabilities") or {}).get("drop") or [])

        # ... and the running container has it.
        name = f"pod/{pod['metadata']['name']}"
        assert k.exec(name, "operator", ["id", "-u"]).strip() == str(OPERATOR_UID)
        assert k.exec(name, "operator", ["id", "-g"]).strip() == str(OPERATOR_UID)
        write_root = k.run("exec", name, "-c", "operator", "--", "touch", "/e2e-write-probe", check=False)
        assert write_root.returncode != 0, "writing to / succeeded: the root filesystem is not read-only"
        assert "read-only file system" in write_root.stderr.lower(), write_root.stderr
        # /tmp is the emptyDir the chart mounts: writable, so the failure above is the read-only root.
        k.exec(name, "operator", ["touch", "/tmp/e2e-write-probe"])

    def test_line_becomes_ready(self, kube: Kubectl, database: Database, line: str) -> None:
        kube.apply(line_manifest(line, UNITS, SHARDS))
        kube.run(
            "wait", "--for=condition=Ready", f"{DL}/{line}", f"--timeout={READY_TIMEOUT:.0f}s",
            timeout=READY_TIMEOUT + 60,
        )  # fmt: skip
        status = wait_for(
            "Ready for the current generation", lambda: ready_for_generation(kube, DL, line), 120
        )["status"]
        assert status.get("shardsReady") == SHARDS
        sts = kube.get("statefulset", line)
        assert sts is not None, "the simulator StatefulSet is missing"
        assert sts["spec"]["replicas"] == SHARDS
        assert sts["metadata"]["ownerReferences"][0]["kind"] == "DynoLine"
        jobs = kube.items("job", f"dynoline.dev/line={line},app.kubernetes.io/component=migrate")
        assert any(
            c.get("type") == "Complete" and c.get("status") == "True"
            for job in jobs
            for c in (job.get("status") or {}).get("conditions") or []
        ), f"no completed migration Job among {[j['metadata']['name'] for j in jobs]}"

        claims = spool_claims(kube, line, SHARDS)
        if SPOOL_VOLUME_CLAIM_TEMPLATE is None:
            assert claims == [], (
                f"no spool volumeClaimTemplate was asked for, yet the StatefulSet has {claims}"
            )
            return
        assert len(claims) == SHARDS, f"expected one spool PVC per shard, the StatefulSet claims {claims}"
        for claim in claims:
            pvc = kube.get("pvc", claim)
            assert pvc is not None, f"spool PVC {claim} is missing"
            assert (pvc.get("status") or {}).get("phase") == "Bound", f"{claim}: {pvc.get('status')}"

    def test_telemetry_rows_appear_and_grow(self, database: Database, line: str) -> None:
        def count() -> int:
            return int(database.value("SELECT count(*) FROM telemetry WHERE line = :'p1'", line))

        first = wait_for("telemetry rows for the line", lambda: (count() > 0, count()), STORE_TIMEOUT)
        wait_for(f"more than {first} rows", lambda: (count() > first, count()), STORE_TIMEOUT)
        units = wait_for(
            f"rows from all {UNITS} units (both shards)",
            lambda: (
                len(rows := database.rows("SELECT DISTINCT unit_id FROM telemetry WHERE line = :'p1'", line))
                == UNITS,
                sorted(int(r[0]) for r in rows),
            ),
            STORE_TIMEOUT,
        )
        assert units == list(range(UNITS))

    def test_rows_arrive_at_units_times_rate(self, database: Database, line: str) -> None:
        """5 units x 1 Hz = 5 rows per second of sample time, counted over a settled 60 s window."""
        needed = RATE_WINDOW_S + RATE_SETTLE_S + 1

        def streamed_for() -> tuple[bool, float]:
            # seconds since the last unit to start sent its first sample
            age = float(
                database.value(
                    "SELECT extract(epoch FROM clock_timestamp() - max(first)) FROM"
                    " (SELECT min(ts) AS first FROM telemetry WHERE line = :'p1' GROUP BY unit_id) f",
                    line,
                )
            )
            return age >= needed, age

        wait_for(f"every unit streaming for {needed:.0f} s", streamed_for, STORE_TIMEOUT)
        end = db_now(database) - RATE_SETTLE_S
        count = int(
            database.value(
                "SELECT count(*) FROM telemetry WHERE line = :'p1'"
                " AND ts >= to_timestamp(:'p2'::float8) AND ts < to_timestamp(:'p3'::float8)",
                line,
                f"{end - RATE_WINDOW_S:.6f}",
                f"{end:.6f}",
            )
        )
        rate = count / RATE_WINDOW_S
        expected = UNITS * RATE_HZ
        print(f"\n{count} rows with ts in a {RATE_WINDOW_S:.0f} s window: {rate:.3f} rows/s")
        assert abs(rate - expected) <= RATE_TOLERANCE * expected, (
            f"{rate:.3f} rows/s of sample time, expected {expected:g} ± {RATE_TOLERANCE:.0%}"
        )

    def test_rule_quarantines_the_faulted_unit(self, kube: Kubectl, database: Database, line: str) -> None:
        kube.apply(rule_manifest(line))
        cronjob = wait_for(
            "the rule's CronJob",
            lambda: ((cj := kube.get("cronjob", f"sentinel-{RULE}")) is not None, cj),
            120,
        )
        assert cronjob is not None and not cronjob["spec"].get("suspend", False)

        def open_alerts() -> list[list[str]]:
            return database.rows(
                "SELECT unit_id, severity, action FROM alerts"
                " WHERE line = :'p1' AND rule = :'p2' AND resolved_at IS NULL ORDER BY unit_id",
                line,
                RULE,
            )

        alerts = wait_for(
            "an open alert on the faulted unit", lambda: (bool(a := open_alerts()), a), STORE_TIMEOUT
        )
        assert alerts == [[str(FAULT_UNIT), "critical", "quarantine"]]

        def quarantined_rows() -> list[list[str]]:
            return database.rows(
                "SELECT unit_id, quarantined_by FROM unit_state"
                " WHERE line = :'p1' AND quarantined ORDER BY unit_id",
                line,
            )

        rows = wait_for("the unit quarantined in unit_state", lambda: (bool(q := quarantined_rows()), q), 120)
        assert rows == [[str(FAULT_UNIT), f"sentinel:{RULE}"]]
        wait_for(
            "status.quarantinedUnits on the DynoLine",
            lambda: ((q := quarantined_in_status(kube, line)) == [FAULT_UNIT], q),
            STORE_TIMEOUT,
        )
        wait_for(
            "status.openAlerts on the SentinelRule",
            lambda: (
                (n := ((kube.get(SR, RULE) or {}).get("status") or {}).get("openAlerts")) == 1,
                n,
            ),
            STORE_TIMEOUT,
        )

        # The simulator honours the flag: once the other units have streamed well past the moment of
        # quarantine, the faulted unit's newest sample is still from about then (it refreshes per tick).
        since = datetime.fromisoformat(
            database.value(
                "SELECT quarantined_at FROM unit_state WHERE line = :'p1' AND unit_id = :'p2'",
                line,
                FAULT_UNIT,
            )
        )
        wait_for(
            "the healthy units to stream 30 s past the quarantine",
            lambda: (
                (seen := last_sample(database, line, 0)) is not None and (seen - since).total_seconds() > 30,
                seen,
            ),
            STORE_TIMEOUT,
        )
        stopped = last_sample(database, line, FAULT_UNIT)
        assert stopped is not None
        assert (stopped - since).total_seconds() < 15, f"unit {FAULT_UNIT} kept streaming until {stopped}"

    def test_prometheus_fires_the_charts_critical_alert(
        self, kube: Kubectl, operator: Operator, settings: Settings, line: str
    ) -> None:
        """The chart's own DynolineCriticalAlertsOpen, from the sentinel's pushed gauge, for this line."""
        prom = settings.prometheus_url
        if prom is None:
            pytest.skip(
                "DYNOLINE_E2E_PROMETHEUS_URL is not set: no Prometheus evaluates the chart's rules for this"
                " cluster (make e2e-local starts one on the local cluster)"
            )
        # Discovery works: the operator (the job DynolineOperatorDown watches) and both shards are up.
        operator_job = f"{operator.deployment}-metrics"
        wait_for(
            f"Prometheus scraping the operator as job {operator_job}",
            lambda: (
                len(r := prometheus_query(prom, f'up{{job="{operator_job}"}} == 1')) == 1,
                r,
            ),
            120,
        )
        wait_for(
            f"Prometheus scraping both shards of {line}",
            lambda: (
                len(
                    r := prometheus_query(
                        prom, f'up{{job="dynoline-simulators",namespace="{kube.namespace}"}} == 1'
                    )
                )
                == SHARDS,
                r,
            ),
            120,
        )
        # Each shard's latest keeper keeps telemetry_latest caught up (the gauge DynolineSimulatorLatestStale
        # reads; the line's latestInterval is the default 1s).
        caught_up = (
            f'time() - dynoline_simulator_latest_caught_up_timestamp_seconds{{namespace="{kube.namespace}",'
            f' line="{line}"}} < 30'
        )
        wait_for(
            f"both shards of {line} with telemetry_latest caught up",
            lambda: (len(r := prometheus_query(prom, caught_up)) == SHARDS, r),
            120,
        )
        query = f'ALERTS{{alertname="DynolineCriticalAlertsOpen",alertstate="firing",line="{line}"}}'
        firing = wait_for(
            f"{query} in Prometheus",
            lambda: (bool(r := prometheus_query(prom, query)), r),
            ALERT_TIMEOUT,
        )
        labels = firing[0]["metric"]
        assert labels["rule"] == RULE and labels["severity"] == "critical", labels

        am = settings.alertmanager_url
        if am is None:
            return

        def in_alertmanager() -> tuple[bool, list[dict[str, Any]]]:
            filters = urllib.parse.urlencode(
                [("filter", 'alertname="DynolineCriticalAlertsOpen"'), ("filter", f'line="{line}"')]
            )
            alerts: list[dict[str, Any]] = http_json(f"{am}/api/v2/alerts?{filters}")
            active = [a for a in alerts if (a.get("status") or {}).get("state") == "active"]
            return bool(active), alerts

        active = wait_for("the alert active in Alertmanager", in_alertmanager, ALERT_TIMEOUT)
        assert active[0]["labels"]["rule"] == RULE

    def test_release_lets_the_unit_stream_again(self, kube: Kubectl, database: Database, line: str) -> None:
        # The simulator pod has the CLI and DYNOLINE_DATABASE_URL from the line's Secret.
        out = kube.exec(
            f"pod/{line}-0",
            "simulator",
            ["dynoline", "unit", "release", "--line", line, "--unit", str(FAULT_UNIT)],
        )
        assert json.loads(out.strip().splitlines()[-1]) == {
            "line": line,
            "unit": FAULT_UNIT,
            "quarantined": False,
            "changed": True,
        }
        released = datetime.fromisoformat(database.value("SELECT now()"))
        assert (
            database.value(
                "SELECT quarantined FROM unit_state WHERE line = :'p1' AND unit_id = :'p2'", line, FAULT_UNIT
            )
            == "f"
        )
        wait_for(
            "status.quarantinedUnits to empty",
            lambda: ((q := quarantined_in_status(kube, line)) == [], q),
            STORE_TIMEOUT,
        )
        wait_for(
            f"new samples from unit {FAULT_UNIT} after the release",
            lambda: ((seen := last_sample(database, line, FAULT_UNIT)) is not None and seen > released, seen),
            STORE_TIMEOUT,
        )

    def test_rule_deletion_collects_its_children(self, kube: Kubectl) -> None:
        # Before the faults below: a re-opened alert must not quarantine a unit while they are checked.
        assert kube.get("cronjob", f"sentinel-{RULE}") is not None
        kube.run("delete", SR, RULE, "--wait=true", timeout=GC_TIMEOUT)

        def children() -> list[str]:
            found = kube.items("cronjob,configmap,job,pod", "app.kubernetes.io/component=sentinel")
            return [f"{o['kind']}/{o['metadata']['name']}" for o in found]

        wait_for(
            "the rule's CronJob, ConfigMap, Jobs and pods to be collected",
            lambda: (not (c := children()), c),
            GC_TIMEOUT,
        )

    def test_deleted_simulator_pod_loses_and_repeats_no_sample(
        self, kube: Kubectl, database: Database, line: str
    ) -> None:
        name = f"{line}-{RESTARTED_SHARD}"
        units = list(range(RESTARTED_SHARD, UNITS, SHARDS))
        old = kube.get("pod", name)
        assert old is not None
        follower = LogFollower(kube, name, "simulator")
        wait_for("kubectl logs -f to attach", lambda: (bool(follower.lines), len(follower.lines)), 60, 0.5)
        kube.run("delete", "pod", name, "--wait=true", timeout=GC_TIMEOUT)
        lines = follower.finish(timeout=60)
        stats = run_stats(lines)
        assert stats is not None, (
            "the deleted pod printed no run stats on SIGTERM; its log ended:\n" + "\n".join(lines[-20:])
        )
        print(f"\ndeleted pod {name}: {json.dumps(stats)}")
        assert stats["shard"] == RESTARTED_SHARD
        # Everything it generated was committed, or is in its spool for its replacement to replay.
        assert stats["written"] + stats["spool_rows"] == stats["generated"], stats

        def replacement() -> tuple[bool, str]:
            pod = kube.get("pod", name)
            if pod is None or pod["metadata"]["uid"] == old["metadata"]["uid"]:
                return False, "not recreated yet"
            return (condition(pod, "Ready") or {}).get("status") == "True", str(pod.get("status"))

        wait_for(f"the StatefulSet to recreate {name}, Ready", replacement, ROLL_TIMEOUT)

        def restarted_streams() -> tuple[bool, dict[int, int]]:
            runs = {u: segments(s) for u, s in unit_stamps(database, line, units, since=0).items()}
            sizes = {u: len(r[-1]) if len(r) >= 2 else 0 for u, r in runs.items()}
            return all(n >= 20 for n in sizes.values()), sizes

        wait_for("20 samples per unit from the replacement pod", restarted_streams, STORE_TIMEOUT)

        stored_by_old = 0
        for unit, stamps in unit_stamps(database, line, units, since=0).items():
            runs = segments(stamps)
            before, after = runs[-2], runs[-1]
            assert not bad_steps(before), f"unit {unit}: the deleted pod's samples are not 1 s apart"
            assert not bad_steps(after), f"unit {unit}: the replacement's samples are not 1 s apart"
            stored_by_old += len(before)
            last_old = datetime.fromtimestamp(before[-1], UTC).isoformat()
            first_new = datetime.fromtimestamp(after[0], UTC).isoformat()
            print(
                f"unit {unit}: deleted pod's last sample {last_old}, replacement's first {first_new}:"
                f" {after[0] - before[-1]:.1f} s without a running shard, so without samples"
            )
        # No sample lost: every sample the deleted process generated is in the store, once (the primary key
        # (line, unit_id, ts) and the 1 s steps above rule out a second copy under any stamp).
        assert stored_by_old == stats["generated"], (
            f"the deleted pod generated {stats['generated']} samples, the store has {stored_by_old} of them"
        )
        key = database.value(
            "SELECT pg_get_constraintdef(oid) FROM pg_constraint"
            " WHERE conrelid = 'telemetry'::regclass AND contype = 'p'"
        )
        assert key == "PRIMARY KEY (line, unit_id, ts)", key

    def test_database_outage_is_spooled_and_replayed(
        self, kube: Kubectl, database: Database, line: str
    ) -> None:
        db = database.kubectl
        units = list(range(UNITS))
        pods = simulator_pods(kube, line)
        assert len(pods) == SHARDS
        before = {p["metadata"]["name"]: pod_metrics(kube, p) for p in pods}
        started = db_now(database)

        db.run("scale", f"deploy/{DB_DEPLOYMENT}", "--replicas=0")
        wait_for(
            "the PostgreSQL pod to be gone",
            lambda: (
                not (p := db.items("pod", "app.kubernetes.io/name=telemetry-db")),
                [o["metadata"]["name"] for o in p],
            ),
            300,
            1.0,
        )
        down_at = time.monotonic()
        try:

            def spooling() -> tuple[bool, dict[str, float]]:
                depth = {
                    p["metadata"]["name"]: pod_metrics(kube, p).get(
                        "dynoline_simulator_spool_depth_rows", 0.0
                    )
                    for p in pods
                }
                return all(d > 0 for d in depth.values()), depth

            depth = wait_for("every shard spooling (spool depth > 0)", spooling, 120, 1.0)
            print(f"\nspool depth during the outage: {depth}")
            # The fault's length: the database stays away at least this long.
            time.sleep(max(0.0, DB_OUTAGE_S - (time.monotonic() - down_at)))
        finally:
            outage = time.monotonic() - down_at
            db.run("scale", f"deploy/{DB_DEPLOYMENT}", "--replicas=1")
        assert outage >= DB_OUTAGE_S
        db.run("rollout", "status", f"deploy/{DB_DEPLOYMENT}", "--timeout=600s", timeout=660)
        wait_for("PostgreSQL to answer again", database.answers, 300)
        back = db_now(database)

        def drained() -> tuple[bool, dict[str, dict[str, float]]]:
            seen = {}
            for p in pods:
                m = pod_metrics(kube, p)
                seen[p["metadata"]["name"]] = {
                    "spool": m.get("dynoline_simulator_spool_depth_rows", -1.0),
                    "replayed": m.get("dynoline_simulator_samples_replayed_total", 0.0)
                    - before[p["metadata"]["name"]].get("dynoline_simulator_samples_replayed_total", 0.0),
                }
            return all(s["spool"] == 0 and s["replayed"] > 0 for s in seen.values()), seen

        replayed = wait_for("every shard's spool replayed and empty", drained, STORE_TIMEOUT, 1.0)
        print(f"after the outage ({outage:.0f} s): {replayed}")
        # Same pods throughout: the outage was ridden out, not restarted through.
        assert [p["metadata"]["uid"] for p in simulator_pods(kube, line)] == [
            p["metadata"]["uid"] for p in pods
        ]

        until = back + 10

        def past_the_outage() -> tuple[bool, dict[int, int]]:
            got = unit_stamps(database, line, units, since=until - 2)
            return all(s and s[-1] >= until for s in got.values()), {u: len(s) for u, s in got.items()}

        wait_for("samples past the outage from every unit", past_the_outage, STORE_TIMEOUT)
        for unit, stamps in unit_stamps(database, line, units, since=started - 60, until=until).items():
            # From the start of the process life that was running when the database went away (the
            # previous step restarted shard 0 shortly before): a gap before the outage is not its business.
            earlier = [b for a, b in bad_steps(stamps) if b <= started]
            life = [t for t in stamps if not earlier or t >= earlier[-1]]
            assert life, f"unit {unit}: no samples around the outage"
            assert life[0] <= started - PRE_OUTAGE_S, (
                f"unit {unit}: streaming only since {life[0]}, {started - life[0]:.1f} s before the outage"
            )
            assert until - life[-1] <= 1.0 / RATE_HZ + STEP_TOLERANCE_S, (
                f"unit {unit}: ends early at {life[-1]}"
            )
            gaps = bad_steps(life)
            assert not gaps, f"unit {unit}: samples missing or repeated across the outage at {gaps[:5]}"
            during = [t for t in life if started <= t <= back]
            assert len(during) >= DB_OUTAGE_S * RATE_HZ, f"unit {unit}: {len(during)} samples from the outage"

    def test_scale_rolls_out(self, kube: Kubectl, database: Database, line: str) -> None:
        kube.run(
            "patch", DL, line, "--type=merge",
            "-p", json.dumps({"spec": {"units": SCALED_UNITS, "shards": SCALED_SHARDS}}),
        )  # fmt: skip
        status = wait_for(
            "Ready for the scaled spec", lambda: ready_for_generation(kube, DL, line), ROLL_TIMEOUT
        )["status"]
        assert status.get("shardsReady") == SCALED_SHARDS

        sts = kube.get("statefulset", line)
        assert sts is not None
        assert sts["spec"]["replicas"] == SCALED_SHARDS
        assert (sts.get("status") or {}).get("readyReplicas") == SCALED_SHARDS
        pods = simulator_pods(kube, line)
        template_hash = sts["spec"]["template"]["metadata"]["annotations"]["dynoline.dev/config-hash"]
        assert [p["metadata"]["name"] for p in pods] == [f"{line}-{i}" for i in range(SCALED_SHARDS)]
        assert {p["metadata"]["annotations"]["dynoline.dev/config-hash"] for p in pods} == {template_hash}
        expected_claims = SCALED_SHARDS if SPOOL_VOLUME_CLAIM_TEMPLATE is not None else 0
        assert len(spool_claims(kube, line, SCALED_SHARDS)) == expected_claims

        new_units = list(range(UNITS, SCALED_UNITS))
        wait_for(
            f"rows from the added units {new_units}",
            lambda: (
                (
                    got := sorted(
                        int(r[0])
                        for r in database.rows(
                            "SELECT DISTINCT unit_id FROM telemetry WHERE line = :'p1' AND unit_id >= :'p2'",
                            line,
                            UNITS,
                        )
                    )
                )
                == new_units,
                got,
            ),
            STORE_TIMEOUT,
        )

    def test_delete_collects_children_and_keeps_rows(
        self, kube: Kubectl, database: Database, line: str
    ) -> None:
        selector = f"dynoline.dev/line={line}"
        assert kube.items("statefulset,service,configmap,job", selector), "no children to collect"
        claims = spool_claims(kube, line, SCALED_SHARDS)
        kube.run("delete", DL, line, "--wait=true", timeout=GC_TIMEOUT)
        rows_after_delete = int(database.value("SELECT count(*) FROM telemetry WHERE line = :'p1'", line))

        def children() -> list[str]:
            try:
                found = kube.items("statefulset,service,configmap,job,cronjob,pod", selector)
                left = [f"{o['kind']}/{o['metadata']['name']}" for o in found]
                return left + [f"PersistentVolumeClaim/{c}" for c in claims if kube.get("pvc", c) is not None]
            except KubectlError as exc:
                return [str(exc)]

        wait_for(
            "the garbage collector to remove every child (spool PVCs included)",
            lambda: ((left := children()) == [], left),
            GC_TIMEOUT,
        )

        # Retain: no finalizer ran, so every row of the line is still in the store.
        assert (
            int(database.value("SELECT count(*) FROM telemetry WHERE line = :'p1'", line))
            >= rows_after_delete
        )
        assert rows_after_delete > 0
        assert int(database.value("SELECT count(*) FROM unit_state WHERE line = :'p1'", line)) == SCALED_UNITS
        assert int(database.value("SELECT count(*) FROM lines WHERE line = :'p1'", line)) == 1
        assert int(database.value("SELECT count(*) FROM alerts WHERE line = :'p1'", line)) >= 1

    def test_helm_uninstall_leaves_no_operator_objects(self, operator: Operator, settings: Settings) -> None:
        if settings.keep:
            pytest.skip("DYNOLINE_E2E_KEEP=1 keeps the release for inspection")
        # CRDs carry helm.sh/resource-policy: keep: helm uninstall leaves them (and every line) alone.
        kept = [d for d in operator.manifest if KEEP in ((d.get("metadata") or {}).get("annotations") or {})]
        assert sorted(
            d["metadata"]["name"] for d in kept if d["kind"] == "CustomResourceDefinition"
        ) == sorted(CRDS)
        made = [
            (d["kind"], d["metadata"]["name"], d["metadata"].get("namespace"))
            for d in operator.manifest
            if d.get("kind") and d.get("metadata") and d not in kept
        ]
        kinds = {kind for kind, _, _ in made}
        assert {"Deployment", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Service"} <= kinds, (
            kinds
        )
        deploy = Kubectl(operator.namespace).get("deployment", operator.deployment)
        assert deploy is not None
        selector = ",".join(f"{k}={v}" for k, v in deploy["spec"]["selector"]["matchLabels"].items())

        operator.helm_run("uninstall", operator.release, "--wait", "--timeout=300s", timeout=300)

        def left() -> list[str]:
            out = []
            for kind, name, ns in made:
                k = Kubectl(ns or operator.namespace)
                if k.get(kind, name) is not None:
                    out.append(f"{kind}/{name}")
            k = Kubectl(operator.namespace)
            out += [f"pod/{p['metadata']['name']}" for p in k.items("pod", selector)]
            out += [
                f"{o['kind']}/{o['metadata']['name']}"
                for o in k.items("secret", f"owner=helm,name={operator.release}")
            ]
            return out

        wait_for("every object of the release to be gone", lambda: (not (rest := left()), rest), GC_TIMEOUT)
        status = operator.helm_run("status", operator.release, check=False)
        assert status.returncode != 0, f"helm still knows the release: {status.stdout}"
        # The kept CRDs are still there (deleting them would take every DynoLine with them).
        k = Kubectl("default")
        assert [crd for crd in CRDS if k.get("crd", crd) is None] == []
