"""Leakage tests: a real core (site YAML) polling the real pymodbus simulator on a free port (the SDK's rig)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from firebus.core.sim.modbus import SimDevice
import firebus.plugins.leakage as leakage_plugin
from firebus.plugins.leakage import get_profile
from firebus.sdk.testing.harness import modbus_transport_yaml
from firebus.sdk.testing.rig import Rig

PLACES = """
units:
  - key: plaza
    name: Riverside Plaza
    buildings:
      - key: tower
        name: Tower A
        floors:
          - key: b1
            name: B1
            locations:
              - {key: switch_room, name: B1 switch room, kind: switch room}
"""


def site(db: Path, port: int, devices: str, alarms: str = "") -> str:
    return (
        f"storage: {{path: {db}}}\n"
        + PLACES
        + "transports:\n"
        + modbus_transport_yaml("gw", port)
        + "devices:\n"
        + devices
        + alarms
    )


def device_yaml(key: str, unit: int, profile: str, circuits: dict[str, str] | None = None, name: str = "") -> str:
    circ = ""
    if circuits:
        circ = ", circuits: {" + ", ".join(f"{k}: '{v}'" for k, v in circuits.items()) + "}"
    return (
        f"  - key: {key}\n    driver: leakage.modbus\n    transport: gw\n    location: switch_room\n"
        f"    name: '{name or key}'\n"
        f"    options: {{unit: {unit}, profile: {profile}, poll_interval: 0.1{circ}}}\n"
    )


@pytest.fixture
def make_rig(firebus_rig: Any, tmp_path: Path):
    """``await make_rig({unit: profile_name}, devices_yaml, alarms_yaml)`` → the SDK's ``Rig``."""

    async def make(units: dict[int, str], devices: str, alarms: str = "",
                   behaviours: dict[int, dict[str, Any]] | None = None,
                   device_cls: type[SimDevice] = SimDevice) -> Rig:
        return await firebus_rig(lambda port: site(tmp_path / "fb.db", port, devices, alarms),
                                 plugins={"leakage": leakage_plugin},
                                 modbus={unit: get_profile(name) for unit, name in units.items()},
                                 values=behaviours, device_cls=device_cls)

    return make
