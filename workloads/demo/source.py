"""What the demo's units replay: the healthy start of each FD001 engine's life, on a loop.

FD001 engines run to failure in 128 to 362 cycles, and at 1 Hz a cycle is a second: replayed whole, half
the line wears out within three minutes and the rule pack rightly stops it, burying the one injected
fault. So by default each unit replays only its engine's first `HEALTHY_CYCLES` cycles and then starts
again as a new engine (the source's own loop semantics); `--full-lives` replays whole lives instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import MappingProxyType

from workloads.api.line import CmapssSource as CmapssSpec
from workloads.api.line import Fault
from workloads.simulator.config import SourceSpec
from workloads.sources import Source
from workloads.sources.cmapss import CmapssSource, load_builtin
from workloads.sources.factory import build_source
from workloads.sources.faults import FaultedSource, from_specs

# Replayed whole at 1 Hz, the pack's earliest alert on an unfaulted engine came at cycle 57 (hpc-health-index
# on engine 91); the first 40 cycles of every FD001 train engine stay clear of every rule.
HEALTHY_CYCLES = 40


def demo_source(spec: SourceSpec, faults: Sequence[Fault], rate_hz: float, *, full_lives: bool) -> Source:
    if full_lives or not isinstance(spec, CmapssSpec):
        return build_source(spec, faults, rate_hz)
    engines = load_builtin(spec.dataset, spec.split)
    early = MappingProxyType({unit: readings[:HEALTHY_CYCLES] for unit, readings in engines.items()})
    source: Source = CmapssSource(early, loop=True)
    injected = from_specs(faults, rate_hz)
    return FaultedSource(source, injected) if injected else source
