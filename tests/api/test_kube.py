"""The API client against kmock's server: a token that expires while every worker has a request in flight."""

from __future__ import annotations

import asyncio
from typing import Any

import kmock
import kopf

from controllers.kube import Kube
from tests.api.conftest import Cluster
from tests.api.test_lines import NS, secret

WORKERS = 8  # the operator's default
UNAUTHORIZED = {"kind": "Status", "status": "Failure", "reason": "Unauthorized", "code": 401}


async def test_a_rotated_token_is_fetched_once_and_no_concurrent_request_fails(cluster: Cluster) -> None:
    """The first 401 re-authenticates while the other workers' requests are still on the wire; they get
    their 401 only after the new token is in use, and must then retry with it rather than fail or log in
    again."""
    stale: list[kmock.Request] = []
    everyone, fresh = asyncio.Event(), asyncio.Event()

    async def expired(request: kmock.Request) -> Any:
        stale.append(request)
        if len(stale) == WORKERS:
            everyone.set()
        await everyone.wait()  # every worker has a request with the old token in flight
        if request is not stale[0]:
            await fresh.wait()  # the others answer once the first has re-authenticated and retried
        return UNAUTHORIZED

    logins: list[str] = []

    def relogin() -> kopf.ConnectionInfo:
        logins.append("new")
        return kopf.ConnectionInfo(server=str(cluster.url), token="new")

    seed = Kube(str(cluster.url), headers={"Authorization": "Bearer new"})
    await seed.create(secret())
    await seed.close()
    cluster[kmock.headers({"Authorization": "Bearer old"})] << 401 << expired
    cluster[kmock.headers({"Authorization": "Bearer new"})] >> fresh  # (a sink fires once)
    kube = Kube(str(cluster.url), headers={"Authorization": "Bearer old"}, relogin=relogin)
    try:
        results = await asyncio.gather(
            *(kube.get("Secret", NS, "telemetry-db") for _ in range(WORKERS)), return_exceptions=True
        )
        assert [r for r in results if isinstance(r, BaseException)] == []
        assert [r["metadata"]["name"] for r in results if isinstance(r, dict)] == ["telemetry-db"] * WORKERS
        assert logins == ["new"]  # one re-login for all of them
        assert len(stale) == WORKERS
        await kube.get("Secret", NS, "telemetry-db")
        assert len(stale) == WORKERS and logins == ["new"]  # later requests carry the new token
    finally:
        await kube.close()
