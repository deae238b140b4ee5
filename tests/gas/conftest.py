"""Gas tests: a real core (site YAML) against the real pymodbus simulator and a real Mosquitto (the SDK's
rig and broker fixtures)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

import firebus.plugins.gas as gas_plugin
from firebus.core.sim.modbus import SimDevice
from firebus.plugins.gas import get_profile
from firebus.sdk.testing.harness import modbus_transport_yaml
from firebus.sdk.testing.mosquitto import Mosquitto
from firebus.sdk.testing.rig import Rig

PLACES = """
units:
  - key: hotel
    name: Lakeside Hotel
    buildings:
      - key: main
        name: Main building
        floors:
          - key: f1
            name: 1F
            locations:
              - {key: kitchen_2, name: Kitchen 2, kind: kitchen}
              - {key: boiler_room, name: Boiler room, kind: boiler room}
"""

#: fast feedback deadline for tests (production default 60 s)
FAST_FEEDBACK = {"rules": [{"key": "gas.feedback", "type": "gas.feedback", "options": {"timeout": 1.5}}]}


def alarms_yaml(linkage: bool = True, feedback_timeout: float | None = 1.5) -> str:
    section: dict[str, Any] = {}
    if feedback_timeout is not None:
        section["rules"] = [{"key": "gas.feedback", "type": "gas.feedback", "options": {"timeout": feedback_timeout}}]
    if linkage:
        section["linkage"] = gas_plugin.default_linkage()
    return yaml.safe_dump({"alarms": section}, sort_keys=False) if section else ""


def site(db: Path, transports: str, devices: str, alarms: str = "") -> str:
    return f"storage: {{path: {db}}}\n" + PLACES + "transports:\n" + transports + "devices:\n" + devices + alarms


def modbus_transport(port: int) -> str:
    return modbus_transport_yaml("gw", port)


def mqtt_transport(port: int) -> str:
    return f"  - key: broker\n    type: mqtt\n    options: {{host: 127.0.0.1, port: {port}, client_id: firebus-gas-test}}\n"


def modbus_device(key: str, unit: int, profile: str = "point_detector", location: str = "kitchen_2", **options: Any) -> str:
    opts = {"unit": unit, "profile": profile, "poll_interval": 0.1, **options}
    return (
        f"  - key: {key}\n    driver: gas.modbus\n    transport: gw\n    location: {location}\n"
        f"    options: {yaml.safe_dump(opts, default_flow_style=True).strip()}\n"
    )


def mqtt_device(key: str, serial: str, location: str = "kitchen_2") -> str:
    return (
        f"  - key: {key}\n    driver: gas.household_json\n    transport: broker\n    location: {location}\n"
        f"    identifiers: {{serial: {serial}}}\n"
    )


@pytest.fixture
def make_rig(firebus_rig: Any, tmp_path: Path):
    """``await make_rig(units={unit: profile}, devices=..., alarms=..., behaviours=..., broker=...)`` → the
    SDK's ``Rig``; an MQTT transport ``broker`` when a broker is given."""

    async def make(units: dict[int, str] | None = None, devices: str = "", alarms: str = "",
                   behaviours: dict[int, dict[str, Any]] | None = None, broker: Mosquitto | None = None,
                   device_cls: type[SimDevice] = SimDevice) -> Rig:
        def text(port: int | None) -> str:
            transports = modbus_transport(port) if port is not None else ""
            if broker is not None:
                transports += mqtt_transport(broker.port)
            return site(tmp_path / "fb.db", transports, devices, alarms)

        return await firebus_rig(text, plugins={"gas": gas_plugin},
                                 modbus={unit: get_profile(name) for unit, name in (units or {}).items()},
                                 values=behaviours, device_cls=device_cls)

    return make
