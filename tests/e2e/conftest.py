"""e2e tier: the chart's operator on a real cluster (whatever the current kubeconfig points at).

Opt-in with DYNOLINE_E2E=1 (`make e2e-kind`, `make e2e-local`); otherwise, or without a reachable cluster,
every test here is skipped with the reason, so `make test` never touches a cluster. kubectl and helm are
driven as subprocesses: the same commands a person would type, and `kubectl exec` for psql and the
dynoline CLI. When a step fails, its report carries the pods, events, descriptions and logs of the
namespaces involved (section "e2e diagnostics").

Settings (environment; `make e2e-run` sets them):
  DYNOLINE_E2E_HELM             helm binary (default: helm on PATH)
  DYNOLINE_E2E_IMAGE            the project image, repository:tag (default dynoline:e2e)
  DYNOLINE_E2E_RELEASE          helm release (default dynoline)
  DYNOLINE_E2E_OPERATOR_NAMESPACE  its namespace (default dynoline-system)
  DYNOLINE_E2E_PUSHGATEWAY      chart value operator.pushgateway (default: none)
  DYNOLINE_E2E_POSTGRES_IMAGE   the e2e PostgreSQL image (default postgres:17)
  DYNOLINE_E2E_PROMETHEUS_URL   a Prometheus evaluating the chart's rules; unset: that step is skipped
  DYNOLINE_E2E_ALERTMANAGER_URL the Alertmanager that Prometheus sends to (optional)
  DYNOLINE_E2E_KEEP=1           keep the test namespace (and the release) for inspection
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
import yaml

from tests import waiting

E2E_DIR = Path(__file__).resolve().parent
REPO = E2E_DIR.parents[1]
CHART = REPO / "charts" / "dynoline"
POSTGRES_MANIFEST = E2E_DIR / "manifests" / "postgres.yaml"
DB_NAMESPACE = "dynoline-e2e-db"
DB_DEPLOYMENT = "telemetry-db"
DB_SECRET = "telemetry-db"
DB_USER = "dynoline"
DB_NAME = "dynoline"
CRDS = ("dynolines.dynoline.dev", "sentinelrules.dynoline.dev")
DEFAULT_POSTGRES_IMAGE = "postgres:17"

# Generous: a CI runner pulls postgres and schedules pods on one small node.
POLL_SECONDS = 3.0
KUBECTL_TIMEOUT = 180.0
INSTALL_TIMEOUT = 600.0
# The store-backed status must follow the store quickly in a test: short resync and store cache.
CHART_TEST_VALUES = {
    "operator.resyncSeconds": "30",
    "operator.storeTtlSeconds": "10",
    "operator.verbose": "true",
    "image.pullPolicy": "IfNotPresent",
}

T = TypeVar("T")

_incremental_failed: dict[str, str] = {}
# Namespaces whose state a failure report shows (the test namespace joins when it is made).
_diagnosed: list[str] = []


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


def _ours(item: pytest.Item) -> bool:
    return E2E_DIR in item.path.parents and (E2E_DIR / "monitoring") not in item.path.parents


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    ours = [item for item in items if _ours(item)]
    if not ours:
        return
    reason = _skip_reason()
    if reason is None:
        return
    for item in ours:
        item.add_marker(pytest.mark.skip(reason=reason))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, None]:
    outcome = yield
    report = outcome.get_result()
    if not _ours(item) or not report.failed:
        return
    if item.get_closest_marker("incremental") is not None and item.parent is not None:
        _incremental_failed.setdefault(item.parent.nodeid, item.name)
    report.sections.append(("e2e diagnostics", diagnostics(_diagnosed)))


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("incremental") is not None and item.parent is not None:
        failed = _incremental_failed.get(item.parent.nodeid)
        if failed is not None:
            pytest.skip(f"an earlier step of this scenario failed: {failed}")


# ------------------------------------------------------------------------------------------- settings


@dataclass(frozen=True)
class Settings:
    helm: str
    image_repository: str
    image_tag: str
    release: str
    operator_namespace: str
    pushgateway: str | None
    postgres_image: str
    prometheus_url: str | None
    alertmanager_url: str | None
    keep: bool

    @classmethod
    def from_env(cls, env: dict[str, str]) -> Settings:
        image = env.get("DYNOLINE_E2E_IMAGE", "dynoline:e2e")
        repository, sep, tag = image.rpartition(":")
        if not sep or not repository or "/" in tag:
            raise ValueError(f"DYNOLINE_E2E_IMAGE={image!r}: expected repository:tag, e.g. dynoline:e2e")
        return cls(
            helm=env.get("DYNOLINE_E2E_HELM", "helm"),
            image_repository=repository,
            image_tag=tag,
            release=env.get("DYNOLINE_E2E_RELEASE", "dynoline"),
            operator_namespace=env.get("DYNOLINE_E2E_OPERATOR_NAMESPACE", "dynoline-system"),
            pushgateway=env.get("DYNOLINE_E2E_PUSHGATEWAY") or None,
            postgres_image=env.get("DYNOLINE_E2E_POSTGRES_IMAGE") or DEFAULT_POSTGRES_IMAGE,
            prometheus_url=(env.get("DYNOLINE_E2E_PROMETHEUS_URL") or "").rstrip("/") or None,
            alertmanager_url=(env.get("DYNOLINE_E2E_ALERTMANAGER_URL") or "").rstrip("/") or None,
            keep=env.get("DYNOLINE_E2E_KEEP") == "1",
        )

    def chart_values(self) -> dict[str, str]:
        values = {
            **CHART_TEST_VALUES,
            "image.repository": self.image_repository,
            "image.tag": self.image_tag,
        }
        if self.pushgateway:
            values["operator.pushgateway"] = self.pushgateway
        return values


# ------------------------------------------------------------------------------------------------ helpers


class KubectlError(AssertionError):
    """A kubectl or helm command failed; the message has the command and its stderr."""


def run_command(
    cmd: Sequence[str], *, stdin: str | None = None, check: bool = True, timeout: float = KUBECTL_TIMEOUT
) -> subprocess.CompletedProcess[str]:
    try:
        done = subprocess.run(
            list(cmd), input=stdin, capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired:
        raise KubectlError(f"`{' '.join(cmd)}` did not finish in {timeout:.0f}s") from None
    except FileNotFoundError:
        raise KubectlError(f"`{cmd[0]}` not found") from None
    if check and done.returncode != 0:
        raise KubectlError(
            f"`{' '.join(cmd)}` exited {done.returncode}: {done.stderr.strip() or done.stdout.strip()}"
        )
    return done


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
        return run_command(
            ["kubectl", "--namespace", self.namespace, *args], stdin=stdin, check=check, timeout=timeout
        )

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

    def exec(self, target: str, container: str, command: Sequence[str], *, check: bool = True) -> str:
        return self.run("exec", target, "-c", container, "--", *command, check=check).stdout

    def raw(self, path: str) -> str:
        """GET through the API server (`kubectl get --raw`), e.g. a pod's /metrics via its proxy."""
        return self.run("get", "--raw", path).stdout


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

    def answers(self) -> tuple[bool, str]:
        try:
            return self.value("SELECT 1") == "1", "answered"
        except KubectlError as exc:
            return False, str(exc)


