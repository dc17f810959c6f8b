"""What a Job's status says, for the two reconcilers that run Jobs (migrations, sentinel runs)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

JobState = Literal["Complete", "Failed", "Running"]


@dataclass(frozen=True)
class JobReport:
    name: str
    state: JobState
    message: str = ""


def job_report(job: dict[str, Any]) -> JobReport:
    """Complete / Failed from the Job's conditions; anything else is still running."""
    name = job["metadata"]["name"]
    for cond in (job.get("status") or {}).get("conditions") or []:
        if cond.get("status") != "True":
            continue
        if cond.get("type") == "Complete":
            return JobReport(name, "Complete")
        if cond.get("type") == "Failed":
            return JobReport(name, "Failed", cond.get("message") or cond.get("reason") or "")
    return JobReport(name, "Running")
