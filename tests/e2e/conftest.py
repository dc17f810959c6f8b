"""e2e tier: the chart's operator on a real cluster (whatever the current kubeconfig points at).

Opt-in with DYNOLINE_E2E=1 (`make e2e-kind`, `make e2e-local`); otherwise, or without a reachable cluster,
every test here is skipped with the reason, so `make test` never touches a cluster. kubectl is driven as a
subprocess: the same commands a person would type, and `kubectl exec` for psql and the dynoline CLI.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
import yaml

E2E_DIR = Path(__file__).resolve().parent
POSTGRES_MANIFEST = E2E_DIR / "manifests" / "postgres.yaml"
DB_NAMESPACE = "dynoline-e2e-db"
DB_DEPLOYMENT = "telemetry-db"
DB_SECRET = "telemetry-db"
DB_USER = "dynoline"
DB_NAME = "dynoline"
CRDS = ("dynolines.dynoline.dev", "sentinelrules.dynoline.dev")

# Generous: a CI runner pulls postgres and schedules pods on one small node.
POLL_SECONDS = 3.0
KUBECTL_TIMEOUT = 180.0

T = TypeVar("T")

_incremental_failed: dict[str, str] = {}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "incremental: a scenario of ordered steps; a step is skipped once an earlier one failed"
    )


def _skip_reason() -> str | None:
    if os.environ.get("DYNOLINE_E2E") != "1":
        return (
            "e2e tier is opt-in: set DYNOLINE_E2E=1 to run it against the current kubeconfig's cluster"
            " (make e2e-kind / make e2e-local)"
        )
    if shutil.which("kubectl") is None:
        return "e2e tier needs kubectl on PATH"
    try:
        probe = subprocess.run(
            ["kubectl", "get", "--raw", "/readyz", "--request-timeout=15s"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return "no Kubernetes cluster reachable from the current kubeconfig (kubectl timed out)"
    if probe.returncode != 0:
        detail = (probe.stderr.strip().splitlines() or ["no output"])[-1]
        return f"no Kubernetes cluster reachable from the current kubeconfig: {detail}"
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    ours = [item for item in items if E2E_DIR in item.path.parents]
    if not ours:
        return
    reason = _skip_reason()
    if reason is None:
        return
    for item in ours:
        item.add_marker(pytest.mark.skip(reason=reason))


def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> None:
    if call.excinfo is None or call.excinfo.errisinstance(pytest.skip.Exception):
        return
    if item.get_closest_marker("incremental") is not None and item.parent is not None:
        _incremental_failed.setdefault(item.parent.nodeid, item.name)


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("incremental") is not None and item.parent is not None:
        failed = _incremental_failed.get(item.parent.nodeid)
        if failed is not None:
            pytest.skip(f"an earlier step of this scenario failed: {failed}")


# ------------------------------------------------------------------------------------------------ helpers


class KubectlError(AssertionError):
    """A kubectl command failed; the message has the command and its stderr."""


@dataclass(frozen=True)
class Kubectl:
    """kubectl against the current context, in one namespace."""

    namespace: str

    def run(
        self,
        *args: str,
        stdin: str | None = None,
        check: bool = True,
        timeout: float = KUBECTL_TIMEOUT,
    ) -> subprocess.CompletedProcess[str]:
        cmd = ["kubectl", "--namespace", self.namespace, *args]
        try:
            done = subprocess.run(
                cmd, input=stdin, capture_output=True, text=True, timeout=timeout, check=False
            )
        except subprocess.TimeoutExpired:
            raise KubectlError(f"`{' '.join(cmd)}` did not finish in {timeout:.0f}s") from None
        if check and done.returncode != 0:
            raise KubectlError(
                f"`{' '.join(cmd)}` exited {done.returncode}: {done.stderr.strip() or done.stdout.strip()}"
            )
        return done

    def apply(self, *documents: dict[str, Any]) -> None:
        self.run(
            "apply", "-f", "-", stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": documents})
        )

    def get(self, kind: str, name: str) -> dict[str, Any] | None:
        """The object, or None when it does not exist."""
        done = self.run("get", kind, name, "-o", "json", "--ignore-not-found")
        return json.loads(done.stdout) if done.stdout.strip() else None

    def items(self, kind: str, selector: str) -> list[dict[str, Any]]:
        done = self.run("get", kind, "-l", selector, "-o", "json")
        items: list[dict[str, Any]] = json.loads(done.stdout)["items"]
        return items

    def exec(self, target: str, container: str, command: Sequence[str]) -> str:
        return self.run("exec", target, "-c", container, "--", *command).stdout


@dataclass(frozen=True)
class Database:
    """psql inside the e2e PostgreSQL pod (local socket, trusted by the official image)."""

    kubectl: Kubectl

    def rows(self, sql: str, *params: str | int) -> list[list[str]]:
        """Rows as text; `params` bind to :'p1', :'p2', ... psql variables, so nothing is spliced in."""
        command = [
            "psql",
            "-U",
            DB_USER,
            "-d",
            DB_NAME,
            "-X",
            "-A",
            "-t",
            "-F",
            "\t",
            "-v",
            "ON_ERROR_STOP=1",
        ]
        for i, value in enumerate(params, start=1):
            command += ["-v", f"p{i}={value}"]
        # psql interpolates variables only in statements it reads, not in -c: feed the SQL on stdin.
        out = self.kubectl.run(
            "exec", "-i", f"deploy/{DB_DEPLOYMENT}", "-c", "postgres", "--", *command, stdin=sql + "\n"
        ).stdout
        return [line.split("\t") for line in out.splitlines() if line]

    def value(self, sql: str, *params: str | int) -> str:
        rows = self.rows(sql, *params)
        if len(rows) != 1 or len(rows[0]) != 1:
            raise AssertionError(f"expected one value from {sql!r}, got {rows!r}")
        return rows[0][0]


def wait_for(
    what: str, probe: Callable[[], tuple[bool, T]], timeout: float, interval: float = POLL_SECONDS
) -> T:
    """Poll `probe` until it reports done; on the deadline fail with what it saw last."""
    deadline = time.monotonic() + timeout
    while True:
        done, seen = probe()
        if done:
            return seen
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}; last seen: {seen!r}")
        time.sleep(interval)


def condition(obj: dict[str, Any] | None, kind: str) -> dict[str, Any] | None:
    for cond in ((obj or {}).get("status") or {}).get("conditions") or []:
        if cond.get("type") == kind:
            found: dict[str, Any] = cond
            return found
    return None


def manifest_documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def secret_for(namespace: str) -> dict[str, Any]:
    """The e2e DB Secret from the manifest, placed in `namespace`."""
    (secret,) = [d for d in manifest_documents(POSTGRES_MANIFEST) if d["kind"] == "Secret"]
    meta = {k: v for k, v in secret["metadata"].items() if k != "namespace"}
    return {**secret, "metadata": {**meta, "namespace": namespace}}


# ----------------------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def cluster() -> None:
    """The operator's CRDs must be installed (the chart): without them nothing here can pass."""
    k = Kubectl("default")
    missing = [crd for crd in CRDS if k.get("crd", crd) is None]
    if missing:
        pytest.fail(
            f"CRDs {', '.join(missing)} are not installed in the current cluster: install the chart first"
            " (make e2e-kind / make e2e-local do)"
        )