def wait_for(
    what: str, probe: Callable[[], tuple[bool, T]], timeout: float, interval: float = POLL_SECONDS
) -> T:
    """`tests.waiting.wait_for` for probes that report (done, what they saw): returns the sighting, and
    a timeout names the last one."""
    seen: list[T] = []

    def done() -> bool:
        ok, sighting = probe()
        seen[:] = [sighting]
        return ok

    waiting.wait_for(what, done, timeout, interval, last_seen=lambda: seen[0] if seen else None)
    return seen[0]


def condition(obj: dict[str, Any] | None, kind: str) -> dict[str, Any] | None:
    for cond in ((obj or {}).get("status") or {}).get("conditions") or []:
        if cond.get("type") == kind:
            found: dict[str, Any] = cond
            return found
    return None


def manifest_documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def postgres_documents(image: str) -> list[dict[str, Any]]:
    """The e2e PostgreSQL manifest with `image` in every container of the Deployment (init included)."""
    documents = manifest_documents(POSTGRES_MANIFEST)
    swapped = 0
    for doc in documents:
        if doc["kind"] == "Deployment":
            pod = doc["spec"]["template"]["spec"]
            for container in [*pod.get("initContainers", []), *pod["containers"]]:
                container["image"] = image
                swapped += 1
    if swapped == 0:
        raise AssertionError(f"{POSTGRES_MANIFEST}: no Deployment container to set the image {image!r} on")
    return documents


def secret_for(namespace: str) -> dict[str, Any]:
    """The e2e DB Secret from the manifest, placed in `namespace`."""
    (secret,) = [d for d in manifest_documents(POSTGRES_MANIFEST) if d["kind"] == "Secret"]
    meta = {k: v for k, v in secret["metadata"].items() if k != "namespace"}
    return {**secret, "metadata": {**meta, "namespace": namespace}}


# ---------------------------------------------------------------------------------------- diagnostics

_LOG_TAIL = 60
_DIAGNOSTICS_LIMIT = 60_000


def _section(title: str, cmd: Sequence[str], timeout: float = 30) -> str:
    try:
        done = subprocess.run(list(cmd), capture_output=True, text=True, timeout=timeout, check=False)
        body = (done.stdout + done.stderr).rstrip() or "(nothing)"
    except (subprocess.TimeoutExpired, FileNotFoundError) as exc:
        body = f"({type(exc).__name__}: {exc})"
    return f"----- {title}\n{body}\n"


