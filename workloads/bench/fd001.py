"""Filler values for benchmark tables: FD001's per-channel mean and standard deviation (train_FD001).

Benchmarks that build telemetry server-side draw uniform noise of that spread, so rows have the real
width and realistic contents; the product never needs these figures, which is why they live here.
"""

from __future__ import annotations

from workloads.catalog import SENSOR_COLUMNS, SETTING_COLUMNS

FD001_MOMENTS: dict[str, tuple[float, float]] = {
    "setting_1": (0.0, 0.0022),
    "setting_2": (0.0, 0.0003),
    "setting_3": (100.0, 0.0),
    "t2": (518.67, 0.0),
    "t24": (642.6809, 0.5),
    "t30": (1590.5231, 6.131),
    "t50": (1408.9338, 9.0004),
    "p2": (14.62, 0.0),
    "p15": (21.6098, 0.0014),
    "p30": (553.3677, 0.8851),
    "nf": (2388.0967, 0.071),
    "nc": (9065.2429, 22.0823),
    "epr": (1.3, 0.0),
    "ps30": (47.5412, 0.2671),
    "phi": (521.4135, 0.7375),
    "nrf": (2388.0962, 0.0719),
    "nrc": (8143.7527, 19.0757),
    "bpr": (8.4421, 0.0375),
    "farb": (0.03, 0.0),
    "htbleed": (393.2107, 1.5487),
    "nf_dmd": (2388.0, 0.0),
    "pcnfr_dmd": (100.0, 0.0),
    "w31": (38.8163, 0.1807),
    "w32": (23.2897, 0.1082),
}
assert tuple(FD001_MOMENTS) == SETTING_COLUMNS + SENSOR_COLUMNS
