"""firebus gas plugin: combustible-gas detection with shut-off valve and exhaust-fan linkage.

Drivers: ``gas.modbus`` (point detectors and gas alarm controllers on Modbus,
register maps as data) and one ``gas.<profile>`` push driver per JSON payload
profile (household wireless alarms over MQTT, e.g. ``gas.household_json``).  Rules: ``gas.device_flags``,
``gas.channel_status``, ``gas.feedback`` ("valve failed to close") and
``gas.maintenance``; the two concentration levels (GB/T 50493: 25 / 50 %LEL) are
the core's generic threshold defaults, category ``gas``.  Default linkage as
data: ``default_linkage()``.  Imports only ``firebus.sdk``.  See docs/plugins/gas.md.
"""

from __future__ import annotations

from typing import Any

from firebus.sdk import Manifest, hookimpl
from firebus.sdk.channels import profile_path, resolve_profile, shipped_profiles
from firebus.sdk.modbus import ModbusProfile

from .classes import POINT_CLASSES
from .driver import PROFILE_PACKAGE, GasModbusDriver, GasOptions
from .linkage import default_linkage
from .mqtt import MQTT_DRIVERS, GasJsonDriver, driver_for, payload_profiles
from .rules import RULES, GasChannelStatusRule, GasFeedbackRule, GasFlagRule, GasMaintenanceRule

FIREBUS_MANIFEST = Manifest(
    name="gas",
    description="Combustible gas detectors and controllers (GB/T 50493, GB 16808) with valve and fan linkage",
    point_classes=("gas_lel", "valve_state", "fan_state", *POINT_CLASSES),
    transports=("modbus_tcp", "modbus_rtu", "mqtt"),
    documentation="docs/plugins/gas.md",
)


def list_profiles() -> list[str]:
    """Names of the shipped Modbus register maps (payload profiles: ``payload_profiles()``)."""
    json_names = set(payload_profiles())
    return [n for n in shipped_profiles(PROFILE_PACKAGE) if n not in json_names]


def get_profile(name_or_path: str) -> ModbusProfile:
    """A shipped Modbus profile by name, or a profile file."""
    return resolve_profile(PROFILE_PACKAGE, name_or_path)


def get_profile_file(name: str) -> str:
    return str(profile_path(PROFILE_PACKAGE, name))


@hookimpl
def firebus_register_drivers(core: Any) -> list[type]:
    return [GasModbusDriver, *MQTT_DRIVERS]


@hookimpl
def firebus_register_rules(core: Any) -> list[type]:
    return list(RULES)


@hookimpl
def firebus_register_point_classes(core: Any) -> list[str]:
    return list(POINT_CLASSES)


__all__ = [
    "FIREBUS_MANIFEST", "GasChannelStatusRule", "GasFeedbackRule", "GasFlagRule", "GasMaintenanceRule",
    "GasJsonDriver", "GasModbusDriver", "GasOptions", "default_linkage", "driver_for", "get_profile",
    "get_profile_file", "list_profiles", "payload_profiles",
]
