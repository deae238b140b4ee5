"""Wireless hydrant monitors over real MQTT: position into the registry, misuse, impact, tilt, pressure."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anyio
import pytest

from firebus.plugins.water.sim import HydrantFleet, HydrantMonitor
from firebus.sdk import AlarmEvent

from .conftest import point_id, start_core, value_of, wait_until, wait_value

pytestmark = pytest.mark.anyio

SMOKE_IMEI = "861234567890123"


async def ready(core: Any) -> None:
    hub = core.transports["mq"]
    await hub.wait_connected(20)
    await hub.publish("firebus-test/probe", b"probe", qos=1)  # after our SUBSCRIBE: subscriptions are active


def smoke_message(smoke: bool) -> bytes:
    return json.dumps({"v": 1, "imei": SMOKE_IMEI, "seq": 1, "ts": 1.8e9, "event": "alarm" if smoke else "clear",
                       "state": {"smoke": smoke, "fault": False, "low_battery": False, "tamper": False},
                       "battery": 90, "rsrp": -90, "heartbeat_s": 3600}).encode()


async def test_hydrants_position_misuse_impact_tilt_and_pressure(firebus_recorder, tmp_path: Path, broker) -> None:
    monitors = [
        HydrantMonitor("HY-0001", 31.230416, 121.473701, pressure=0.30),
        HydrantMonitor("HY-0002", 31.231002, 121.474950, pressure=0.30),
        HydrantMonitor("HY-0003", 31.228500, 121.470100, pressure=0.30),
        HydrantMonitor("HY-9999", 31.240000, 121.480000),  # not in the site file
    ]
    devices = [
        {"key": "hy-1", "driver": "water.hydrant", "transport": "mq", "location": "yard", "identifiers": {"serial": "HY-0001"}},
        {"key": "hy-2", "driver": "water.hydrant", "transport": "mq", "location": "yard", "identifiers": {"serial": "HY-0002"}},
        {"key": "hy-3", "driver": "water.hydrant", "transport": "mq", "location": "street", "identifiers": {"serial": "HY-0003"}},
        {"key": "smoke-office", "driver": "smoke.generic", "transport": "mq", "location": "office",
         "identifiers": {"imei": SMOKE_IMEI}},
    ]
    async with start_core(tmp_path, mqtt_port=broker.port, devices=devices, recorder=firebus_recorder) as core:
        log = firebus_recorder
        await ready(core)
        with HydrantFleet(monitors, port=broker.port) as fleet:
            async def send(serial: str, event: str = "heartbeat", value: Any = None) -> None:
                await anyio.to_thread.run_sync(fleet.send, serial, event, value)

            for m in monitors:
                await send(m.serial)
            # Position: two numeric points per hydrant, in the registry and in the current state.
            for key, m in (("hy-1", monitors[0]), ("hy-3", monitors[2])):
                await wait_value(core, key, "latitude", m.lat)
                assert value_of(core, key, "longitude") == m.lon
                lat = core.registry.point_info(point_id(core, key, "latitude"))
                assert (lat.point_class, lat.unit) == ("latitude", "°")
            def stranger_lat() -> float | None:
                found = core.registry.find_device({"serial": "HY-9999"})
                point = core.registry.point(found.id, "latitude") if found else None
                state = core.ingest.state(point.id) if point else None
                return state.value if state else None

            await wait_until(lambda: stranger_lat() is not None)
            assert stranger_lat() == 31.24  # not configured: discovered, still on the map
            assert core.registry.find_device({"serial": "HY-9999"}).discovered

            hy1 = core.device_ids["hy-1"]
            # Opened with no fire alarm anywhere in the unit: misuse.
            await send("HY-0001", "open")
            misuse = await log.wait_for(AlarmEvent, rule="hydrant_misuse:misuse", transition="new", device_id=hy1)
            assert misuse.category == "supervisory" and "no fire alarm" in misuse.message
            await send("HY-0001", "close", 900.0)
            await log.wait_for(AlarmEvent, rule="hydrant_misuse:misuse", transition="cleared", device_id=hy1)
            await wait_value(core, "hy-1", "water_used", 900.0)

            # A detector of the same unit is in alarm: opening a hydrant is firefighting.
            await anyio.to_thread.run_sync(_publish, broker.port, f"firebus/smoke/{SMOKE_IMEI}/up", smoke_message(True))
            await log.wait_for(AlarmEvent, rule="two_detector:single", transition="new")
            hy2 = core.device_ids["hy-2"]
            await send("HY-0002", "open")
            await send("HY-0002", "knock")  # processed after the opening: a barrier for "no misuse"
            knock = await log.wait_for(AlarmEvent, rule="water_status:knock", transition="new", device_id=hy2)
            assert "impact" in knock.message
            assert value_of(core, "hy-2", "opened") == 1
            assert not log.of(AlarmEvent, rule="hydrant_misuse:misuse", device_id=hy2)

            # Another unit's fire does not make a street hydrant's opening legitimate.
            hy3 = core.device_ids["hy-3"]
            await send("HY-0003", "open")
            await log.wait_for(AlarmEvent, rule="hydrant_misuse:misuse", transition="new", device_id=hy3)

            # Knocked over: tilt past 15°.
            await send("HY-0003", "tilt", 14.2)  # 95 % of 15°
            await wait_value(core, "hy-3", "tilt", 14.2)
            await send("HY-0003", "tilt", 40.0)
            tilted = await log.wait_for(AlarmEvent, rule="water_threshold", transition="new", device_id=hy3)
            assert tilted.category == "fault" and tilted.value == 40.0

            # Municipal hydrant pressure, GB 50974 7.2.8: ≥ 0.14 MPa.
            await send("HY-0001", "pressure", 0.147)  # 105 %
            await wait_value(core, "hy-1", "pressure", 0.147)
            await send("HY-0001", "pressure", 0.133)  # 95 %
            low = await log.wait_for(AlarmEvent, rule="water_threshold", transition="new", device_id=hy1)
            assert low.value == 0.133 and "0.14MPa" in low.message


def _publish(port: int, topic: str, payload: bytes) -> None:
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id="smoke-pub")
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        client.publish(topic, payload, qos=1).wait_for_publish(10)
    finally:
        client.disconnect()
        client.loop_stop()


async def test_hydrant_monitor_goes_offline_after_its_reported_heartbeat(firebus_recorder, tmp_path: Path, broker) -> None:
    monitor = HydrantMonitor("HY-0100", 31.2, 121.4, heartbeat_s=1)
    devices = [{"key": "hy", "driver": "water.hydrant", "transport": "mq", "location": "street",
                "identifiers": {"serial": "HY-0100"}}]
    async with start_core(tmp_path, mqtt_port=broker.port, devices=devices, recorder=firebus_recorder) as core:
        log = firebus_recorder
        await ready(core)
        with HydrantFleet([monitor], port=broker.port) as fleet:
            await anyio.to_thread.run_sync(fleet.send, "HY-0100")
            offline = await log.wait_for(AlarmEvent, rule="water_offline", transition="new")
            assert offline.category == "offline" and "expected every 1 s" in offline.message
            await anyio.to_thread.run_sync(fleet.send, "HY-0100")
            await log.wait_for(AlarmEvent, rule="water_offline", transition="cleared")
