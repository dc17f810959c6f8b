"""The command-line tools the chart and alerting tests drive: helm (built into .build/ from its Go module
by tests/k8s-tools/build.sh, as the Makefile does) and promtool (Debian's `prometheus` package).

`make test` sets DYNOLINE_REQUIRE_TOOLS=1 after providing both, so a missing tool there is a failure.
Elsewhere (a bare `pytest`) it is a skip that says how to get the tool.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
CHART = REPO / "charts" / "dynoline"
PROMTOOL = "/usr/bin/promtool"


def module_version(tools_module: str, module: str) -> str:
    """The version tests/k8s-tools/<tools_module>/go.mod pins, as build.sh reads it."""
    go_mod = REPO / "tests" / "k8s-tools" / tools_module / "go.mod"
    for line in go_mod.read_text().splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] == "require" and parts[1] == module:
            return parts[2]
    raise AssertionError(f"{go_mod} pins no {module} version")


def helm_version() -> str:
    return module_version("helm", "helm.sh/helm/v3")


def _missing(what: str, how: str) -> None:
    message = f"{what} is missing: {how}"
    if os.environ.get("DYNOLINE_REQUIRE_TOOLS") == "1":
        pytest.fail(message)
    pytest.skip(message)


def helm() -> str:
    """The helm `make test` builds: .build/helm/<pinned version>/helm."""
    built = REPO / ".build" / "helm" / helm_version() / "helm"
    if not built.is_file():
        _missing(str(built), "bash tests/k8s-tools/build.sh helm (make test builds it)")
    return str(built)


def ct() -> str:
    """chart-testing's ct `make test` builds: .build/ct/<pinned version>/ct (with its etc/ files beside)."""
    built = REPO / ".build" / "ct" / module_version("ct", "github.com/helm/chart-testing/v3") / "ct"
    if not built.is_file():
        _missing(str(built), "bash tests/k8s-tools/build.sh ct (make test builds it)")
    return str(built)


def promtool() -> str:
    found = PROMTOOL if Path(PROMTOOL).is_file() else shutil.which("promtool")
    if found is None:
        _missing("promtool", "apt-get install prometheus (make test installs it)")
    assert found is not None
    return found


def run(cmd: Sequence[str], *, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(cmd), cwd=cwd, capture_output=True, text=True, timeout=300, check=False)


def render(
    *values: str, release: str = "dynoline", namespace: str = "dynoline-system"
) -> list[dict[str, Any]]:
    """`helm template` of the chart with `--set` values; the rendered documents."""
    sets = [arg for value in values for arg in ("--set", value)]
    done = run([helm(), "template", release, str(CHART), "--namespace", namespace, *sets])
    assert done.returncode == 0, done.stderr
    return [d for d in yaml.safe_load_all(done.stdout) if d]


def render_error(*values: str) -> str:
    """stderr of a `helm template` that must fail (schema or template refusal)."""
    sets = [arg for value in values for arg in ("--set", value)]
    done = run([helm(), "template", "dynoline", str(CHART), *sets])
    assert done.returncode != 0, f"helm template {' '.join(values)} rendered: {done.stdout[:500]}"
    return done.stderr
