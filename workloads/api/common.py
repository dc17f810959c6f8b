"""Shared pieces of the resource models: camelCase wire names, durations, strictness."""

from __future__ import annotations

import math
import re
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, StringConstraints
from pydantic.alias_generators import to_camel

from workloads.api import cel

DURATION_PATTERN = r"^[1-9][0-9]{0,8}(ms|s|m|h|d)$"
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_DURATION = re.compile(DURATION_PATTERN)

Duration = Annotated[str, StringConstraints(pattern=DURATION_PATTERN)]
"""A positive whole number with a unit (ms, s, m, h, d): `30s`, `5m`, `7d` — Kubernetes-style, one unit."""

DNS_LABEL_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DnsName = Annotated[str, StringConstraints(pattern=DNS_LABEL_PATTERN, min_length=1, max_length=63)]


def seconds(duration: str) -> float:
    """`30s` → 30.0; raises ValueError for anything that is not a Duration."""
    match = _DURATION.match(duration)
    if not match:
        raise ValueError(f"{duration!r} is not a duration like 30s, 5m, 2h or 7d")
    unit = match.group(1)
    return int(duration[: -len(unit)]) * _UNITS[unit]


_NUMBER = "int(self.substring(0, self.size() - {}))"
SECONDS_CEL = (
    f"(self.endsWith('ms') ? double({_NUMBER.format(2)}) / 1000.0 : double({_NUMBER.format(1)})"
    " * (self.endsWith('d') ? 86400.0 : self.endsWith('h') ? 3600.0 : self.endsWith('m') ? 60.0 : 1.0))"
)
"""`seconds(self)` in CEL, for a string that matches DURATION_PATTERN."""


@cel.schema_twin()  # JSON has no NaN or infinity
def _finite(value: float) -> float:
    if not math.isfinite(value):
        raise ValueError("must be a finite number, not NaN or infinity")
    return value


Finite = Annotated[float, AfterValidator(_finite)]


class Model(BaseModel):
    """Strict models with camelCase names on the wire (as Kubernetes resources spell them)."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True, use_enum_values=True
    )
