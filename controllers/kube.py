"""A small async Kubernetes client for what the reconcilers do: get, list, server-side apply, patch, delete.

kopf watches; this client writes. It takes its credentials from the same `kopf.ConnectionInfo` kopf logs
in with (service account in a pod, else $KUBECONFIG), and re-reads them on a 401 (service-account tokens
rotate): one shared HTTP client whose `httpx.Auth` swaps the credentials under a lock, so the workers'
concurrent requests re-read them once between them and none fails because another re-authenticated.
Errors become `ApiError` with the server's own message; nothing here ever logs a body.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Generator, Mapping
from dataclasses import dataclass
from typing import Any

import httpx
import kopf

from workloads.api.groupversion import API_VERSION, DYNOLINE, SENTINELRULE

FIELD_MANAGER = "dynoline-operator"
APPLY = "application/apply-patch+yaml"
MERGE = "application/merge-patch+json"

Obj = dict[str, Any]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Kind:
    api_version: str
    plural: str

    def prefix(self) -> str:
        return f"/api/{self.api_version}" if "/" not in self.api_version else f"/apis/{self.api_version}"


KINDS: dict[str, Kind] = {
    "ConfigMap": Kind("v1", "configmaps"),
    "Service": Kind("v1", "services"),
    "Secret": Kind("v1", "secrets"),
    "Event": Kind("v1", "events"),
    "Pod": Kind("v1", "pods"),
    "Namespace": Kind("v1", "namespaces"),
    "StatefulSet": Kind("apps/v1", "statefulsets"),
    "Job": Kind("batch/v1", "jobs"),
    "CronJob": Kind("batch/v1", "cronjobs"),
    DYNOLINE.kind: Kind(API_VERSION, DYNOLINE.plural),
    SENTINELRULE.kind: Kind(API_VERSION, SENTINELRULE.plural),
}


class ApiError(Exception):
    """A failed API call: the HTTP status, the Status reason and the server's message."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(f"{status} {reason}: {message}")
        self.status = status
        self.reason = reason
        self.message = message

    @property
    def not_found(self) -> bool:
        return self.status == 404

    @property
    def conflict(self) -> bool:
        return self.status == 409

    @property
    def invalid(self) -> bool:
        return self.status == 422


def path(
    kind: str, namespace: str | None = None, name: str | None = None, subresource: str | None = None
) -> str:
    info = KINDS[kind]
    parts = [info.prefix()]
    if namespace is not None:
        parts.append(f"namespaces/{namespace}")
    parts.append(info.plural)
    if name is not None:
        parts.append(name)
    if subresource is not None:
        parts.append(subresource)
    return "/".join(parts)


def connection_info(settings: kopf.OperatorSettings | None = None) -> kopf.ConnectionInfo:
    """In a pod: the service account; elsewhere: $KUBECONFIG or ~/.kube/config (kopf's own readers)."""
    settings = settings or kopf.OperatorSettings()
    info = kopf.login_with_service_account(settings=settings) or kopf.login_with_kubeconfig(settings=settings)
    if info is None:
        raise kopf.LoginError("no service account token and no kubeconfig: cannot reach the Kubernetes API")
    return info


class Relogin(httpx.Auth):
    """Credentials headers that renew themselves on a 401, once for all the requests that met it.

    Each request remembers which credentials it was sent with; on its 401, the first to take the lock
    re-reads them (`relogin`) and the others, finding newer ones, just retry with those. The TLS context
    stays the client's: a service account's CA does not rotate under a running pod, its token does.
    """

    requires_request_body = True  # a retried PATCH or POST sends its body again

    def __init__(
        self, headers: Mapping[str, str], relogin: Callable[[], kopf.ConnectionInfo] | None = None
    ) -> None:
        self._headers = dict(headers)
        self._relogin = relogin
        self._generation = 0
        self._lock = asyncio.Lock()

    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        raise RuntimeError("Relogin serves the async client only")

    async def async_auth_flow(self, request: httpx.Request) -> AsyncGenerator[httpx.Request, httpx.Response]:
        sent_with = self._generation
        request.headers.update(self._headers)
        response = yield request
        if response.status_code != 401 or self._relogin is None:
            return
        async with self._lock:
            if self._generation == sent_with:  # nobody has renewed them since this request was sent
                self._headers = dict(self._relogin().as_http_headers())
                self._generation += 1
                log.info("the API server refused the operator's credentials (401): re-read them")
        request.headers.update(self._headers)
        yield request


