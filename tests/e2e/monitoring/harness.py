"""Start and stop Prometheus, Alertmanager, the Pushgateway and the pod discovery loop on the host, each
a child process with its log and pid file (and data dir) under one work dir (`.build/e2e/monitoring/`).

There is no systemd to lean on, and the processes must not outlive the run: `stop` ends exactly the
processes whose pid files `start` wrote (after checking each pid still runs that binary with this work
dir), and `start` stops whatever it had started before it fails.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tests.e2e.monitoring import config

log = logging.getLogger("e2e-monitoring")

REPO = Path(__file__).resolve().parents[3]
CHART = REPO / "charts" / "dynoline"
DEFAULT_WORKDIR = REPO / ".build" / "e2e" / "monitoring"
BINARIES = (  # what the harness runs, and the Debian package that has it
    ("/usr/bin/prometheus", "prometheus"),
    ("/usr/bin/promtool", "prometheus"),
    ("/usr/bin/prometheus-alertmanager", "prometheus-alertmanager"),
    ("/usr/bin/amtool", "prometheus-alertmanager"),
    ("/usr/bin/prometheus-pushgateway", "prometheus-pushgateway"),
)
READY_TIMEOUT = 60.0
STOP_TIMEOUT = 20.0


class HarnessError(RuntimeError):
    """The harness cannot do what was asked; the message says what and where to look."""


@dataclass(frozen=True)
class Settings:
    kubeconfig: Path
    helm: str
    workdir: Path = DEFAULT_WORKDIR
    release: str = "dynoline"
    namespace: str = "dynoline-system"
    prometheus: str = "127.0.0.1:9090"
    alertmanager: str = "127.0.0.1:9093"
    pushgateway: str = "10.203.0.1:9091"
    interval_seconds: int = 5


@dataclass(frozen=True)
class Service:
    name: str
    binary: str
    package: str | None  # the Debian package that has it; None: this harness's own Python
    args: tuple[str, ...]
    ready: Callable[[], bool]
    marker: str  # an argument only this harness's instance has: tells it from a reused pid
    where: str  # what a person reads in the log line


def _http_ready(address: str) -> Callable[[], bool]:
    return lambda: _ready(f"http://{address}/-/ready")


def services(s: Settings) -> list[Service]:
    """Start order: discovery, Alertmanager and the Pushgateway first, so Prometheus finds them at once."""
    w = s.workdir
    targets = w / "targets"
    return [
        Service(
            "discovery",
            sys.executable,
            None,
            (
                "-m",
                "tests.e2e.monitoring",
                "discover",
                f"--workdir={w}",
                f"--kubeconfig={s.kubeconfig}",
                f"--release={s.release}",
                f"--namespace={s.namespace}",
            ),
            lambda: all((targets / name).exists() for name in config.TARGET_FILES.values()),
            f"--workdir={w}",
            str(targets),
        ),
        Service(
            "alertmanager",
            "/usr/bin/prometheus-alertmanager",
            "prometheus-alertmanager",
            (
                f"--config.file={w / 'alertmanager.yml'}",
                f"--storage.path={w / 'alertmanager'}",
                f"--web.listen-address={s.alertmanager}",
                "--cluster.listen-address=",  # no HA gossip port on 0.0.0.0:9094
            ),
            _http_ready(s.alertmanager),
            f"--storage.path={w / 'alertmanager'}",
            s.alertmanager,
        ),
        Service(
            "pushgateway",
            "/usr/bin/prometheus-pushgateway",
            "prometheus-pushgateway",
            # Debian's build persists to /var/lib/prometheus/pushgateway.data by default: a run would
            # inherit (and leave behind) every group ever pushed on this machine. Its own file instead.
            (f"--web.listen-address={s.pushgateway}", f"--persistence.file={w / 'pushgateway.data'}"),
            _http_ready(s.pushgateway),
            f"--persistence.file={w / 'pushgateway.data'}",
            s.pushgateway,
        ),
        Service(
            "prometheus",
            "/usr/bin/prometheus",
            "prometheus",
            (
                f"--config.file={w / 'prometheus.yml'}",
                f"--storage.tsdb.path={w / 'prometheus'}",
                f"--web.listen-address={s.prometheus}",
                "--storage.tsdb.retention.time=1d",
            ),
            _http_ready(s.prometheus),
            f"--storage.tsdb.path={w / 'prometheus'}",
            s.prometheus,
        ),
    ]


def _listen_address(svc: Service) -> str | None:
    for arg in svc.args:
        if arg.startswith("--web.listen-address="):
            return arg.split("=", 1)[1]
    return None


# ------------------------------------------------------------------------------------------- packages


def ensure_packages() -> None:
    """Debian's packages, installed when a binary is missing (a fresh CI machine has none of them)."""
    missing = list(dict.fromkeys(pkg for binary, pkg in BINARIES if not Path(binary).exists()))
    if not missing:
        return
    log.info("installing %s", " ".join(missing))
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "update", "-q"], ["apt-get", "install", "-y", "-q", *missing]):
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-5:])
            raise HarnessError(f"`{' '.join(cmd)}` exited {done.returncode}:\n{tail}")
    still = [binary for binary, _ in BINARIES if not Path(binary).exists()]
    if still:
        raise HarnessError(f"{', '.join(missing)} installed, yet {', '.join(still)} are missing")


