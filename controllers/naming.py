"""How the operator names its children and hashes what they run, so a name changes exactly when it must.

A Job's pod template is immutable, so a migration Job is named by its template; a settings file's hash
goes into the pod template, so the shards roll when (and only when) what they stream changes.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any


def short_hash(text: str, length: int = 10) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def canonical(manifest: dict[str, Any]) -> str:
    """Stable text of a manifest, for hashing and comparing."""
    return json.dumps(manifest, sort_keys=True, separators=(",", ":"))


def config_hash(text: str) -> str:
    return short_hash(text, 16)


def config_name(line: str) -> str:
    return f"{line}-config"


def migration_job_name(line: str, template: dict[str, Any]) -> str:
    """One Job per (line, pod template): a new image or database runs the migrations again, an unchanged
    one never does; and a Job's template is immutable, so a changed one must be a new Job."""
    return f"{line}-migrate-{short_hash(canonical(template), 8)}"


def rule_object_name(rule: str) -> str:
    """The CronJob's and the ConfigMap's name (CronJob names must leave room for Job suffixes)."""
    return f"sentinel-{rule}"


def rule_file_name(rule: str) -> str:
    return f"{rule}.yaml"
