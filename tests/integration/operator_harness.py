"""Running the operator against the envtest control plane, and standing in for the kubelet.

The operator runs as a real subprocess (`python -m controllers -n <namespace>`), exactly as in a pod, so a
test can kill it, restart it, or take the API server away underneath it. The control plane has no kubelet
and no scheduler: pods are created but never run. Where a test needs a pod to have run, it sets the pod's
status through the status subresource the way a kubelet would (envtest users do the same); the real Job
and StatefulSet controllers in kube-controller-manager then do the rest (Job Complete, readyReplicas).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

import psutil
import pytest

from tests import waiting
from tests.envtest.controlplane import ControlPlane, free_port

REPO = Path(__file__).resolve().parents[2]
CRDS = REPO / "crds"
EXAMPLES = REPO / "examples" / "k8s"
IMAGE = "registry.example/dynoline:test"
# Label selectors of the operator's migration Jobs and simulator pods.
MIGRATE = "app.kubernetes.io/component=migrate"
SIMULATOR = "app.kubernetes.io/component=simulator"
T = TypeVar("T")


def wait_for(what: str, probe: Callable[[], T | None], timeout: float = 60.0, interval: float = 0.25) -> T:
    """`tests.waiting.wait_for`, a probe's error meaning "not yet": probes race the operator's deletions."""
    return waiting.wait_for(what, probe, timeout, interval, retry_on=(Exception,))


def get(cp: ControlPlane, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
    result = cp.kubectl("get", kind, name, "-n", namespace, "-o", "json", check=False)
    if result.returncode != 0:
        if "NotFound" in result.stderr:
            return None
        raise AssertionError(result.stderr)
    found: dict[str, Any] = json.loads(result.stdout)
    return found


def items(cp: ControlPlane, kind: str, namespace: str, selector: str | None = None) -> list[dict[str, Any]]:
    args = ["get", kind, "-n", namespace, "-o", "json"]
    if selector:
        args += ["-l", selector]
    listed: list[dict[str, Any]] = json.loads(cp.kubectl(*args).stdout)["items"]
    return listed


def apply(cp: ControlPlane, namespace: str, manifest: str | dict[str, Any] | Path) -> None:
    if isinstance(manifest, Path):
        cp.kubectl("apply", "-n", namespace, "-f", str(manifest))
    else:
        text = manifest if isinstance(manifest, str) else json.dumps(manifest)
        cp.kubectl("apply", "-n", namespace, "-f", "-", stdin=text)


def condition(obj: dict[str, Any] | None, kind: str) -> tuple[str, str] | None:
    for cond in ((obj or {}).get("status") or {}).get("conditions") or []:
        if cond["type"] == kind:
            return cond["status"], cond["reason"]
    return None


# ------------------------------------------------------------------------------------- the kubelet's part


def _patch_status(cp: ControlPlane, namespace: str, pod: str, status: dict[str, Any]) -> None:
    cp.kubectl(
        "patch",
        "pod",
        pod,
        "-n",
        namespace,
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps({"status": status}),
    )


def pods(cp: ControlPlane, namespace: str, selector: str) -> list[dict[str, Any]]:
    return items(cp, "pods", namespace, selector)


def succeed_pods(cp: ControlPlane, namespace: str, selector: str) -> int:
    """Pods matching `selector` ran to completion (exit 0): the Job controller marks their Job Complete."""
    done = 0
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    for pod in pods(cp, namespace, selector):
        if pod.get("status", {}).get("phase") in ("Succeeded", "Failed"):
            continue
        container = pod["spec"]["containers"][0]["name"]
        state = {"terminated": {"exitCode": 0, "reason": "Completed", "startedAt": now, "finishedAt": now}}
        status = {
            "phase": "Succeeded",
            "conditions": [{"type": "Ready", "status": "False", "reason": "PodCompleted"}],
            "containerStatuses": [
                {
                    "name": container,
                    "image": IMAGE,
                    "imageID": "",
                    "ready": False,
                    "restartCount": 0,
                    "state": state,
                }
            ],
        }
        _patch_status(cp, namespace, pod["metadata"]["name"], status)
        done += 1
    return done


def run_pods(cp: ControlPlane, namespace: str, selector: str) -> int:
    """Pods matching `selector` are running and ready: the StatefulSet controller counts them ready."""
    started = 0
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    for pod in pods(cp, namespace, selector):
        ready = [c for c in pod.get("status", {}).get("conditions", []) if c["type"] == "Ready"]
        if ready and ready[0]["status"] == "True":
            continue
        container = pod["spec"]["containers"][0]["name"]
        status = {
            "phase": "Running",
            "conditions": [
                {"type": "Ready", "status": "True"},
                {"type": "ContainersReady", "status": "True"},
            ],
            "containerStatuses": [
                {
                    "name": container,
                    "image": IMAGE,
                    "imageID": "",
                    "ready": True,
                    "started": True,
                    "restartCount": 0,
                    "state": {"running": {"startedAt": now}},
                }
            ],
        }
        _patch_status(cp, namespace, pod["metadata"]["name"], status)
        started += 1
    return started


# ------------------------------------------------------------------------------------------ the operator


class Operator:
    """`python -m controllers` as a subprocess, with its own metrics and liveness ports and a log file."""

    def __init__(
        self, cp: ControlPlane, namespaces: Sequence[str], log_path: Path, env: dict[str, str] | None = None
    ) -> None:
        self.cp = cp
        self.namespaces = list(namespaces)
        self.log_path = log_path
        self.metrics_port = free_port()
        self.liveness_port = free_port()
        self.env = {
            **cp.environ(),
            "DYNOLINE_IMAGE": IMAGE,
            "DYNOLINE_STORE_QUERIES": "false",
            "DYNOLINE_MISSING_REF_RETRY_SECONDS": "2",
            "DYNOLINE_METRICS_PORT": str(self.metrics_port),
            "DYNOLINE_LIVENESS_ENDPOINT": f"http://127.0.0.1:{self.liveness_port}/healthz",
            **(env or {}),
        }
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, wait: bool = True) -> Operator:
        args = [sys.executable, "-m", "controllers"]
        for namespace in self.namespaces:
            args += ["-n", namespace]
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(args, env=self.env, stdout=log, stderr=subprocess.STDOUT, cwd=REPO)
        log.close()
        if wait:
            wait_for("the operator's liveness endpoint", self.alive, timeout=60)
        return self

    def alive(self) -> bool:
        if self.process is None or self.process.poll() is not None:
            raise AssertionError(f"operator exited ({self.returncode}):\n{self.log()[-3000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.liveness_port}/healthz", timeout=2) as r:
                return bool(r.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    @property
    def returncode(self) -> int | None:
        return None if self.process is None else self.process.poll()

    def metrics(self) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5) as r:
            text: str = r.read().decode()
            return text

    def metric(self, name: str, **labels: str) -> float:
        wanted = ",".join(f'{k}="{v}"' for k, v in labels.items())
        prefix = f"{name}{{{wanted}}}" if labels else name
        for line in self.metrics().splitlines():
            if line.startswith(prefix + " "):
                return float(line.rsplit(" ", 1)[1])
        return 0.0

    def rss_mb(self) -> float:
        assert self.process is not None
        return float(psutil.Process(self.process.pid).memory_info().rss) / 2**20

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self, timeout: float = 30.0) -> int | None:
        """SIGTERM and wait (kopf stops its watches and our workers, then exits 0)."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        return self.process.returncode

    def kill(self) -> None:
        """SIGKILL: no cleanup at all, as when a node dies or the OOM killer strikes."""
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(10)


