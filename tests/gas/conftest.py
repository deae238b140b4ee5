"""Gas tests: a real core (site YAML) against the real pymodbus simulator and a real Mosquitto."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest
import yaml

import firebus.plugins.gas as gas_plugin
from firebus.core.config import load_text
from firebus.core.runtime import Core, running_core
from firebus.core.sim.modbus import ModbusSimulator, SimDevice
from firebus.plugins.gas import get_profile
from firebus.sdk.testing.mosquitto import Mosquitto
from firebus.sdk.testing.waiting import eventually as wait_until

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
    return (
        "  - key: gw\n    type: modbus_tcp\n"
        f"    options: {{host: 127.0.0.1, port: {port}, timeout: 0.5, retries: 0, reconnect_delay: 0.1, reconnect_delay_max: 0.5}}\n"
    )


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


class Rig:
    def __init__(self, core: Core, sim: ModbusSimulator | None) -> None:
        self.core = core
        self.sim = sim

    def device_id(self, key: str) -> str:
        return self.core.device_ids[key]

    def point_id(self, device_key: str, point_key: str) -> str | None:
        entry = self.core.registry.point(self.core.device_ids.get(device_key, ""), point_key)
        return entry.id if entry else None

    def state(self, device_key: str, point_key: str) -> Any:
        pid = self.point_id(device_key, point_key)
        return self.core.ingest.state(pid) if pid else None

    def value(self, device_key: str, point_key: str) -> Any:
        st = self.state(device_key, point_key)
        return st.value if st else None

    async def wait_value(self, device_key: str, point_key: str, expected: Any, timeout: float = 20.0) -> None:
        await wait_until(lambda: (st := self.state(device_key, point_key)) is not None and st.fault is None
                         and st.value == expected, timeout, f"{point_key} == {expected!r}")

    def alarms(self, *, rule: str | None = None, category: str | None = None, device_key: str | None = None,
               point_key: str | None = None, active: bool = True) -> list[Any]:
        out = []
        for alarm in self.core.alarms.open_alarms():
            if active and not alarm.active:
                continue
            if rule is not None and alarm.rule.split(":", 1)[0] != rule:
                continue
            if category is not None and str(alarm.category) != category:
                continue
            if device_key is not None and alarm.device_id != self.core.device_ids.get(device_key):
                continue
            if point_key is not None and alarm.point_id != self.point_id(device_key or "", point_key):
                continue
            out.append(alarm)
        return out

    async def polls(self, n: int = 3, unit: int | None = None) -> None:
        assert self.sim is not None
        start = self.sim.count(unit=unit)
        await wait_until(lambda: self.sim.count(unit=unit) >= start + n, what=f"{n} more polls")
        await self.core.storage.barrier()
        await anyio.sleep(0.05)


@pytest.fixture
async def make_rig(tmp_path: Path):
    """``await make_rig(units={unit: profile}, devices=..., alarms=..., behaviours=..., broker=...)``."""
    stack: list[Any] = []

    async def make(units: dict[int, str] | None = None, devices: str = "", alarms: str = "",
                   behaviours: dict[int, dict[str, Any]] | None = None, broker: Mosquitto | None = None,
                   device_cls: type[SimDevice] = SimDevice) -> Rig:
        transports = ""
        sim = None
        if units:
            sim_devices = []
            for unit, profile in units.items():
                dev = device_cls(unit, get_profile(profile))
                for key, value in (behaviours or {}).get(unit, {}).items():
                    dev.set(key, value)
                sim_devices.append(dev)
            sim = ModbusSimulator(sim_devices)
            await sim.start()
            stack.append(sim)
            transports += modbus_transport(sim.port)
        if broker is not None:
            transports += mqtt_transport(broker.port)
        text = site(tmp_path / "fb.db", transports, devices, alarms)
        cm = running_core(load_text(text, "site.yaml"), extra_plugins={"gas": gas_plugin}, autoload=False)
        core = await cm.__aenter__()
        stack.append(cm)
        return Rig(core, sim)

    yield make
    for item in reversed(stack):
        if isinstance(item, ModbusSimulator):
            await item.stop()
        else:
            await item.__aexit__(None, None, None)


@pytest.fixture
def mosquitto(tmp_path):
    broker = Mosquitto(tmp_path / "broker")
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()