def diagnostics(namespaces: Sequence[str]) -> str:
    """What a person would look at first: objects, events, unready pods described, every pod's log tail."""
    out: list[str] = []
    for ns in dict.fromkeys(namespaces):
        k = ["kubectl", "--namespace", ns]
        out.append(_section(f"{ns}: objects", [*k, "get", "all,pvc,configmap,cronjob,job", "-o", "wide"]))
        out.append(_section(f"{ns}: events", [*k, "get", "events", "--sort-by=.lastTimestamp"]))
        try:
            pods = json.loads(
                subprocess.run(
                    [*k, "get", "pods", "-o", "json"], capture_output=True, text=True, timeout=30, check=True
                ).stdout
            )["items"]
        except (subprocess.SubprocessError, json.JSONDecodeError, KeyError):
            pods = []
        for pod in pods:
            name = pod["metadata"]["name"]
            ready = condition(pod, "Ready") or {}
            if ready.get("status") != "True" and pod.get("status", {}).get("phase") != "Succeeded":
                out.append(_section(f"{ns}: describe pod/{name}", [*k, "describe", "pod", name]))
            restarted = any(
                (c.get("restartCount") or 0) > 0 for c in pod.get("status", {}).get("containerStatuses") or []
            )
            out.append(
                _section(
                    f"{ns}: logs pod/{name}",
                    [*k, "logs", name, "--all-containers", "--prefix", f"--tail={_LOG_TAIL}"],
                )
            )
            if restarted:
                out.append(
                    _section(
                        f"{ns}: previous logs pod/{name}",
                        [*k, "logs", name, "--all-containers", "--previous", f"--tail={_LOG_TAIL}"],
                    )
                )
    text = "".join(out)
    if len(text) > _DIAGNOSTICS_LIMIT:
        text = text[:_DIAGNOSTICS_LIMIT] + f"\n... (cut at {_DIAGNOSTICS_LIMIT} characters)\n"
    return text


# ----------------------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def settings() -> Settings:
    return Settings.from_env(dict(os.environ))


@dataclass(frozen=True)
class Operator:
    """The installed release: where it is and the objects `helm get manifest` says it made."""

    release: str
    namespace: str
    helm: str
    manifest: list[dict[str, Any]]

    @property
    def deployment(self) -> str:
        (name,) = [d["metadata"]["name"] for d in self.manifest if d["kind"] == "Deployment"]
        return str(name)

    def helm_run(
        self, *args: str, check: bool = True, timeout: float = INSTALL_TIMEOUT
    ) -> subprocess.CompletedProcess[str]:
        return run_command(
            [self.helm, *args, "--namespace", self.namespace], check=check, timeout=timeout + 60
        )


@pytest.fixture(scope="session")
def operator(settings: Settings) -> Operator:
    """The chart installed (or upgraded) from this tree, its CRDs current, the operator Available."""
    _diagnosed.append(settings.operator_namespace)
    sets = [arg for key, value in settings.chart_values().items() for arg in ("--set", f"{key}={value}")]
    helm = [settings.helm, "--namespace", settings.operator_namespace]
    run_command(
        [
            *helm, "upgrade", "--install", settings.release, str(CHART), "--create-namespace",
            *sets, "--wait", f"--timeout={INSTALL_TIMEOUT:.0f}s",
        ],
        timeout=INSTALL_TIMEOUT + 60,
    )  # fmt: skip
    # helm installs crds/ on first install only: bring them up to this tree's schema on every run.
    run_command(["kubectl", "apply", "--server-side", "--force-conflicts", "-f", str(CHART / "crds")])
    manifest = run_command([*helm, "get", "manifest", settings.release]).stdout
    return Operator(
        release=settings.release,
        namespace=settings.operator_namespace,
        helm=settings.helm,
        manifest=[d for d in yaml.safe_load_all(manifest) if d],
    )


@pytest.fixture(scope="session")
def cluster(operator: Operator) -> None:
    """The operator's CRDs must be installed (the chart): without them nothing here can pass."""
    k = Kubectl("default")
    missing = [crd for crd in CRDS if k.get("crd", crd) is None]
    if missing:
        pytest.fail(f"CRDs {', '.join(missing)} are not installed after installing the chart")


@pytest.fixture(scope="session")
def database(cluster: None, settings: Settings) -> Database:
    """The e2e PostgreSQL, applied (idempotently, with the configured image) and answering queries."""
    _diagnosed.append(DB_NAMESPACE)
    k = Kubectl(DB_NAMESPACE)
    k.apply(*postgres_documents(settings.postgres_image))
    k.run("rollout", "status", f"deploy/{DB_DEPLOYMENT}", "--timeout=600s", timeout=660)
    db = Database(k)
    wait_for("PostgreSQL to answer", db.answers, timeout=300)
    return db


@pytest.fixture(scope="session")
def namespace(cluster: None, settings: Settings) -> Iterator[str]:
    """A fresh namespace with the DB Secret; deleted afterwards unless DYNOLINE_E2E_KEEP=1."""
    name = f"dynoline-e2e-{secrets.token_hex(4)}"
    _diagnosed.insert(0, name)
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
    if settings.keep:
        print(f"\nkept namespace {name} (DYNOLINE_E2E_KEEP=1)")
        return
    k.run("delete", "namespace", name, "--wait=false", "--ignore-not-found", check=False)


@pytest.fixture(scope="session")
def kube(namespace: str) -> Kubectl:
    return Kubectl(namespace)