@pytest.fixture(scope="session", name="crds")
def crds_fixture(control_plane: ControlPlane) -> ControlPlane:
    """The committed CRDs, applied and established."""
    control_plane.kubectl("apply", "-f", str(CRDS))
    control_plane.kubectl(
        "wait", "--for=condition=Established", "crd/dynolines.dynoline.dev", "crd/sentinelrules.dynoline.dev"
    )
    return control_plane


@pytest.fixture(name="operator")
def operator_fixture(crds: ControlPlane, namespace: str, tmp_path: Path) -> Iterator[Operator]:
    """An operator watching only this test's namespace."""
    op = Operator(crds, [namespace], tmp_path / "operator.log").start()
    try:
        yield op
    finally:
        code = op.stop()
        if code not in (0, None, -signal.SIGKILL):
            sys.stderr.write(f"operator exited {code}; log tail:\n{op.log()[-4000:]}\n")


def line_manifest(name: str, **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "units": 10,
        "rateHz": 1.0,
        "shards": 2,
        "source": {"type": "cmapss", "dataset": "FD001"},
        "database": {"secretRef": {"name": "telemetry-db", "key": "uri"}},
    }
    body.update(spec)
    return {
        "apiVersion": "dynoline.dev/v1alpha1",
        "kind": "DynoLine",
        "metadata": {"name": name},
        "spec": body,
    }


def db_secret(url: str = "postgresql://dynoline:change-me@telemetry-db-rw:5432/dynoline") -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "telemetry-db"},
        "type": "Opaque",
        "stringData": {"uri": url},
    }


def iter_docs(path: Path) -> Iterator[dict[str, Any]]:
    import yaml

    for doc in yaml.safe_load_all(path.read_text()):
        if doc:
            yield doc
