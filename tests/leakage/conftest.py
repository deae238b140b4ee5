"""Leakage tests: a real core (site YAML) polling the real pymodbus simulator on a free port."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest

from firebus.core.config import load_text
from firebus.core.runtime import Core, running_core
from firebus.core.sim.modbus import ModbusSimulator, SimDevice
import firebus.plugins.leakage as leakage_plugin
from firebus.plugins.leakage import get_profile
from firebus.sdk.testing.waiting import eventually as wait_until

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
        f"  - key: gw\n    type: modbus_tcp\n"
        f"    options: {{host: 127.0.0.1, port: {port}, timeout: 0.5, retries: 0, reconnect_delay: 0.1, reconnect_delay_max: 0.5}}\n"
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


class Rig:
    """A running core with one simulator; helpers to read points and alarms."""

    def __init__(self, core: Core, sim: ModbusSimulator) -> None:
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

    def alarms(self, *, rule: str | None = None, category: str | None = None, active: bool = True,
               point_key: str | None = None, device_key: str | None = None) -> list[Any]:
        out = []
        for alarm in self.core.alarms.open_alarms():
            if active and not alarm.active:
                continue
            if rule is not None and alarm.rule.split(":", 1)[0] != rule:
                continue
            if category is not None and str(alarm.category) != category:
                continue
            if point_key is not None:
                pid = self.point_id(device_key or "", point_key) if device_key else None
                if pid is None:
                    info = self.core.registry.point_info(alarm.point_id or "")
                    if info is None or info.key != point_key:
                        continue
                elif alarm.point_id != pid:
                    continue
            out.append(alarm)
        return out

    async def polls(self, n: int = 3, unit: int | None = None) -> None:
        """Wait until the simulator has answered ``n`` more reads (new values have been seen)."""
        start = self.sim.count(unit=unit)
        await wait_until(lambda: self.sim.count(unit=unit) >= start + n, what=f"{n} more polls")
        await self.core.storage.barrier()
        await anyio.sleep(0.05)  # let the engine handle the last StateChanged


@pytest.fixture
async def make_rig(tmp_path: Path):
    """``await make_rig({unit: profile_name}, devices_yaml, alarms_yaml)`` → a ``Rig``."""
    stack: list[Any] = []

    async def make(units: dict[int, str], devices: str, alarms: str = "",
                   behaviours: dict[int, dict[str, Any]] | None = None,
                   device_cls: type[SimDevice] = SimDevice) -> Rig:
        sim_devices = []
        for unit, profile in units.items():
            dev = device_cls(unit, get_profile(profile))
            for key, value in (behaviours or {}).get(unit, {}).items():
                dev.set(key, value)
            sim_devices.append(dev)
        sim = ModbusSimulator(sim_devices)
        await sim.start()
        stack.append(sim)
        text = site(tmp_path / "fb.db", sim.port, devices, alarms)
        cm = running_core(load_text(text, "site.yaml"), extra_plugins={"leakage": leakage_plugin}, autoload=False)
        core = await cm.__aenter__()
        stack.append(cm)
        return Rig(core, sim)

    yield make
    for item in reversed(stack):
        if isinstance(item, ModbusSimulator):
            await item.stop()
        else:
            await item.__aexit__(None, None, None)