# ---------------------------------------------------------------------------------------------- files


def render_chart(s: Settings) -> list[Any]:
    """`helm template` of the chart with the PrometheusRule on: the rules exactly as the chart has them."""
    cmd = [
        s.helm, "template", s.release, str(CHART), "--namespace", s.namespace,
        "--set", "prometheusRule.enabled=true",
        # The harness scrapes the operator as job <fullname>-metrics, as the ServiceMonitor would: with it
        # on, the rules include DynolineOperatorDown.
        "--set", "serviceMonitor.enabled=true",
    ]  # fmt: skip
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    except FileNotFoundError:
        raise HarnessError(
            f"helm not found at {s.helm!r} (build it: bash tests/k8s-tools/build.sh helm)"
        ) from None
    if done.returncode != 0:
        raise HarnessError(f"`{' '.join(cmd)}` exited {done.returncode}: {done.stderr.strip()}")
    return [d for d in yaml.safe_load_all(done.stdout) if d]


def kube_access(s: Settings) -> config.KubeAccess:
    try:
        kubeconfig = yaml.safe_load(s.kubeconfig.read_text())
    except OSError as exc:
        raise HarnessError(f"kubeconfig {s.kubeconfig}: {exc.strerror}") from None
    if not isinstance(kubeconfig, dict):
        raise HarnessError(f"kubeconfig {s.kubeconfig}: not a YAML mapping")
    try:
        return config.kube_access(kubeconfig, base=s.kubeconfig.parent, source=str(s.kubeconfig))
    except config.ConfigError as exc:
        raise HarnessError(str(exc)) from None


def kube_dir(s: Settings) -> Path:
    return s.workdir / "kube"


def write_files(s: Settings) -> None:
    """Every config under the work dir, checked with promtool before anything starts."""
    try:
        access = kube_access(s)
        documents = render_chart(s)
        rules = config.chart_rules(documents)
        fullname = config.operator_fullname(documents)
    except config.ConfigError as exc:
        raise HarnessError(str(exc)) from None

    w = s.workdir
    w.mkdir(parents=True, exist_ok=True)
    kube_dir(s).mkdir(mode=0o700, exist_ok=True)
    for path, data in config.kube_files(access, kube_dir(s)).items():
        path.write_bytes(data)
        path.chmod(0o600)
    rules_file = w / "rules.yml"
    rules_file.write_text(yaml.safe_dump(rules, sort_keys=False))
    prom = config.prometheus_config(
        targets_dir=w / "targets",
        operator_job=f"{fullname}-metrics",
        pushgateway=s.pushgateway,
        alertmanager=s.alertmanager,
        rules_file=rules_file,
        interval_seconds=s.interval_seconds,
    )
    (w / "prometheus.yml").write_text(yaml.safe_dump(prom, sort_keys=False))
    (w / "alertmanager.yml").write_text(yaml.safe_dump(config.alertmanager_config(), sort_keys=False))
    _check(["promtool", "check", "rules", str(rules_file)])
    _check(["promtool", "check", "config", str(w / "prometheus.yml")])
    _check(["amtool", "check-config", str(w / "alertmanager.yml")])


def _check(cmd: Sequence[str]) -> None:
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)
    out = (done.stdout + done.stderr).strip()
    if done.returncode != 0:
        raise HarnessError(f"`{' '.join(cmd)}` exited {done.returncode}:\n{out}")
    log.info("%s: %s", " ".join(cmd[:3]), out.splitlines()[-1] if out else "ok")


# ------------------------------------------------------------------------------------------ processes


def _pid_file(s: Settings, svc: Service) -> Path:
    return s.workdir / f"{svc.name}.pid"


