"""One line's life on a real cluster: Ready, streaming, a rule quarantining a faulted unit, a hand release,
a scale-out, and deletion (children collected, rows kept).

The steps share one DynoLine and run in order (`incremental`: after a failed step the rest are skipped,
naming it). Every wait polls what the cluster or the store reports against a deadline; none sleeps and
then asserts. The line name is random, so rows retained from earlier runs in the same database never
count here.
"""

from __future__ import annotations

import json
import secrets
from datetime import datetime
from typing import Any

import pytest

from tests.e2e.conftest import Database, Kubectl, KubectlError, condition, wait_for

pytestmark = [pytest.mark.timeout(1800)]

API = "dynoline.dev/v1alpha1"
# Fully qualified: plain `dynoline` is also the category both kinds belong to (`kubectl get dynoline`).
DL = "dynolines.dynoline.dev"
SR = "sentinelrules.dynoline.dev"
UNITS, SHARDS = 5, 2
SCALED_UNITS, SCALED_SHARDS = 8, 3
FAULT_UNIT = 3
RULE = "t50-runaway"
# FD001's T50 never exceeds 1441.5 °R; the injected runaway adds 2 °R a second from 30 s after start, so
# only the faulted unit crosses 1470 and keeps climbing (the ramp is unbounded).
T50_BOUND = 1470.0

READY_TIMEOUT = 900.0  # first run on CI: image load, postgres pull, migration Job, two shards
STORE_TIMEOUT = 600.0  # sentinel CronJob every minute, operator store reads every storeTtlSeconds
ROLL_TIMEOUT = 600.0
GC_TIMEOUT = 300.0


def line_manifest(name: str, units: int, shards: int) -> dict[str, Any]:
    return {
        "apiVersion": API,
        "kind": "DynoLine",
        "metadata": {"name": name},
        "spec": {
            "units": units,
            "rateHz": 1.0,
            "shards": shards,
            "source": {"type": "cmapss", "dataset": "FD001", "loop": True},
            "faults": [
                {"unit": FAULT_UNIT, "kind": "thermalRunaway", "startAfter": "30s", "rampPerMinute": 120}
            ],
            "database": {"secretRef": {"name": "telemetry-db", "key": "uri"}},
            "retention": "7d",
            "telemetryPolicy": "Retain",
        },
    }


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


@pytest.fixture(scope="module")
def line() -> str:
    return f"e2e-{secrets.token_hex(3)}"


@pytest.mark.incremental
class TestLineLifecycle:
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

    def test_scale_rolls_out(self, kube: Kubectl, database: Database, line: str) -> None:
        # The rule goes first (its children with it), so a re-opened alert cannot quarantine during the roll.
        kube.run("delete", SR, RULE, "--wait=true", timeout=GC_TIMEOUT)
        wait_for(
            "the rule's CronJob and ConfigMap to be collected",
            lambda: (
                (left := [k for k in ("cronjob", "configmap") if kube.get(k, f"sentinel-{RULE}") is not None])
                == [],
                left,
            ),
            GC_TIMEOUT,
        )

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
        pods = kube.items("pod", f"dynoline.dev/line={line},app.kubernetes.io/component=simulator")
        template_hash = sts["spec"]["template"]["metadata"]["annotations"]["dynoline.dev/config-hash"]
        assert sorted(p["metadata"]["name"] for p in pods) == [f"{line}-{i}" for i in range(SCALED_SHARDS)]
        assert {p["metadata"]["annotations"]["dynoline.dev/config-hash"] for p in pods} == {template_hash}

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
        kube.run("delete", DL, line, "--wait=true", timeout=GC_TIMEOUT)
        rows_after_delete = int(database.value("SELECT count(*) FROM telemetry WHERE line = :'p1'", line))

        def children() -> list[str]:
            try:
                found = kube.items("statefulset,service,configmap,job,cronjob,pod", selector)
            except KubectlError as exc:
                return [str(exc)]
            return [f"{o['kind']}/{o['metadata']['name']}" for o in found]

        wait_for(
            "the garbage collector to remove every child",
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
