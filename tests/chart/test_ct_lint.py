"""chart-testing's `ct lint` on charts/dynoline: Chart.yaml against ct's schema, yamllint on Chart.yaml
and values.yaml with ct's config, and `helm lint` (ct from its Go module, tests/k8s-tools/ct)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from tests import tools


def test_ct_lint_is_clean() -> None:
    ct = Path(tools.ct())
    helm = Path(tools.helm())
    # ct runs helm, yamllint and yamale from PATH: this tree's helm and the venv's linters.
    path = os.pathsep.join([str(helm.parent), str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    done = tools.run(
        [
            "env", f"PATH={path}", str(ct), "lint", "--charts", "charts/dynoline",
            "--chart-yaml-schema", str(ct.parent / "chart_schema.yaml"),
            "--lint-conf", str(ct.parent / "lintconf.yaml"),
            # No maintainers to validate against a git host, and no base branch to compare versions with.
            "--validate-maintainers=false", "--check-version-increment=false",
        ],
        cwd=tools.REPO,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "All charts linted successfully" in done.stdout, done.stdout
