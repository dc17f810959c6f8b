"""The glue between watch events and reconciles: which object a change belongs to, and when to look.

Every event (a DynoLine, a SentinelRule, or a child labelled `managed-by: dynoline-operator`) becomes a
key in one work queue. Events caused by the operator's own writes are recognised by their
resourceVersion and skipped. Every known object is also re-queued every `resync_seconds`, spread out, so
drift that produced no event and state kept outside Kubernetes (the store) are looked at regularly.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import defaultdict
from typing import Any

from controllers import lines, rules
from controllers.context import Context
from controllers.manifests import LABEL_COMPONENT, LABEL_INSTANCE, SENTINEL
from controllers.queue import WorkQueue

Key = tuple[str, str, str]  # kind (DynoLine | SentinelRule), namespace, name
log = logging.getLogger(__name__)


def owner_key(kind: str, body: dict[str, Any]) -> Key | None:
    """The custom resource a watched object belongs to."""
    meta = body.get("metadata") or {}
    namespace = meta.get("namespace")
    if not namespace:
        return None
    if kind in (lines.KIND, rules.KIND):
        return (kind, namespace, meta.get("name", ""))
    for ref in meta.get("ownerReferences") or []:
        if ref.get("controller") and ref.get("kind") in (lines.KIND, rules.KIND):
            return (ref["kind"], namespace, ref["name"])
    labels = meta.get("labels") or {}
    instance = labels.get(LABEL_INSTANCE)
    if not instance:
        return None
    # Jobs made by a rule's CronJob are owned by the CronJob; their labels name the rule.
    return (rules.KIND if labels.get(LABEL_COMPONENT) == SENTINEL else lines.KIND, namespace, instance)


class Controller:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.queue: WorkQueue[Key] = WorkQueue(
            self.reconcile, workers=ctx.config.workers, on_error=self._failed
        )
        self.known: set[Key] = set()
        self._rules_of_line: dict[tuple[str, str], set[str]] = defaultdict(set)
        self._resync: asyncio.Task[None] | None = None

    # --------------------------------------------------------------------------------------- events

    def observe(self, kind: str, event_type: str | None, body: dict[str, Any]) -> None:
        """A watch event (type None: kopf's initial listing). Decides what to enqueue."""
        key = owner_key(kind, body)
        if key is None:
            return
        own = kind in (lines.KIND, rules.KIND)
        deleted = event_type == "DELETED"
        if own and deleted:
            self._drop(key)
        elif own:
            self.known.add(key)
            if kind == rules.KIND:
                self._index_rule(key, body)
        if event_type is not None and not deleted and self.ctx.writes.is_own(kind, body):
            return  # the echo of our own apply or status write
        if deleted and not own:
            meta = body.get("metadata") or {}
            self.ctx.writes.forget(kind, meta.get("namespace", ""), meta.get("name", ""))
        self.queue.add(key)
        if kind == lines.KIND:
            # Rules waiting for this line (LineNotFound), using its Secret, or losing it look again.
            for rule in self._rules_of_line.get((key[1], key[2]), set()):
                self.queue.add((rules.KIND, key[1], rule))
        self.ctx.metrics.queue_depth.set(len(self.queue))

    def _index_rule(self, key: Key, body: dict[str, Any]) -> None:
        line = ((body.get("spec") or {}).get("lineRef") or {}).get("name")
        for (namespace, _), names in self._rules_of_line.items():
            if namespace == key[1]:
                names.discard(key[2])
        if line:
            self._rules_of_line[(key[1], line)].add(key[2])

    def _drop(self, key: Key) -> None:
        self.known.discard(key)
        self.queue.forget(key)
        if key[0] == rules.KIND:
            for (namespace, _), names in self._rules_of_line.items():
                if namespace == key[1]:
                    names.discard(key[2])
            self.ctx.metrics.set_state(rules.CONTROLLER, (key[1], key[2]), None)
        else:
            self.ctx.metrics.set_state(lines.CONTROLLER, (key[1], key[2]), None)
        # The deletion may still need work (a finalizer); a reconcile of a gone object is cheap.

    # -------------------------------------------------------------------------------------- running

    async def reconcile(self, key: Key) -> float | None:
        kind, namespace, name = key
        controller = lines.CONTROLLER if kind == lines.KIND else rules.CONTROLLER
        metrics = self.ctx.metrics
        metrics.reconcile_operations.labels(controller).inc()
        started = time.perf_counter()
        try:
            if kind == lines.KIND:
                return await lines.reconcile(self.ctx, namespace, name)
            return await rules.reconcile(self.ctx, namespace, name)
        finally:
            metrics.reconcile_duration.labels(controller).observe(time.perf_counter() - started)
            metrics.queue_depth.set(len(self.queue))

    def _failed(self, key: Key, exc: BaseException, attempt: int) -> None:
        controller = lines.CONTROLLER if key[0] == lines.KIND else rules.CONTROLLER
        self.ctx.metrics.reconcile_errors.labels(controller).inc()
        log.warning("reconcile %s %s/%s failed (attempt %d): %s", key[0], key[1], key[2], attempt, exc)

    def start(self) -> None:
        self.queue.start()
        self._resync = asyncio.create_task(self._resync_loop(), name="dynoline-resync")

    async def stop(self) -> None:
        if self._resync is not None:
            self._resync.cancel()
            await asyncio.gather(self._resync, return_exceptions=True)
        await self.queue.stop()

    async def _resync_loop(self) -> None:
        period = self.ctx.config.resync_seconds
        while True:
            await asyncio.sleep(period)
            for key in list(self.known):
                self.queue.add(key, delay=random.uniform(0, period / 2))
