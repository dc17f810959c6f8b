"""Pod discovery for Prometheus' file_sd: list the cluster's pods every few seconds, write the targets.

Debian's Prometheus has no Kubernetes discovery (the package drops it for client-go's dependencies), so
this loop does its job: it reads `/api/v1/pods` with the admin kubeconfig's credentials (the files the
harness extracted) and rewrites `targets/*.json` atomically when they change; Prometheus watches them.
An API error keeps the last targets (a dead pod's target then fails its scrape, as it would anyway).
"""

from __future__ import annotations

import json
import logging
import ssl
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from tests.e2e.monitoring import config

log = logging.getLogger("e2e-monitoring")


def ssl_context(access: config.KubeAccess, files: config.KubeFiles) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(files.ca) if files.ca is not None else None)
    if access.insecure:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if files.cert is not None and files.key is not None:
        ctx.load_cert_chain(str(files.cert), str(files.key))
    return ctx


def list_pods(
    access: config.KubeAccess, files: config.KubeFiles, ctx: ssl.SSLContext
) -> list[dict[str, Any]]:
    request = urllib.request.Request(f"{access.server.rstrip('/')}/api/v1/pods")
    if files.token is not None:
        request.add_header("Authorization", f"Bearer {files.token.read_text().strip()}")
    with urllib.request.urlopen(request, timeout=10, context=ctx) as resp:
        items: list[dict[str, Any]] = json.loads(resp.read())["items"]
    return items


def write_targets(directory: Path, targets: dict[str, list[dict[str, Any]]]) -> bool:
    """Rewrite each job's file when its content changed (temp file + rename); True when any changed."""
    directory.mkdir(parents=True, exist_ok=True)
    changed = False
    for job, name in config.TARGET_FILES.items():
        path = directory / name
        text = json.dumps(targets.get(job, []), indent=1, sort_keys=True) + "\n"
        try:
            if path.read_text() == text:
                continue
        except OSError:
            pass
        tmp = path.with_suffix(".tmp")
        tmp.write_text(text)
        tmp.replace(path)
        changed = True
    return changed


def run(
    access: config.KubeAccess,
    files: config.KubeFiles,
    *,
    targets_dir: Path,
    operator_namespace: str,
    release: str,
    interval: float = 2.0,
) -> None:
    """Forever (until SIGTERM): the harness starts it as a child process and stops it with the others."""
    ctx = ssl_context(access, files)
    while True:
        try:
            pods = list_pods(access, files, ctx)
        except (urllib.error.URLError, OSError, ValueError, KeyError) as exc:
            log.warning("listing pods from %s failed: %s (targets kept)", access.server, exc)
        else:
            targets = config.pod_targets(pods, operator_namespace=operator_namespace, release=release)
            if write_targets(targets_dir, targets):
                log.info("targets: %s", {job: len(groups) for job, groups in targets.items()})
        time.sleep(interval)
