"""Water plugin fixtures: a real core with the water plugin, real pymodbus simulators, a real Mosquitto."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

import firebus.plugins.smoke as smoke_plugin
import firebus.plugins.water as water_plugin
from firebus.core.sim.modbus import ModbusSimulator
from firebus.sdk.modbus import load_profile_resource
from firebus.sdk.testing.harness import start_core as sdk_start_core
from firebus.sdk.testing.mosquitto import Mosquitto
from firebus.sdk.testing.recorder import EventRecorder
from firebus.sdk.testing.waiting import eventually as wait_until

PROFILES = "firebus.plugins.water.profiles"


def profile(name: str):
    return load_profile_resource(PROFILES, f"{name}.yaml")


@pytest.fixture
def broker(firebus_mosquitto: Mosquitto) -> Mosquitto:
    """The SDK's broker fixture, under the name these tests use."""
    return firebus_mosquitto


@pytest.fixture
async def modbus():
    sim = ModbusSimulator(port=0)
    await sim.start()
    try:
        yield sim
    finally:
        await sim.stop()


def site(db: Path, *, modbus_port: int | None = None, modbus_timeout: float = 2.0, mqtt_port: int | None = None,
         devices: list[dict[str, Any]] = (), alarms: dict[str, Any] | None = None) -> str:
    transports = []
    if modbus_port is not None:
        transports.append({"key": "gw", "type": "modbus_tcp",
                           "options": {"host": "127.0.0.1", "port": modbus_port, "timeout": modbus_timeout,
                                       "retries": 0}})
    if mqtt_port is not None:
        transports.append({"key": "mq", "type": "mqtt", "options": {"port": mqtt_port, "client_id": f"fb-{mqtt_port}"}})
    doc: dict[str, Any] = {
        "storage": {"path": str(db)},
        "units": [
            {"key": "u1", "name": "Plant", "buildings": [{"key": "b1", "floors": [{"key": "f1", "locations": [
                {"key": "pump-room", "name": "Pump room"}, {"key": "roof", "name": "Roof tank"},
                {"key": "yard", "name": "Yard"}, {"key": "office", "name": "Office"}]}]}]},
            {"key": "u2", "name": "Street", "buildings": [{"key": "b2", "floors": [{"key": "f2", "locations": [
                {"key": "street", "name": "Main street"}]}]}]},
        ],
        "transports": transports,
        "devices": list(devices),
    }
    if alarms is not None:
        doc["alarms"] = alarms
    return yaml.safe_dump(doc, allow_unicode=True, sort_keys=False)


def start_core(tmp_path: Path, clock: Any = None, recorder: EventRecorder | None = None, **kw: Any):
    """The SDK's ``start_core`` on ``site(**kw)``; ``recorder`` (``firebus_recorder``) sees every event."""
    return sdk_start_core(site(tmp_path / "fb.db", **kw), plugins={"water": water_plugin, "smoke": smoke_plugin},
                          clock=clock, recorder=recorder)


def value_of(core: Any, device_key: str, point_key: str) -> Any:
    device_id = core.device_ids.get(device_key)
    point = core.registry.point(device_id, point_key) if device_id else None
    state = core.ingest.state(point.id) if point else None
    if state is None:
        return None
    return ("fault", state.fault) if state.fault else state.value


def point_id(core: Any, device_key: str, point_key: str) -> str:
    return core.registry.point(core.device_ids[device_key], point_key).id


async def wait_value(core: Any, device_key: str, point_key: str, expected: Any, timeout: float = 20.0) -> None:
    def ok() -> bool:
        got = value_of(core, device_key, point_key)
        if isinstance(expected, float) and isinstance(got, (int, float)):
            return abs(got - expected) < 1e-6
        return got == expected

    try:
        await wait_until(ok, timeout)
    except TimeoutError:
        raise AssertionError(f"{device_key}.{point_key}: wanted {expected!r}, have {value_of(core, device_key, point_key)!r}") from None
