"""Default mapping between firebus and GB/T 26875.3 codes (checklist item 8).

Outbound (firebus as a UITD): a point's class (and unit) gives the system type,
component type and analog type it is reported as; a device's stable number and the
point's index give the component address.  Inbound (firebus as a centre): a
component type says which firebus plugin family the component belongs to and an
analog type which point class and unit its values become.  Every default here is
overridable per device in the site file (phase 2); docs/plugins/gb26875.md has the
tables.
"""

from __future__ import annotations

import msgspec

from . import tables


class Target(msgspec.Struct, frozen=True):
    system_type: int
    component_type: int


class AnalogMapping(msgspec.Struct, frozen=True):
    analog_type: int
    #: raw = round(value × factor): firebus value in its unit → Table 6 raw int16
    factor: float

    def to_raw(self, value: float) -> int:
        raw = round(value * self.factor)
        return max(-0x8000, min(0x7FFF, raw))

    def from_raw(self, raw: int) -> float:
        return raw / self.factor


FIRE_ALARM_SYSTEM = 1  # GB 50116-2013: electrical-fire and combustible-gas monitoring are part of it
HYDRANT_SYSTEM = 11

#: firebus point class → (system type, component type) reported upstream
POINT_TARGETS: dict[str, Target] = {
    "residual_current": Target(FIRE_ALARM_SYSTEM, 17),
    "temperature": Target(FIRE_ALARM_SYSTEM, 18),  # cable temperature of the leakage plugin
    "electrical_device_alarm": Target(FIRE_ALARM_SYSTEM, 16),
    "smoke": Target(FIRE_ALARM_SYSTEM, 40),
    "heat": Target(FIRE_ALARM_SYSTEM, 30),
    "gas_lel": Target(FIRE_ALARM_SYSTEM, 10),
    "co": Target(FIRE_ALARM_SYSTEM, 74),
    "flame": Target(FIRE_ALARM_SYSTEM, 78),
    "water_level": Target(HYDRANT_SYSTEM, 92),
    "pressure": Target(HYDRANT_SYSTEM, 0),  # no pressure-transmitter code in Table 5: general
    "pump_state": Target(HYDRANT_SYSTEM, 91),
    "pump_mode": Target(HYDRANT_SYSTEM, 91),
    "outlet_pressure": Target(HYDRANT_SYSTEM, 91),
}

#: (plugin, point class) pairs that mean something else in that plugin
PLUGIN_POINT_TARGETS: dict[tuple[str, str], Target] = {
    ("gas", "valve_state"): Target(FIRE_ALARM_SYSTEM, 106),  # gas shut-off solenoid valve
    ("gas", "fan_state"): Target(FIRE_ALARM_SYSTEM, 104),  # exhaust fan started by a gas alarm
    # A camera's smoke is seen, not sampled: the centre must be told it came from an image
    # detector (78), not from a point-type smoke detector (40).
    ("video", "smoke"): Target(FIRE_ALARM_SYSTEM, 78),
}

#: firebus plugin → target for points whose class is not listed above
PLUGIN_TARGETS: dict[str, Target] = {
    "leakage": Target(FIRE_ALARM_SYSTEM, 16),
    "smoke": Target(FIRE_ALARM_SYSTEM, 40),
    "gas": Target(FIRE_ALARM_SYSTEM, 10),
    "water": Target(HYDRANT_SYSTEM, 0),
    "video": Target(FIRE_ALARM_SYSTEM, 78),
}

GENERAL = Target(0, 0)

#: (point class, unit) → analog type and factor
ANALOGS: dict[tuple[str, str], AnalogMapping] = {
    ("residual_current", "mA"): AnalogMapping(tables.ANALOG_RESIDUAL_CURRENT_MA, 1.0),
    ("temperature", "°C"): AnalogMapping(3, 10.0),
    ("gas_lel", "%LEL"): AnalogMapping(6, 10.0),
    ("pressure", "MPa"): AnalogMapping(5, 10_000.0),  # 0.1 kPa resolution: MPa × 1000 kPa / 0.1
    ("pressure", "kPa"): AnalogMapping(5, 10.0),
    ("water_level", "m"): AnalogMapping(2, 100.0),
    ("outlet_pressure", "MPa"): AnalogMapping(5, 10_000.0),
    ("voltage", "V"): AnalogMapping(8, 10.0),
    ("current", "A"): AnalogMapping(9, 10.0),
}

#: where a centre rejects user-defined analog codes: residual current as current in 0.1 A
RESIDUAL_CURRENT_FALLBACK = AnalogMapping(9, 0.01)


def target_for(point_class: str, plugin: str = "") -> Target:
    return (PLUGIN_POINT_TARGETS.get((plugin, point_class)) or POINT_TARGETS.get(point_class)
            or PLUGIN_TARGETS.get(plugin) or GENERAL)


def analog_for(point_class: str, unit: str) -> AnalogMapping | None:
    return ANALOGS.get((point_class, unit))


def component_address(device_number: int, point_number: int = 1) -> int:
    """Default component address: the device's stable number (1–65535) in the first two
    bytes on the wire, the point's index in the device in the last two (like the loop /
    point split of capture M1)."""
    if not 0 <= device_number <= 0xFFFF or not 0 <= point_number <= 0xFFFF:
        raise ValueError("device and point numbers are 0 … 65535")
    return device_number | point_number << 16


# ------------------------------------------------------------------ inbound

#: component type → firebus plugin family (checklist item 8)
_FAMILIES: tuple[tuple[str, frozenset[int]], ...] = (
    ("leakage", frozenset({16, 17, 18})),
    ("gas", frozenset({10, 11, 12, 13, 74})),
    ("smoke", frozenset({40, 41, 42, 43, 44})),
    ("video", frozenset({78})),
    ("water", frozenset({91, 92, 95, 96, 97, 98, 99})),
)


def plugin_for_component(component_type: int) -> str | None:
    for family, codes in _FAMILIES:
        if component_type in codes:
            return family
    return None


#: analog type → (firebus point class, unit, factor from the engineering value of Table 6)
INBOUND_ANALOGS: dict[int, tuple[str, str, float]] = {
    2: ("water_level", "m", 1.0),
    3: ("temperature", "°C", 1.0),
    4: ("pressure", "MPa", 1.0),
    5: ("pressure", "MPa", 0.001),  # kPa → MPa, firebus' pressure unit
    6: ("gas_lel", "%LEL", 1.0),
    8: ("voltage", "V", 1.0),
    9: ("current", "A", 1.0),
    tables.ANALOG_RESIDUAL_CURRENT_MA: ("residual_current", "mA", 1.0),
}


def point_for_analog(analog_type: int, raw: int) -> tuple[str, str, float] | None:
    """(point class, unit, value) for a received analog value, None for unmapped types."""
    entry = INBOUND_ANALOGS.get(analog_type)
    spec = tables.analog_spec(analog_type)
    if entry is None or spec is None:
        return None
    point_class, unit, factor = entry
    return point_class, unit, round(raw * spec.resolution * factor, 6)
