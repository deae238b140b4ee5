"""Water-supply drivers: level and pressure transmitters and pump controllers over Modbus, hydrant monitors over MQTT.

Register maps and the hydrant payload are data (``profiles/``); the code here only
adds what a register map cannot say: the tank a level transmitter sits in.
"""

from __future__ import annotations

from typing import ClassVar

import msgspec

from firebus.sdk import PointSpec, Reading
from firebus.sdk.jsonmap import load_profile_resource as load_json_profile
from firebus.sdk.jsonmap import make_driver
from firebus.sdk.modbus import ModbusDeviceOptions, ModbusProfileDriver, load_profile_resource

from .tank import TankOptions, tank_state

PROFILES = "firebus.plugins.water.profiles"


class LevelDriver(ModbusProfileDriver):
    """Fire pool / roof tank level: the transmitter's metres plus volume, percent and endurance.

    The derived points share the level's fate: a faulty level (open circuit) makes
    them faulty too, never zero.
    """

    type_key: ClassVar[str] = "water.level"
    Options: ClassVar[type[msgspec.Struct]] = TankOptions
    profile = load_profile_resource(PROFILES, "level_transmitter.yaml")
    poll_interval: ClassVar[float] = 10.0
    level_key: ClassVar[str] = "level"

    def points(self) -> list[PointSpec]:
        specs = super().points()
        specs += [
            PointSpec(key="volume", point_class="water_volume", unit="m³", name="usable water"),
            PointSpec(key="level_percent", point_class="water_level_percent", unit="%", name="tank full"),
        ]
        if self.options.rated_flow_l_s:  # type: ignore[attr-defined]
            specs.append(PointSpec(key="endurance", point_class="water_endurance", unit="min",
                                   name=f"lasts at {self.options.rated_flow_l_s:g} L/s"))  # type: ignore[attr-defined]
        return specs

    async def poll(self) -> list[Reading]:
        readings = await super().poll()
        level = next((r for r in readings if r.point_key == self.level_key), None)
        if level is None:
            return readings
        opts: TankOptions = self.options  # type: ignore[assignment]
        keys = ["volume", "level_percent"] + (["endurance"] if opts.rated_flow_l_s else [])
        if level.fault is not None or not isinstance(level.value, (int, float)):
            return readings + [Reading(point_key=k, value=None, fault=level.fault or "no level") for k in keys]
        state = tank_state(opts, float(level.value))
        derived = {"volume": state.usable_m3, "level_percent": state.percent, "endurance": state.endurance_min}
        return readings + [Reading(point_key=k, value=derived[k]) for k in keys]


class PressureDriver(ModbusProfileDriver):
    """Hydrant / sprinkler pipe-network pressure transmitter (MPa)."""

    type_key: ClassVar[str] = "water.pressure"
    Options: ClassVar[type[msgspec.Struct]] = ModbusDeviceOptions
    profile = load_profile_resource(PROFILES, "pressure_transmitter.yaml")
    poll_interval: ClassVar[float] = 5.0


class PumpDriver(ModbusProfileDriver):
    """Fire-pump control cabinet: running, fault, power, mode, start/stop."""

    type_key: ClassVar[str] = "water.pump"
    Options: ClassVar[type[msgspec.Struct]] = ModbusDeviceOptions
    profile = load_profile_resource(PROFILES, "pump_controller.yaml")
    poll_interval: ClassVar[float] = 2.0


HYDRANT_PROFILE = load_json_profile(PROFILES, "hydrant_generic.yaml")
HydrantDriver = make_driver(HYDRANT_PROFILE, "water.hydrant")

DRIVERS: list[type] = [LevelDriver, PressureDriver, PumpDriver, HydrantDriver]
