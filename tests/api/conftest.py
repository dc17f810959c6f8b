"""The kmock tier: reconcilers against kmock's in-memory Kubernetes API (a real HTTP server, no patching).

kmock's emulator stores objects and merges patches as plain JSON. Two things the operator relies on are
added here the way kmock's docs suggest (subclass the emulator): server-side apply creates an object that
does not exist yet, and created objects get the uid/resourceVersion/creationTimestamp a server assigns.
Everything else (status subresource, deletes, lists, events) is kmock's own behaviour.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import attrs
import kmock
import pytest
import pytest_asyncio

from controllers.context import Context
from controllers.kube import APPLY, Kube
from controllers.metrics import Metrics
from controllers.pods import WorkloadSettings
from controllers.settings import OperatorConfig
from controllers.store_access import Store

RESOURCES = {
    "v1/configmaps": ("ConfigMap", True),
    "v1/services": ("Service", True),
    "v1/secrets": ("Secret", True),
    "v1/events": ("Event", True),
    "apps/v1/statefulsets": ("StatefulSet", True),
    "batch/v1/jobs": ("Job", True),
    "batch/v1/cronjobs": ("CronJob", True),
    "dynoline.dev/v1alpha1/dynolines": ("DynoLine", True),
    "dynoline.dev/v1alpha1/sentinelrules": ("SentinelRule", True),
}
IMAGE = "registry.example/dynoline:1.0.0"
_versions = itertools.count(1000)


@attrs.define(kw_only=True)
class Cluster(kmock.KubernetesEmulator):
    """kmock's emulator plus apply-creates and server-assigned metadata."""

    def _stamp(self, data: Any, created: bool) -> None:
        if not isinstance(data, dict):
            return
        meta = data.setdefault("metadata", {})
        meta["resourceVersion"] = str(next(_versions))
        if created:
            meta.setdefault("uid", str(uuid.uuid4()))
            meta.setdefault("creationTimestamp", datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
            meta.setdefault("generation", 1)

    async def _handle(self, request: kmock.Request) -> Any:
        writing = request.action in (kmock.action.CREATE, kmock.action.UPDATE)
        if request.resource is not None and writing and request.subresource is None:
            applying = APPLY in request.headers.get("Content-Type", "")
            missing = False
            if request.name is not None:
                key = (request.resource, request.namespace, request.name)
                missing = key not in self.objects or self.objects[key].deleted
            if applying and missing:
                self._stamp(request.data, created=True)
                created = attrs.evolve(request, action=kmock.action.CREATE, name=None)
                # kmock matches reactions against its request log by identity: log the new form.
                self._requests[:] = [created if r is request else r for r in self._requests]
                request = created
            else:
                self._stamp(request.data, created=request.action == kmock.action.CREATE)
        return await super()._handle(request)


@pytest_asyncio.fixture
async def cluster() -> AsyncIterator[Cluster]:
    async with Cluster() as emulator, kmock.Server(emulator):
        for resource, (kind, namespaced) in RESOURCES.items():
            emulator.resources[resource] = kmock.ResourceInfo(kind=kind, namespaced=namespaced)
        yield emulator


@pytest_asyncio.fixture
async def kube(cluster: Cluster) -> AsyncIterator[Kube]:
    client = Kube(str(cluster.url))
    yield client
    await client.close()


@pytest.fixture
def config() -> OperatorConfig:
    return OperatorConfig(workload=WorkloadSettings(image=IMAGE), missing_ref_retry_seconds=30.0)


@pytest.fixture
def ctx(kube: Kube, config: OperatorConfig) -> Context:
    """No store: tests that read PostgreSQL build their own context with one."""
    return Context(kube=kube, config=config, metrics=Metrics())


@pytest.fixture
def store() -> Store:
    return Store(ttl=0.0)


def obj(cluster: Cluster, resource: str, namespace: str, name: str) -> dict[str, Any]:
    """The current raw object (KeyError when absent or deleted)."""
    key = (kmock.resource(resource), namespace, name)
    if key not in cluster.objects or cluster.objects[key].deleted:
        raise KeyError(f"{resource} {namespace}/{name} does not exist")
    raw: dict[str, Any] = cluster.objects[key].raw
    return raw


def exists(cluster: Cluster, resource: str, namespace: str, name: str) -> bool:
    key = (kmock.resource(resource), namespace, name)
    return key in cluster.objects and not cluster.objects[key].deleted


def events_for(cluster: Cluster, name: str) -> list[dict[str, Any]]:
    found = []
    for (resource, _, _), item in cluster.objects.items():
        if resource.plural == "events" and not item.deleted and item.raw["involvedObject"]["name"] == name:
            found.append(item.raw)
    return found
