"""Kubernetes Events for condition transitions, so `kubectl describe` tells the story of a resource."""

from __future__ import annotations

import logging
import secrets
from datetime import datetime
from typing import Any

import httpx

from controllers.conditions import timestamp
from controllers.kube import ApiError, Kube

COMPONENT = "dynoline-operator"
log = logging.getLogger(__name__)


def build(
    obj: dict[str, Any], kind: str, type_: str, reason: str, message: str, now: datetime
) -> dict[str, Any]:
    meta = obj["metadata"]
    stamp = timestamp(now)
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": f"{meta['name']}.{secrets.token_hex(8)}", "namespace": meta["namespace"]},
        "involvedObject": {
            "apiVersion": obj.get("apiVersion"),
            "kind": kind,
            "name": meta["name"],
            "namespace": meta["namespace"],
            "uid": meta.get("uid"),
            "resourceVersion": meta.get("resourceVersion"),
        },
        "type": type_,
        "reason": reason,
        "message": message[:1024],
        "source": {"component": COMPONENT},
        "reportingComponent": COMPONENT,
        "reportingInstance": COMPONENT,
        "firstTimestamp": stamp,
        "lastTimestamp": stamp,
        "count": 1,
    }


async def post(kube: Kube, event: dict[str, Any]) -> bool:
    """Events are best effort: a failure is logged, never raised into the reconcile."""
    try:
        await kube.create(event)
    except (ApiError, httpx.HTTPError) as exc:
        log.warning(
            "could not post event %s on %s: %s", event["reason"], event["involvedObject"]["name"], exc
        )
        return False
    return True
