"""The watch-failure metric, counted from kopf's own watch code against kmock's server.

kopf offers no hook for a failed list or watch, so controllers/metrics.py counts the attempts kopf logs.
These tests run kopf's real watch stream (its API client, retries and logging) against a server that
refuses it: if a kopf upgrade renames the logger or rewords the message, they fail here, loudly, rather
than the metric silently reading 0 in production.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterator

import kmock
import kopf
import pytest
import pytest_asyncio
from kopf._cogs.clients import auth, errors, watching
from kopf._cogs.structs import credentials, references

from controllers.metrics import KOPF_CLIENTS_LOGGER, Metrics, WatchFailureCounter, count_watch_failures
from tests.api.conftest import Cluster

NS = "factory"
CONFIGMAPS = references.Resource(
    group="",
    version="v1",
    plural="configmaps",
    kind="ConfigMap",
    namespaced=True,
    verbs=frozenset({"list", "watch"}),
)
ATTEMPTS = 3  # kopf's error_backoffs below: two retries, then it escalates


def failures(metrics: Metrics) -> float:
    value = metrics.registry.get_sample_value("dynoline_operator_watch_operations_failed_total")
    return value or 0.0


@pytest.fixture
def metrics() -> Iterator[Metrics]:
    """The counter attached as the operator attaches it, and detached again after the test."""
    current = Metrics()
    handler = count_watch_failures(current)
    yield current
    logging.getLogger(KOPF_CLIENTS_LOGGER).removeHandler(handler)


@pytest_asyncio.fixture
async def kopf_client(cluster: Cluster) -> AsyncIterator[kopf.OperatorSettings]:
    """kopf's API client logged in to kmock (what kopf's login handlers would do), fast retries."""
    vault = credentials.Vault()
    await vault.populate({"kmock": kopf.ConnectionInfo(server=str(cluster.url))})
    token = auth.vault_var.set(vault)
    settings = kopf.OperatorSettings()
    settings.networking.error_backoffs = [0.0] * (ATTEMPTS - 1)
    try:
        yield settings
    finally:
        auth.vault_var.reset(token)
        await vault.close()


async def _stream(settings: kopf.OperatorSettings, events: list[object]) -> None:
    """kopf's list-then-watch of ConfigMaps, until it ends or escalates."""
    stopper: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    try:
        async for event in watching.continuous_watch(
            settings=settings,
            resource=CONFIGMAPS,
            namespace=references.NamespaceName(NS),
            operator_pause_waiter=stopper,
        ):
            events.append(event)
            if len(events) > 100:
                break
    finally:
        stopper.cancel()


async def test_each_failed_list_attempt_of_kopfs_watch_is_counted(
    cluster: Cluster, kopf_client: kopf.OperatorSettings, metrics: Metrics
) -> None:
    cluster["get /api/v1/namespaces/factory/configmaps"] << 503 << {"kind": "Status", "code": 503}
    events: list[object] = []
    with pytest.raises(errors.APIServerError):
        await _stream(kopf_client, events)
    assert events == []
    assert failures(metrics) == ATTEMPTS, (
        "kopf no longer logs its failed watch/list attempts as controllers/metrics.py expects"
        " (logger kopf._cogs.clients.*, 'Request attempt #N failed; ...: GET <url>'): update the counter"
    )


async def test_each_failed_watch_attempt_is_counted(
    cluster: Cluster, kopf_client: kopf.OperatorSettings, metrics: Metrics
) -> None:
    cluster.resources["v1/configmaps"] = kmock.ResourceInfo(kind="ConfigMap", namespaced=True)
    cluster[kmock.params({"watch": "true"})] << 503 << {"kind": "Status", "code": 503}
    events: list[object] = []
    with pytest.raises(errors.APIServerError):
        await _stream(kopf_client, events)
    assert events == [watching.Bookmark.LISTED]  # the list succeeded (empty); every watch attempt failed
    assert failures(metrics) == ATTEMPTS, (
        "kopf no longer logs its failed watch attempts as controllers/metrics.py expects: update the counter"
    )


def test_the_counter_is_attached_once_and_counts_into_the_latest_metrics() -> None:
    logger = logging.getLogger(KOPF_CLIENTS_LOGGER)
    first, second = Metrics(), Metrics()
    handler = count_watch_failures(first)
    try:
        assert count_watch_failures(second) is handler  # the operator started again in this process
        assert [h for h in logger.handlers if isinstance(h, WatchFailureCounter)] == [handler]
        logging.getLogger(f"{KOPF_CLIENTS_LOGGER}.api").error(
            "Request attempt #1/3 failed; will retry: GET https://k8s/api/v1/configmaps?watch=true -> boom"
        )
        logging.getLogger(f"{KOPF_CLIENTS_LOGGER}.api").error(
            "Request attempt #1/3 failed; will retry: PATCH https://k8s/api/v1/namespaces/a/configmaps/b"
        )
        assert (failures(first), failures(second)) == (0.0, 1.0)
    finally:
        for h in [h for h in logger.handlers if isinstance(h, WatchFailureCounter)]:
            logger.removeHandler(h)
