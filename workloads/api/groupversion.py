"""The API's identity: group, version, kinds and their names (CloudNativePG's groupversion_info.go).

One module owns them, so the CRD generator, the operator's watches, owner references, RBAC rules and the
`dynoline.dev/...` label, annotation and finalizer keys cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass

GROUP = "dynoline.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
CATEGORY = "dynoline"


def qualified(name: str) -> str:
    """A label, annotation or finalizer key under the API's domain: `dynoline.dev/<name>`."""
    return f"{GROUP}/{name}"


@dataclass(frozen=True)
class KindNames:
    """How the API server names one kind (a CRD's `spec.names`)."""

    kind: str
    plural: str
    singular: str
    short_names: tuple[str, ...]

    @property
    def crd_name(self) -> str:
        return f"{self.plural}.{GROUP}"

    @property
    def list_kind(self) -> str:
        return f"{self.kind}List"


DYNOLINE = KindNames(kind="DynoLine", plural="dynolines", singular="dynoline", short_names=("dl",))
SENTINELRULE = KindNames(
    kind="SentinelRule", plural="sentinelrules", singular="sentinelrule", short_names=("sr",)
)
KINDS: tuple[KindNames, ...] = (DYNOLINE, SENTINELRULE)
