"""`dynoline bench operator`: the operator on a real API server (apply latency, 200 lines converging, RSS).

It measures the cluster of `--kubeconfig` (or $KUBECONFIG), whose DynoLine CRD must be installed. On a
checkout, `make bench` runs it on the test harness's local control plane (etcd, kube-apiserver,
kube-controller-manager): `python -m tests.envtest.bench_operator` starts one and calls this, since
product code does not import the test tree. The operator runs as a subprocess (`python -m controllers`),
exactly as in its pod. Figures:

* apply_to_children_p95_s: one DynoLine created at a time on an idle operator; time from the create call
  returning until its StatefulSet (the last child the reconcile applies) is seen on a watch. p50/p95/max.
* converge_200_s: 200 DynoLines created at once; time until every one has its four children and a status
  for generation 1 (conditions set; Ready=False/Migrating, since there is no kubelet to run the migration
  pod: everything the operator itself has to do is done).
* rss_mb: the operator process's resident memory after converging 200 lines (and its peak during).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import platform
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from controllers.kube import Kube, connection_info
from workloads.api.groupversion import API_VERSION, DYNOLINE
from workloads.bench.harness import cpu_model, emit, memory_gib, percentile, table
from workloads.errors import DynolineError

Result = dict[str, Any]
TARGETS = {"apply_to_children_p95_s": 1.0, "converge_200_s": 60.0, "rss_mb": 200.0}
LOCAL = "python -m tests.envtest.bench_operator (make bench) runs it on a local control plane"


def register(bench_sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = bench_sub.add_parser(
        "operator",
        help="operator against a real API server: apply→children p95, 200 lines converge, RSS",
        description="Run the operator as a subprocess against the cluster of --kubeconfig (or $KUBECONFIG)"
        f" and time it: one line at a time, then --lines at once. From a checkout, {LOCAL}.",
    )
    p.add_argument("--kubeconfig", default=None, help="the cluster (default $KUBECONFIG); CRDs installed")
    p.add_argument("--lines", type=int, default=200, help="DynoLines created at once (default 200)")
    p.add_argument("--samples", type=int, default=30, help="single-line apply timings (default 30)")
    p.add_argument("--json", action="store_true", help="machine-readable result on stdout")
    p.set_defaults(handler=run_command)


def run_command(args: argparse.Namespace) -> int:
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per API request is noise here
    if not 1 <= args.lines <= 5000 or not 1 <= args.samples <= 1000:
        raise DynolineError("--lines must be 1..5000 and --samples 1..1000")
    kubeconfig = args.kubeconfig or os.environ.get("KUBECONFIG")
    if not kubeconfig:
        raise DynolineError(f"no cluster: pass --kubeconfig or set $KUBECONFIG ({LOCAL})")
    result = asyncio.run(measure(kubeconfig, args.lines, args.samples))
    emit(result, args.json, render)
    return 0


def line(name: str) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": DYNOLINE.kind,
        "metadata": {"name": name},
        "spec": {
            "units": 100,
            "shards": 2,
            "source": {"type": "cmapss"},
            "database": {"secretRef": {"name": "telemetry-db"}},
        },
    }


async def measure(kubeconfig: str, lines: int, samples: int) -> Result:
    import psutil  # a dev dependency; imported here so `dynoline --help` works without it

    os.environ["KUBECONFIG"] = kubeconfig
    kube = Kube.from_connection(connection_info())
    version = str((await kube.request("GET", "/version"))["gitVersion"])
    namespace = f"dynoline-bench-{secrets.token_hex(3)}"
    await kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
    await kube.create(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "telemetry-db", "namespace": namespace},
            "stringData": {"uri": "postgresql://bench:bench@db.invalid:5432/bench"},
        }
    )
    log = Path(tempfile.mkdtemp(prefix="dynoline-bench-operator-")) / "operator.log"
    operator = start_operator(kubeconfig, namespace, log)
    process = psutil.Process(operator.pid)
    seen: dict[str, float] = {}
    arrivals: dict[str, asyncio.Event] = {}
    watcher = asyncio.create_task(watch_statefulsets(kube, namespace, seen, arrivals))
    try:
        await wait_alive(kube, namespace, operator)
        latencies = []
        for index in range(samples):
            latencies.append(await one_line(kube, namespace, f"single-{index:03d}", seen, arrivals))
        peak = process.memory_info().rss
        started = time.perf_counter()
        semaphore = asyncio.Semaphore(32)

        async def create(name: str) -> None:
            async with semaphore:
                body = line(name)
                body["metadata"]["namespace"] = namespace
                await kube.create(body)

        names = [f"bulk-{i:04d}" for i in range(lines)]
        await asyncio.gather(*(create(n) for n in names))
        created = time.perf_counter() - started
        converged, peak = await wait_converged(kube, namespace, set(names), process, peak)
        converge = time.perf_counter() - started
        await asyncio.sleep(2)
        rss = process.memory_info().rss
        counts = {
            kind: sum(o["metadata"]["name"].startswith("bulk-") for o in await kube.list(kind, namespace))
            for kind in ("StatefulSet", "ConfigMap", "Service", "Job")
        }
        cpu = process.cpu_times()
    finally:
        watcher.cancel()
        operator.terminate()
        try:
            operator.wait(30)
        except subprocess.TimeoutExpired:
            operator.kill()
        try:
            await kube.delete("Namespace", None, namespace)
        finally:
            await kube.close()
    result: Result = {
        "apply_to_children_p50_s": round(percentile(latencies, 0.50), 4),
        "apply_to_children_p95_s": round(percentile(latencies, 0.95), 4),
        "apply_to_children_max_s": round(max(latencies), 4),
        "samples": samples,
        "lines": lines,
        "create_calls_s": round(created, 2),
        "converge_200_s" if lines == 200 else f"converge_{lines}_s": round(converge, 2),
        "converged_lines": converged,
        "children": counts,
        "rss_mb": round(rss / 2**20, 1),
        "peak_rss_mb": round(max(peak, rss) / 2**20, 1),
        "operator_cpu_s": round(cpu.user + cpu.system, 1),
        "machine": {
            "load_average_1m_at_end": round(os.getloadavg()[0], 2),
            "cpu_model": cpu_model(),
            "cores": os.cpu_count(),
            "memory_gib": memory_gib(),
            "python": platform.python_version(),
        },
        "operator_log": str(log),
        "kubernetes": version,
    }
    if lines == 200:
        result["targets"] = TARGETS
        result["met"] = {key: result[key] <= limit for key, limit in TARGETS.items()}
    return result


def start_operator(kubeconfig: str, namespace: str, log: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "KUBECONFIG": kubeconfig,
        "DYNOLINE_IMAGE": "registry.example/dynoline:bench",
        "DYNOLINE_STORE_QUERIES": "false",  # no database here: the operator's own work is measured
        "DYNOLINE_METRICS_PORT": "0",
        "DYNOLINE_LIVENESS_ENDPOINT": "http://127.0.0.1:0/healthz",
    }
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "controllers", "-n", namespace],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


async def wait_alive(kube: Kube, namespace: str, operator: subprocess.Popen[bytes]) -> None:
    """The operator is up when it has reconciled a first line (which is then deleted)."""
    body = line("warm-up")
    body["metadata"]["namespace"] = namespace
    await kube.create(body)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if operator.poll() is not None:
            raise DynolineError(f"the operator exited with {operator.returncode} during start-up")
        found = await kube.get_or_none(DYNOLINE.kind, namespace, "warm-up")
        if found and (found.get("status") or {}).get("observedGeneration") == 1:
            await kube.delete(DYNOLINE.kind, namespace, "warm-up")
            return
        await asyncio.sleep(0.2)
    raise DynolineError("the operator did not reconcile a first line within 120 s")


async def watch_statefulsets(
    kube: Kube, namespace: str, seen: dict[str, float], arrivals: dict[str, asyncio.Event]
) -> None:
    while True:
        try:
            async for event in kube.watch("StatefulSet", namespace):
                name = (event.get("object") or {}).get("metadata", {}).get("name")
                if event.get("type") == "ADDED" and name and name not in seen:
                    seen[name] = time.perf_counter()
                    arrivals.setdefault(name, asyncio.Event()).set()
        except Exception:  # a stream ended or failed: watch again
            await asyncio.sleep(0.1)


async def one_line(
    kube: Kube, namespace: str, name: str, seen: dict[str, float], arrivals: dict[str, asyncio.Event]
) -> float:
    body = line(name)
    body["metadata"]["namespace"] = namespace
    arrived = arrivals.setdefault(name, asyncio.Event())
    await kube.create(body)
    applied = time.perf_counter()
    await asyncio.wait_for(arrived.wait(), timeout=60)
    for kind, child in (("ConfigMap", f"{name}-config"), ("Service", name)):
        if await kube.get_or_none(kind, namespace, child) is None:
            raise DynolineError(f"{kind} {child} missing after the StatefulSet appeared")
    return max(0.0, seen[name] - applied)


async def wait_converged(
    kube: Kube, namespace: str, names: set[str], process: Any, peak: int
) -> tuple[int, int]:
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        peak = max(peak, process.memory_info().rss)
        done = 0
        for item in await kube.list(DYNOLINE.kind, namespace):
            status = item.get("status") or {}
            if (
                item["metadata"]["name"] in names
                and status.get("observedGeneration") == 1
                and status.get("conditions")
            ):
                done += 1
        if done == len(names):
            sets = {s["metadata"]["name"] for s in await kube.list("StatefulSet", namespace)}
            if names <= sets:
                return done, peak
        await asyncio.sleep(0.5)
    raise DynolineError(f"{len(names)} lines did not converge within 600 s")


def render(result: Result) -> str:
    converge_key = next(k for k in result if k.startswith("converge_"))
    rows = [
        ["apply → children p50", result["apply_to_children_p50_s"], "s", None],
        ["apply → children p95", result["apply_to_children_p95_s"], "s", TARGETS["apply_to_children_p95_s"]],
        ["apply → children max", result["apply_to_children_max_s"], "s", None],
        [f"{result['lines']} lines converge", result[converge_key], "s", TARGETS["converge_200_s"]],
        ["operator RSS after", result["rss_mb"], "MB", TARGETS["rss_mb"]],
        ["operator RSS peak", result["peak_rss_mb"], "MB", None],
        ["operator CPU", result["operator_cpu_s"], "s", None],
    ]
    m = result["machine"]
    return "\n".join(
        [
            table(["measure", "value", "unit", "target"], rows),
            f"Kubernetes {result['kubernetes']}; {result['samples']} single applies; {m['cpu_model']},"
            f" {m['cores']} cores, {m['memory_gib']} GiB; Python {m['python']}",
        ]
    )
