"""kopf wiring, kept thin: watch streams in, keys onto the work queue, lifecycle and liveness.

Reconciling happens in controllers/lines.py and controllers/rules.py, driven by controllers/controller.py.
kopf is used for what it does well (watching with reconnects, login, liveness) through `on.event`
handlers only: they need no finalizers, annotations or status bookkeeping on the watched objects.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import kopf

from controllers import lines, rules
from controllers.context import Context
from controllers.controller import Controller
from controllers.kube import Kube, connection_info
from controllers.manifests import LABEL_MANAGED_BY, MANAGED_BY
from controllers.metrics import Metrics, count_watch_failures
from controllers.settings import OperatorConfig, configure, from_env
from controllers.store_access import Store
from workloads.api.groupversion import DYNOLINE, GROUP, SENTINELRULE, VERSION

OURS = {LABEL_MANAGED_BY: MANAGED_BY}
log = logging.getLogger(__name__)


def _controller(memo: Any) -> Controller:
    controller: Controller = memo["controller"]
    return controller


@kopf.on.login()
def login(settings: kopf.OperatorSettings, **_: Any) -> kopf.ConnectionInfo:
    return connection_info(settings)


@kopf.on.startup()
async def startup(memo: kopf.Memo, settings: kopf.OperatorSettings, **_: Any) -> None:
    config: OperatorConfig = memo.get("config") or from_env()
    metrics = Metrics()
    metrics.serve(config.metrics_port)
    count_watch_failures(metrics)
    store = Store(ttl=config.store_ttl_seconds) if config.store_queries else None
    ctx = Context(
        kube=Kube.from_connection(connection_info(settings)), config=config, metrics=metrics, store=store
    )
    controller = Controller(ctx)
    controller.start()
    memo["controller"] = controller
    log.info(
        "dynoline operator started: image %s, %s, %d workers",
        config.workload.image,
        f"namespaces {', '.join(config.namespaces)}" if config.namespaces else "all namespaces",
        config.workers,
    )


@kopf.on.cleanup()
async def cleanup(memo: kopf.Memo, **_: Any) -> None:
    controller = memo.get("controller")
    if controller is not None:
        await controller.stop()
        await controller.ctx.kube.close()


@kopf.on.probe(id="workqueue")
def workqueue(memo: kopf.Memo, **_: Any) -> int:
    """Shown on the liveness endpoint: objects waiting for or in a reconcile."""
    controller = memo.get("controller")
    return len(controller.queue) if controller is not None else 0


def _observe(kind: str, memo: Any, event: Any) -> None:
    _controller(memo).observe(kind, event.get("type"), event.get("object") or {})


@kopf.on.event(GROUP, VERSION, DYNOLINE.plural)
def dynoline_event(memo: kopf.Memo, event: Any, **_: Any) -> None:
    _observe(lines.KIND, memo, event)


@kopf.on.event(GROUP, VERSION, SENTINELRULE.plural)
def sentinelrule_event(memo: kopf.Memo, event: Any, **_: Any) -> None:
    _observe(rules.KIND, memo, event)


@kopf.on.event("apps", "v1", "statefulsets", labels=OURS)
def statefulset_event(memo: kopf.Memo, event: Any, **_: Any) -> None:
    _observe("StatefulSet", memo, event)


@kopf.on.event("batch", "v1", "jobs", labels=OURS)
def job_event(memo: kopf.Memo, event: Any, **_: Any) -> None:
    _observe("Job", memo, event)


@kopf.on.event("batch", "v1", "cronjobs", labels=OURS)
def cronjob_event(memo: kopf.Memo, event: Any, **_: Any) -> None:
    _observe("CronJob", memo, event)


@kopf.on.event("v1", "configmaps", labels=OURS)
def configmap_event(memo: kopf.Memo, event: Any, **_: Any) -> None:
    _observe("ConfigMap", memo, event)


@kopf.on.event("v1", "services", labels=OURS)
def service_event(memo: kopf.Memo, event: Any, **_: Any) -> None:
    _observe("Service", memo, event)


def run(namespaces: Sequence[str] = (), *, verbose: bool = False) -> int:
    """Run until SIGTERM/SIGINT (kopf handles both and stops gracefully)."""
    config = from_env()
    watched = tuple(namespaces) or config.namespaces
    settings = kopf.OperatorSettings()
    configure(settings, config)
    # `dynoline` has configured logging already; one line per API request is too much at INFO.
    logging.getLogger("httpx").setLevel(logging.DEBUG if verbose else logging.WARNING)
    # kopf logs every handler call ("Handler 'job_event' succeeded.") per watch event; failures still show.
    logging.getLogger("kopf.objects").setLevel(logging.DEBUG if verbose else logging.WARNING)
    kopf.run(
        settings=settings,
        memo=kopf.Memo(config=config),
        standalone=True,
        clusterwide=not watched,
        namespaces=watched,
        liveness_endpoint=config.liveness_endpoint,
    )
    return 0
