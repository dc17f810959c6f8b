"""The C-MAPSS channel catalogue: the only place sensor names become SQL column names.

Sentinel rules and the simulator both resolve names here, so a name a user types is either one of
these 21 channels or an error; it is never pasted into SQL.
"""

from __future__ import annotations

from dataclasses import dataclass

from workloads.errors import DynolineError


@dataclass(frozen=True)
class Sensor:
    index: int  # 1-based position among the 21 C-MAPSS sensor columns
    name: str  # C-MAPSS symbol, as in Saxena et al. 2008, table 2
    column: str  # PostgreSQL column name
    description: str
    unit: str


SENSORS: tuple[Sensor, ...] = (
    Sensor(1, "T2", "t2", "Total temperature at fan inlet", "°R"),
    Sensor(2, "T24", "t24", "Total temperature at LPC outlet", "°R"),
    Sensor(3, "T30", "t30", "Total temperature at HPC outlet", "°R"),
    Sensor(4, "T50", "t50", "Total temperature at LPT outlet", "°R"),
    Sensor(5, "P2", "p2", "Pressure at fan inlet", "psia"),
    Sensor(6, "P15", "p15", "Total pressure in bypass-duct", "psia"),
    Sensor(7, "P30", "p30", "Total pressure at HPC outlet", "psia"),
    Sensor(8, "Nf", "nf", "Physical fan speed", "rpm"),
    Sensor(9, "Nc", "nc", "Physical core speed", "rpm"),
    Sensor(10, "epr", "epr", "Engine pressure ratio (P50/P2)", "-"),
    Sensor(11, "Ps30", "ps30", "Static pressure at HPC outlet", "psia"),
    Sensor(12, "phi", "phi", "Ratio of fuel flow to Ps30", "pps/psi"),
    Sensor(13, "NRf", "nrf", "Corrected fan speed", "rpm"),
    Sensor(14, "NRc", "nrc", "Corrected core speed", "rpm"),
    Sensor(15, "BPR", "bpr", "Bypass ratio", "-"),
    Sensor(16, "farB", "farb", "Burner fuel-air ratio", "-"),
    Sensor(17, "htBleed", "htbleed", "Bleed enthalpy", "-"),
    Sensor(18, "Nf_dmd", "nf_dmd", "Demanded fan speed", "rpm"),
    Sensor(19, "PCNfR_dmd", "pcnfr_dmd", "Demanded corrected fan speed", "rpm"),
    Sensor(20, "W31", "w31", "HPT coolant bleed", "lbm/s"),
    Sensor(21, "W32", "w32", "LPT coolant bleed", "lbm/s"),
)

SETTING_COLUMNS: tuple[str, ...] = ("setting_1", "setting_2", "setting_3")
SENSOR_COLUMNS: tuple[str, ...] = tuple(s.column for s in SENSORS)
SENSOR_NAMES: tuple[str, ...] = tuple(s.name for s in SENSORS)
KEY_COLUMNS: tuple[str, ...] = ("line", "unit_id", "cycle", "ts")
TELEMETRY_COLUMNS: tuple[str, ...] = KEY_COLUMNS + SETTING_COLUMNS + SENSOR_COLUMNS

_BY_ALIAS: dict[str, Sensor] = {}
for _s in SENSORS:
    for _alias in (_s.name, _s.column, f"sensor_{_s.index}", f"s{_s.index}"):
        _BY_ALIAS[_alias.lower()] = _s


def sensor(name: str) -> Sensor:
    """Resolve a sensor by its C-MAPSS name (case-insensitive), column, or `sensor_N`/`sN` alias."""
    found = _BY_ALIAS.get(str(name).strip().lower())
    if found is None:
        raise DynolineError(
            f"unknown sensor {name!r}: expected one of {', '.join(SENSOR_NAMES)} (or sensor_1..sensor_21)"
        )
    return found
