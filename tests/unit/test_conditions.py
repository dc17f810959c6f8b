"""Conditions: transitions, timestamps, and how cluster state maps to Ready/Progressing/Degraded."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from controllers import conditions, jobs, lines, rules
from controllers.conditions import Observed
from controllers.context import SecretCheck
from controllers.jobs import JobReport
from controllers.lines import Rollout
from workloads.api.line import DynoLineSpec
from workloads.api.status import MigrationStatus

T0 = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
T1 = T0 + timedelta(minutes=5)
OK = SecretCheck(True, url="postgresql://x@db/db")
SPEC = DynoLineSpec.model_validate({"units": 10, "shards": 2, "database": {"secretRef": {"name": "db"}}})
IMAGE = "dynoline:2"


def by_type(observed: list[Observed]) -> dict[str, tuple[str, str]]:
    return {o.type: (o.status, o.reason) for o in observed}


def test_transition_time_moves_only_when_status_changes() -> None:
    first = conditions.merge([], [Observed("Ready", "False", "Migrating", "waiting")], 1, T0)
    assert first[0].last_transition_time == "2026-03-01T12:00:00Z"
    assert first[0].observed_generation == 1
    reworded = conditions.merge(first, [Observed("Ready", "False", "RollingOut", "0 of 2")], 2, T1)
    assert reworded[0].last_transition_time == "2026-03-01T12:00:00Z"
    assert (reworded[0].reason, reworded[0].observed_generation) == ("RollingOut", 2)
    flipped = conditions.merge(reworded, [Observed("Ready", "True", "ShardsStreaming", "2 of 2")], 2, T1)
    assert flipped[0].last_transition_time == "2026-03-01T12:05:00Z"


def test_transitions_report_first_appearance_and_flips_only() -> None:
    first = conditions.merge([], [Observed("Ready", "False", "A"), Observed("Degraded", "False", "B")], 1, T0)
    assert [(t.type, t.old, t.new) for t in conditions.transitions([], first)] == [
        ("Ready", None, "False"),
        ("Degraded", None, "False"),
    ]
    same = conditions.merge(first, [Observed("Ready", "False", "C", "new words")], 1, T1)
    assert conditions.transitions(first, same) == []
    flip = conditions.merge(same, [Observed("Degraded", "True", "StoreUnreachable", "down")], 1, T1)
    [change] = conditions.transitions(same, flip)
    assert (change.type, change.old, change.new, change.reason) == (
        "Degraded",
        "False",
        "True",
        "StoreUnreachable",
    )


def test_conditions_keep_a_stable_order_and_other_types() -> None:
    merged = conditions.merge(
        [],
        [Observed("Degraded", "False", "X"), Observed("Custom", "True", "Y"), Observed("Ready", "True", "Z")],
        1,
        T0,
    )
    assert [c.type for c in merged] == ["Ready", "Degraded", "Custom"]
    again = conditions.merge(merged, [Observed("Ready", "False", "Q")], 1, T1)
    assert [c.type for c in again] == ["Ready", "Degraded", "Custom"]


def test_timestamp_is_rfc3339_utc_seconds() -> None:
    moment = datetime(2026, 3, 1, 13, 0, 0, 123456, tzinfo=UTC).astimezone()
    assert conditions.timestamp(moment) == "2026-03-01T13:00:00Z"


# ---------------------------------------------------------------------------------------------- DynoLine


def sts(
    generation: int, observed: int, replicas: int, ready: int, updated: int, same_rev: bool = True
) -> Any:
    return {
        "metadata": {"generation": generation},
        "status": {
            "observedGeneration": observed,
            "replicas": replicas,
            "readyReplicas": ready,
            "updatedReplicas": updated,
            "currentRevision": "r1",
            "updateRevision": "r1" if same_rev else "r2",
        },
    }


@pytest.mark.parametrize(
    ("obj", "wanted", "expected"),
    [
        (None, 2, Rollout(2, 0, False)),
        (sts(3, 2, 2, 2, 2), 2, Rollout(2, 2, False)),  # the controller has not seen the new spec yet
        (sts(3, 3, 2, 1, 2, same_rev=False), 2, Rollout(2, 1, False)),  # still replacing pods
        (sts(3, 3, 2, 2, 2), 2, Rollout(2, 2, True)),
        (sts(4, 4, 0, 0, 0), 0, Rollout(0, 0, True)),  # scaled to zero
    ],
)
def test_rollout(obj: Any, wanted: int, expected: Rollout) -> None:
    assert lines.rollout(obj, wanted) == expected


def test_job_report_reads_conditions() -> None:
    done = {"metadata": {"name": "j"}, "status": {"conditions": [{"type": "Complete", "status": "True"}]}}
    failed = {
        "metadata": {"name": "j"},
        "status": {"conditions": [{"type": "Failed", "status": "True", "message": "BackoffLimitExceeded"}]},
    }
    assert jobs.job_report(done) == JobReport("j", "Complete")
    assert jobs.job_report(failed) == JobReport("j", "Failed", "BackoffLimitExceeded")
    assert jobs.job_report({"metadata": {"name": "j"}}) == JobReport("j", "Running")


def test_plan_waits_for_the_first_migration_then_keeps_the_migrated_image() -> None:
    running = JobReport("m2", "Running")
    assert lines.plan_workload(SPEC, IMAGE, running, None) == (IMAGE, 0, None)
    assert lines.plan_workload(SPEC, IMAGE, JobReport("m2", "Complete"), None) == (IMAGE, 2, IMAGE)
    before = MigrationStatus(job="m1", completed_image="dynoline:1")
    assert lines.plan_workload(SPEC, IMAGE, running, before) == ("dynoline:1", 2, "dynoline:1")
    paused = SPEC.model_copy(update={"paused": True})
    assert lines.plan_workload(paused, IMAGE, JobReport("m2", "Complete"), before) == (IMAGE, 0, IMAGE)


def line_observe(**changes: Any) -> dict[str, tuple[str, str]]:
    args: dict[str, Any] = {
        "spec": SPEC,
        "image": IMAGE,
        "secret": OK,
        "migration": JobReport("m", "Complete"),
        "completed": IMAGE,
        "progress": Rollout(2, 2, True),
        "store_error": None,
    }
    return by_type(lines.observe(**{**args, **changes}))


def test_ready_when_all_shards_run_current_settings() -> None:
    assert line_observe() == {
        "Ready": ("True", "ShardsStreaming"),
        "Progressing": ("False", "Stable"),
        "Degraded": ("False", "AsExpected"),
    }


@pytest.mark.parametrize(
    ("changes", "ready", "progressing", "degraded"),
    [
        (
            {"secret": SecretCheck(False, "SecretNotFound", "no")},
            ("False", "SecretNotFound"),
            "False",
            "True",
        ),
        (
            {"secret": SecretCheck(False, "SecretKeyNotFound", "no")},
            ("False", "SecretKeyNotFound"),
            "False",
            "True",
        ),
        (
            {"completed": None, "migration": JobReport("m", "Running")},
            ("False", "Migrating"),
            "True",
            "False",
        ),
        (
            {"completed": None, "migration": JobReport("m", "Failed", "x")},
            ("False", "MigrationFailed"),
            "False",
            "True",
        ),
        ({"progress": Rollout(2, 1, False)}, ("False", "RollingOut"), "True", "False"),
        ({"progress": Rollout(2, 1, True)}, ("False", "ShardsNotReady"), "True", "False"),
        (
            {"spec": SPEC.model_copy(update={"paused": True}), "progress": Rollout(0, 0, True)},
            ("True", "Paused"),
            "False",
            "False",
        ),
        ({"store_error": "cannot reach db:5432/db"}, ("True", "ShardsStreaming"), "False", "True"),
        # A new image migrating while the old one keeps streaming: still Ready, visibly progressing.
        (
            {"completed": "dynoline:1", "migration": JobReport("m", "Running")},
            ("True", "ShardsStreaming"),
            "True",
            "False",
        ),
        (
            {"completed": "dynoline:1", "migration": JobReport("m", "Failed")},
            ("True", "ShardsStreaming"),
            "False",
            "True",
        ),
    ],
)
def test_line_conditions(
    changes: dict[str, Any], ready: tuple[str, str], progressing: str, degraded: str
) -> None:
    result = line_observe(**changes)
    assert result["Ready"] == ready
    assert result["Progressing"][0] == progressing
    assert result["Degraded"][0] == degraded


# ------------------------------------------------------------------------------------------ SentinelRule


def job(name: str, created: str, state: str | None, at: str = "2026-03-01T12:00:30Z") -> dict[str, Any]:
    status: dict[str, Any] = {}
    if state == "Complete":
        status = {"completionTime": at, "conditions": [{"type": "Complete", "status": "True"}]}
    elif state == "Failed":
        status = {
            "conditions": [{"type": "Failed", "status": "True", "lastTransitionTime": at, "message": "boom"}]
        }
    return {"metadata": {"name": name, "creationTimestamp": created}, "status": status}


def test_runs_pick_the_newest_finished_and_a_running_one() -> None:
    history = rules.runs(
        [
            job("r-1", "2026-03-01T12:00:00Z", "Complete", "2026-03-01T12:00:05Z"),
            job("r-3", "2026-03-01T12:02:00Z", None),
            job("r-2", "2026-03-01T12:01:00Z", "Failed", "2026-03-01T12:01:07Z"),
        ]
    )
    assert history.running == JobReport("r-3", "Running")
    assert history.finished == JobReport("r-2", "Failed", "boom")
    assert history.finished_at == "2026-03-01T12:01:07Z"
    assert history.result == "Running"
    assert rules.runs([]).result is None
    assert rules.runs([job("r-1", "2026-03-01T12:00:00Z", "Complete")]).result == "Succeeded"


def rule_observe(**changes: Any) -> dict[str, tuple[str, str]]:
    args: dict[str, Any] = {
        "line": "line-a",
        "namespace": "ns",
        "line_found": True,
        "schedule": "*/1 * * * *",
        "history": rules.Runs(),
        "store_error": None,
    }
    return by_type(rules.observe(**{**args, **changes}))


def test_rule_conditions() -> None:
    assert rule_observe()["Ready"] == ("True", "Scheduled")
    assert rule_observe(line_found=False) == {
        "Ready": ("False", "LineNotFound"),
        "Progressing": ("False", "LineNotFound"),
        "Degraded": ("True", "LineNotFound"),
    }
    failed = rules.Runs(finished=JobReport("r-2", "Failed", "boom"))
    assert rule_observe(history=failed)["Ready"] == ("False", "LastRunFailed")
    assert rule_observe(history=failed)["Degraded"] == ("True", "LastRunFailed")
    ok_and_running = rules.Runs(finished=JobReport("r-1", "Complete"), running=JobReport("r-2", "Running"))
    assert rule_observe(history=ok_and_running) == {
        "Ready": ("True", "LastRunSucceeded"),
        "Progressing": ("True", "Running"),
        "Degraded": ("False", "AsExpected"),
    }
