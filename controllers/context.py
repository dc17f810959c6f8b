"""What every reconcile needs: the API client, the store reader, settings, metrics, a clock."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from controllers.kube import ApiError, Kube
from controllers.metrics import Metrics
from controllers.settings import OperatorConfig
from controllers.store_access import Store
from workloads.api.line import SecretKeyRef

ObjKey = tuple[str, str, str]  # kind, namespace, name


def _now() -> datetime:
    return datetime.now(UTC)


class OwnWrites:
    """resourceVersions the operator itself produced, so the watch events they cause are not work."""

    def __init__(self, limit: int = 100_000) -> None:
        self._versions: dict[ObjKey, str] = {}
        self._limit = limit

    def record(self, obj: dict[str, Any] | None) -> None:
        if not obj:
            return
        meta = obj.get("metadata") or {}
        version = meta.get("resourceVersion")
        if version and obj.get("kind"):
            if len(self._versions) >= self._limit:
                self._versions.clear()
            self._versions[(obj["kind"], meta.get("namespace", ""), meta["name"])] = str(version)

    def is_own(self, kind: str, obj: dict[str, Any]) -> bool:
        meta = obj.get("metadata") or {}
        key = (kind, meta.get("namespace", ""), meta.get("name", ""))
        return self._versions.get(key) == str(meta.get("resourceVersion"))

    def forget(self, kind: str, namespace: str, name: str) -> None:
        self._versions.pop((kind, namespace, name), None)


@dataclass
class Context:
    kube: Kube
    config: OperatorConfig
    metrics: Metrics
    store: Store | None = None
    clock: Callable[[], datetime] = _now
    writes: OwnWrites = field(default_factory=OwnWrites)


@dataclass(frozen=True)
class SecretCheck:
    """Whether a referenced Secret key exists; `url` is kept out of repr so it never reaches a log."""

    ok: bool
    reason: str = ""
    message: str = ""
    url: str | None = field(default=None, repr=False)


async def check_secret(kube: Kube, namespace: str, ref: SecretKeyRef) -> SecretCheck:
    try:
        secret = await kube.get("Secret", namespace, ref.name)
    except ApiError as exc:
        if exc.not_found:
            return SecretCheck(
                False, "SecretNotFound", f"Secret {ref.name!r} not found in namespace {namespace}"
            )
        return SecretCheck(False, "SecretUnreadable", f"cannot read Secret {ref.name!r}: {exc.reason}")
    data = secret.get("data") or {}
    if ref.key not in data:
        return SecretCheck(False, "SecretKeyNotFound", f"Secret {ref.name!r} has no key {ref.key!r}")
    try:
        url = base64.b64decode(data[ref.key], validate=True).decode("utf-8").strip()
    except (binascii.Error, UnicodeDecodeError):
        return SecretCheck(
            False, "SecretKeyInvalid", f"Secret {ref.name!r} key {ref.key!r} is not UTF-8 text"
        )
    if not url:
        return SecretCheck(False, "SecretKeyInvalid", f"Secret {ref.name!r} key {ref.key!r} is empty")
    return SecretCheck(True, url=url)
