"""firebus leakage plugin: electrical-fire monitoring (电气火灾监控, GB 14287).

Residual-current and cable-temperature detectors on Modbus RTU/TCP, driven by
register-map profiles shipped as data (``profiles/*.yaml``; a vendor adds a
model by adding a file).  Registers the ``leakage.modbus`` driver and the
``leakage.device_flags`` / ``leakage.jump`` rules; the standard thresholds come
from the core's generic rules.  Imports only ``firebus.sdk``.
See docs/plugins/leakage.md.
"""

from __future__ import annotations

from typing import Any

from firebus.sdk import Manifest, hookimpl
from firebus.sdk.channels import profile_path, resolve_profile, shipped_profiles
from firebus.sdk.modbus import ModbusProfile

from .driver import PROFILE_PACKAGE, LeakageModbusDriver, LeakageOptions
from .rules import POINT_CLASSES, RULES, LeakageFlagRule, LeakageJumpRule

FIREBUS_MANIFEST = Manifest(
    name="leakage",
    description="Electrical-fire monitoring: residual current and cable temperature detectors (GB 14287)",
    point_classes=("residual_current", "temperature", *POINT_CLASSES),
    transports=("modbus_tcp", "modbus_rtu"),
    documentation="docs/plugins/leakage.md",
)


def list_profiles() -> list[str]:
    """Names of the shipped register maps."""
    return shipped_profiles(PROFILE_PACKAGE)


def get_profile(name_or_path: str) -> ModbusProfile:
    """A shipped profile by name, or a profile file (simulators and tools use this too)."""
    return resolve_profile(PROFILE_PACKAGE, name_or_path)


def get_profile_file(name: str) -> str:
    """Path of a shipped profile file (for ``firebus sim modbus --profile``)."""
    return str(profile_path(PROFILE_PACKAGE, name))


@hookimpl
def firebus_register_drivers(core: Any) -> list[type]:
    return [LeakageModbusDriver]


@hookimpl
def firebus_register_rules(core: Any) -> list[type]:
    return list(RULES)


@hookimpl
def firebus_register_point_classes(core: Any) -> list[str]:
    return list(POINT_CLASSES)


__all__ = [
    "FIREBUS_MANIFEST", "LeakageFlagRule", "LeakageJumpRule", "LeakageModbusDriver", "LeakageOptions",
    "get_profile", "get_profile_file", "list_profiles",
]