def _ours(pid: int, svc: Service, s: Settings) -> bool:
    """The pid still runs this service's binary with this work dir (not a reused pid)."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    if not argv or argv[0].decode(errors="replace") != svc.binary:
        return False
    return svc.marker in (a.decode(errors="replace") for a in argv[1:])


def _port_free(address: str) -> bool:
    host, _, port = address.rpartition(":")
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, int(port)))
        except OSError:
            return False
    return True


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return bool(resp.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def _start_one(s: Settings, svc: Service) -> None:
    address = _listen_address(svc)
    if address is not None and not _port_free(address):
        raise HarnessError(
            f"{svc.name}: {address} is already in use (a leftover run? `python -m tests.e2e.monitoring"
            f" stop`; a packaged service? `/etc/init.d/{svc.package} stop`)"
        )
    logfile = s.workdir / f"{svc.name}.log"
    with logfile.open("wb") as out:
        proc = subprocess.Popen(
            [svc.binary, *svc.args],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=REPO,  # the discovery loop imports tests.e2e.monitoring from here
            start_new_session=True,  # not in the caller's process group: make's Ctrl-C goes through stop
        )
    _pid_file(s, svc).write_text(f"{proc.pid}\n")
    deadline = time.monotonic() + READY_TIMEOUT
    while not svc.ready():
        if proc.poll() is not None:
            raise HarnessError(f"{svc.name} exited {proc.returncode} at start:\n{_tail(logfile)}")
        if time.monotonic() > deadline:
            raise HarnessError(f"{svc.name} not ready after {READY_TIMEOUT:.0f}s:\n{_tail(logfile)}")
        time.sleep(0.3)
    log.info("%s ready: %s (pid %d, log %s)", svc.name, svc.where, proc.pid, logfile)


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _stop_one(s: Settings, svc: Service) -> str | None:
    """Ends the service if its pid file names a live process of ours; returns what was done."""
    pid_file = _pid_file(s, svc)
    try:
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return None
    if not _ours(pid, svc, s):
        pid_file.unlink(missing_ok=True)
        return f"{svc.name}: pid {pid} already gone"
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT
    while _ours(pid, svc, s) and time.monotonic() < deadline:
        _reap(pid)
        time.sleep(0.2)
    how = "stopped"
    if _ours(pid, svc, s):
        os.kill(pid, signal.SIGKILL)
        how = f"killed after {STOP_TIMEOUT:.0f}s"
        while _ours(pid, svc, s):
            _reap(pid)
            time.sleep(0.1)
    pid_file.unlink(missing_ok=True)
    return f"{svc.name}: pid {pid} {how}"


def _reap(pid: int) -> None:
    """A child of this process (start and stop in one process) must be waited for or it stays a zombie."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def start(s: Settings) -> None:
    ensure_packages()
    stop(s)  # a previous run's leftovers, if any
    write_files(s)
    shutil.rmtree(s.workdir / "targets", ignore_errors=True)  # the discovery loop writes them afresh
    (s.workdir / "pushgateway.data").unlink(missing_ok=True)  # no group pushed by an earlier run
    for name in ("prometheus", "alertmanager"):
        data = s.workdir / name
        shutil.rmtree(data, ignore_errors=True)  # every run starts from empty storage
        data.mkdir(parents=True)
    try:
        for svc in services(s):
            _start_one(s, svc)
    except BaseException:
        stop(s)
        raise


def stop(s: Settings) -> list[str]:
    done = [msg for svc in reversed(services(s)) if (msg := _stop_one(s, svc)) is not None]
    for msg in done:
        log.info("%s", msg)
    return done


def running(s: Settings) -> dict[str, int | None]:
    """Each service's pid when it runs (for `status` and for tests of the harness itself)."""
    out: dict[str, int | None] = {}
    for svc in services(s):
        try:
            pid: int | None = int(_pid_file(s, svc).read_text().strip())
        except (OSError, ValueError):
            pid = None
        out[svc.name] = pid if pid is not None and _ours(pid, svc, s) else None
    return out


def discover(s: Settings) -> None:
    """The discovery loop (`discover` action; `start` runs it as a child): see discovery.py."""
    from tests.e2e.monitoring import discovery

    access = kube_access(s)
    discovery.run(
        access,
        config.kube_file_paths(access, kube_dir(s)),
        targets_dir=s.workdir / "targets",
        operator_namespace=s.namespace,
        release=s.release,
    )
