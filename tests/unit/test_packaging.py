"""The runtime dependencies are what the product imports: nothing only the tests need ships in the image."""

from __future__ import annotations

import ast
import re
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PRODUCT = ("workloads", "controllers")
IMPORT_NAMES = {"pyyaml": "yaml", "prometheus-client": "prometheus_client"}  # distribution → module


def _distribution(requirement: str) -> str:
    match = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", requirement)
    assert match, requirement
    return match.group(0).lower()


def _product_imports() -> set[str]:
    found: set[str] = set()
    for package in PRODUCT:
        for path in (REPO / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if not isinstance(node, (ast.Import, ast.ImportFrom)):
                    continue
                if isinstance(node, ast.Import):
                    found.update(alias.name.split(".")[0] for alias in node.names)
                elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    found.add(node.module.split(".")[0])
    return found


def test_every_runtime_dependency_is_imported_by_the_product() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    runtime = {_distribution(r) for r in project["dependencies"]}
    imported = _product_imports()
    unused = sorted(d for d in runtime if IMPORT_NAMES.get(d, d.replace("-", "_")) not in imported)
    assert unused == [], f"runtime dependencies no product module imports (make them dev-only): {unused}"
    dev = {_distribution(r) for r in project["optional-dependencies"]["dev"]}
    assert "kubernetes" in dev and "kubernetes" not in imported  # the test tier's client only


def test_the_product_never_imports_the_test_tree() -> None:
    offenders = []
    for package in PRODUCT:
        for path in (REPO / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                names: list[str] = []
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom):
                    names = [node.module or ""]
                if any(n == "tests" or n.startswith("tests.") for n in names):
                    line = getattr(node, "lineno", "?")
                    offenders.append(f"{path.relative_to(REPO)}:{line} imports {names}")
                if (
                    isinstance(node, ast.Attribute)
                    and node.attr == "path"
                    and getattr(node.value, "id", "") == "sys"
                ):
                    offenders.append(f"{path.relative_to(REPO)}:{node.lineno} touches sys.path")
    assert offenders == [], offenders