@pytest.fixture(scope="session")
def database(cluster: None) -> Database:
    """The e2e PostgreSQL, applied (idempotently) and answering queries."""
    k = Kubectl(DB_NAMESPACE)
    k.run("apply", "-f", str(POSTGRES_MANIFEST))
    k.run("rollout", "status", f"deploy/{DB_DEPLOYMENT}", "--timeout=600s", timeout=660)
    db = Database(k)

    def answers() -> tuple[bool, str]:
        try:
            return db.value("SELECT 1") == "1", "answered"
        except KubectlError as exc:
            return False, str(exc)

    wait_for("PostgreSQL to answer", answers, timeout=300)
    return db


@pytest.fixture(scope="session")
def namespace(cluster: None) -> Iterator[str]:
    """A fresh namespace with the DB Secret; deleted afterwards unless DYNOLINE_E2E_KEEP=1."""
    name = f"dynoline-e2e-{secrets.token_hex(4)}"
    k = Kubectl(name)
    k.apply(
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": name, "labels": {"app.kubernetes.io/part-of": "dynoline-e2e"}},
        }
    )
    k.apply(secret_for(name))
    yield name
    if os.environ.get("DYNOLINE_E2E_KEEP") == "1":
        print(f"\nkept namespace {name} (DYNOLINE_E2E_KEEP=1)")
        return
    k.run("delete", "namespace", name, "--wait=false", "--ignore-not-found", check=False)


@pytest.fixture(scope="session")
def kube(namespace: str) -> Kubectl:
    return Kubectl(namespace)
