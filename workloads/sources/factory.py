"""A DynoLine's `source` and `faults` → the object the simulator asks for readings."""

from __future__ import annotations

from collections.abc import Sequence

from workloads.api import line as api
from workloads.sources import Source
from workloads.sources.cmapss import CmapssSource, load_builtin
from workloads.sources.faults import FaultedSource, from_specs
from workloads.sources.synthetic import SyntheticSource


def build_source(
    spec: api.CmapssSource | api.SyntheticSource, faults: Sequence[api.Fault] = (), rate_hz: float = 1.0
) -> Source:
    """The line's source with its faults; the built-in dataset is parsed once per process and shared."""
    source: Source
    if isinstance(spec, api.CmapssSource):
        source = CmapssSource(load_builtin(spec.dataset, spec.split), loop=spec.loop)
    else:
        source = SyntheticSource(spec.seed)
    injected = from_specs(faults, rate_hz)  # checks rate_hz too, fault or not
    return FaultedSource(source, injected) if injected else source