class Kube:
    """Async API client; `Kube.from_connection()` in the operator, `Kube(base_url)` against a test server."""

    def __init__(
        self,
        base_url: str,
        *,
        headers: Mapping[str, str] | None = None,
        verify: Any = True,
        timeout: float = 15.0,
        relogin: Callable[[], kopf.ConnectionInfo] | None = None,
    ) -> None:

        self._http = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            headers={"User-Agent": "dynoline-operator", "Accept": "application/json"},
            auth=Relogin(headers or {}, relogin),
            verify=verify,
            timeout=httpx.Timeout(timeout, connect=5.0),
            limits=httpx.Limits(max_connections=32, max_keepalive_connections=16),
        )

    @classmethod
    def from_connection(cls, info: kopf.ConnectionInfo | None = None, **kwargs: Any) -> Kube:
        info = info or connection_info()
        return cls(
            info.server,
            headers=info.as_http_headers(),
            verify=info.as_ssl_context(),
            relogin=connection_info,
            **kwargs,
        )

    async def close(self) -> None:
        await self._http.aclose()

    async def request(
        self,
        method: str,
        url: str,
        *,
        body: Any = None,
        params: Mapping[str, str] | None = None,
        content_type: str = "application/json",
    ) -> Any:
        response = await self._http.request(
            method,
            url,
            params=params,
            json=body,
            headers={"Content-Type": content_type} if body is not None else None,
        )
        if response.status_code >= 400:
            raise _error(response)
        if not response.content:
            return None
        return response.json()

    async def get(self, kind: str, namespace: str | None, name: str) -> Obj:
        result: Obj = await self.request("GET", path(kind, namespace, name))
        return result

    async def get_or_none(self, kind: str, namespace: str | None, name: str) -> Obj | None:
        try:
            return await self.get(kind, namespace, name)
        except ApiError as exc:
            if exc.not_found:
                return None
            raise

    async def list(self, kind: str, namespace: str | None, label_selector: str | None = None) -> list[Obj]:
        params = {"labelSelector": label_selector} if label_selector else None
        result = await self.request("GET", path(kind, namespace), params=params)
        items: list[Obj] = result.get("items") or []
        return items

    async def watch(
        self, kind: str, namespace: str | None, label_selector: str | None = None, resource_version: str = ""
    ) -> AsyncIterator[Obj]:
        """Watch events ({"type", "object"}) until the server ends the stream (the caller re-watches)."""
        params = {"watch": "true", "allowWatchBookmarks": "true", "resourceVersion": resource_version}
        if label_selector:
            params["labelSelector"] = label_selector
        url, timeout = path(kind, namespace), httpx.Timeout(None, connect=5.0)
        async with self._http.stream("GET", url, params=params, timeout=timeout) as response:
            if response.status_code >= 400:
                await response.aread()
                raise _error(response)
            async for line in response.aiter_lines():
                if line.strip():
                    event: Obj = json.loads(line)
                    yield event

    async def apply(self, manifest: Obj) -> Obj:
        """Server-side apply as the operator's field manager, taking fields back from hand edits."""
        meta = manifest["metadata"]
        url = path(manifest["kind"], meta.get("namespace"), meta["name"])
        result: Obj = await self.request(
            "PATCH",
            url,
            body=manifest,
            params={"fieldManager": FIELD_MANAGER, "force": "true"},
            content_type=APPLY,
        )
        return result

    async def merge_patch(
        self, kind: str, namespace: str | None, name: str, patch: Obj, subresource: str | None = None
    ) -> Obj:
        url = path(kind, namespace, name, subresource)
        result: Obj = await self.request(
            "PATCH", url, body=patch, params={"fieldManager": FIELD_MANAGER}, content_type=MERGE
        )
        return result

    async def create(self, manifest: Obj) -> Obj:
        meta = manifest["metadata"]
        result: Obj = await self.request("POST", path(manifest["kind"], meta.get("namespace")), body=manifest)
        return result

    async def delete(self, kind: str, namespace: str | None, name: str) -> bool:
        """Delete with background propagation (dependents go too); False when it was already gone."""
        try:
            await self.request(
                "DELETE",
                path(kind, namespace, name),
                body={"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Background"},
            )
        except ApiError as exc:
            if exc.not_found:
                return False
            raise
        return True


def _error(response: httpx.Response) -> ApiError:
    try:
        payload = response.json()
    except ValueError:
        payload = {}
    if not isinstance(payload, dict):
        payload = {}
    reason = str(payload.get("reason") or response.reason_phrase or "Error")
    message = str(payload.get("message") or response.text[:500] or reason)
    return ApiError(response.status_code, reason, message)
