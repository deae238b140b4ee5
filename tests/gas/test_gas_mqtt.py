"""Household wireless gas alarms: JSON over a real Mosquitto, valve command published back."""

from __future__ import annotations

import json
import threading

import anyio
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from firebus.sdk import Severity
from firebus.sdk.testing.waiting import eventually as wait_until

from .conftest import alarms_yaml, mqtt_device

pytestmark = pytest.mark.anyio


class Field:
    """The devices' side of the broker: publishes reports, records commands sent to them."""

    def __init__(self, broker) -> None:
        self.commands: list[tuple[str, dict]] = []
        self.lock = threading.Lock()
        self.client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id="field",
                                  protocol=mqtt.MQTTv5)
        self.client.on_message = self._on_message
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()
        self.client.subscribe("home-gas/+/down", qos=1)

    def _on_message(self, client, userdata, msg) -> None:
        with self.lock:
            self.commands.append((msg.topic, json.loads(msg.payload)))

    def report(self, serial: str, body: dict | bytes) -> None:
        payload = body if isinstance(body, bytes) else json.dumps({"devId": serial, **body})
        info = self.client.publish(f"home-gas/{serial}/up", payload, qos=1)
        info.wait_for_publish(timeout=10)
        assert info.is_published()

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


@pytest.fixture
def field(firebus_mosquitto):
    f = Field(firebus_mosquitto)
    yield f
    f.close()


async def test_household_alarm_levels_valve_linkage_and_faults(make_rig, firebus_mosquitto, field) -> None:
    rig = await make_rig(
        devices=mqtt_device("flat_301", "GS-301") + mqtt_device("flat_302", "GS-302", location="boiler_room"),
        alarms=alarms_yaml(feedback_timeout=1.5),
        broker=firebus_mosquitto,
    )

    async def report(serial: str, **data) -> None:
        await anyio.to_thread.run_sync(field.report, serial, {"ts": 1_800_000_000_000, "data": data})

    # The core subscribes once connected; until the broker has the subscription a QoS 1
    # message to the topic has no receiver.  Repeat the (idempotent) first report until seen.
    await rig.core.transports["broker"].wait_connected()
    with anyio.fail_after(30):
        while rig.value("flat_301", "gas_lel") != 3.5:
            await report("GS-301", lel=3.5, status=0, valve=0, bat=87, life=1460)
            with anyio.move_on_after(0.5):
                await rig.wait_value("flat_301", "gas_lel", 3.5)
    assert rig.value("flat_301", "valve_closed") is False
    assert rig.value("flat_301", "battery") == 87
    # Boundaries of the platform levels on a pushed value.
    await report("GS-301", lel=24.9)
    await rig.wait_value("flat_301", "gas_lel", 24.9)
    assert rig.alarms(category="gas") == []
    await report("GS-301", lel=25.0, status=1)
    await wait_until(lambda: rig.alarms(category="gas", rule="threshold"))
    assert "valve_close" not in json.dumps(field.commands)
    await report("GS-301", lel=50.0, status=2)
    await wait_until(lambda: rig.alarms(category="gas", rule="threshold")[0].severity == Severity.FIRE)
    # The default linkage publishes the close command to the alarm's own device.
    await wait_until(lambda: field.commands)
    assert field.commands[0] == ("home-gas/GS-301/down", {"cmd": "valve", "value": "close"})
    await report("GS-301", valve=1)  # the manipulator turned the valve
    await rig.wait_value("flat_301", "valve_closed", True)
    # No feedback fault on the valve; the household alarm has no fan: that action failed, recorded.
    alarm = rig.alarms(category="gas", rule="threshold")[0]
    with anyio.fail_after(20):
        while True:
            by_point = {r.action["point_key"]: r for r in await rig.core.alarms.linkage_log(alarm.id)}
            if len(by_point) == 2 and all(r.ok is not None for r in by_point.values()):
                break
            await anyio.sleep(0.05)
    assert by_point["valve_close"].ok is True
    assert by_point["fan_start"].ok is False and "no command 'fan_start'" in by_point["fan_start"].error

    # Flat 302: the valve never reports closed → "valve failed to close".
    await report("GS-302", lel=62.0, status=2, valve=0)
    (fault,) = await wait_until(lambda: rig.alarms(rule="gas.feedback", device_key="flat_302"), timeout=30)
    assert "valve failed to close" in fault.message
    assert rig.alarms(rule="gas.feedback", device_key="flat_301") == []

    # Sensor fault status: the concentration in the same message is a fault, not a value.
    await report("GS-301", lel=0.0, status=3)
    await wait_until(lambda: (st := rig.state("flat_301", "gas_lel")) is not None and st.fault == "sensor_fault")
    (sensor,) = await wait_until(lambda: rig.alarms(rule="gas.device_flags", category="fault", device_key="flat_301"))
    assert "gas sensor fault" in sensor.message and "Kitchen 2" in sensor.message

    # A payload that is not a report is kept in quarantine with the reason, never dropped.
    quarantined = rig.core.quarantined
    await anyio.to_thread.run_sync(field.report, "GS-301", b"\x00garbage")
    await anyio.to_thread.run_sync(field.report, "GS-301", json.dumps({"data": {"lel": 1}}).encode())
    await wait_until(lambda: rig.core.quarantined >= quarantined + 2)
    await rig.core.storage.barrier()
    rows = await rig.core.storage.fetchall("SELECT reason FROM quarantine")
    reasons = " ".join(r[0] for r in rows)
    assert "not JSON" in reasons and "no device identity" in reasons
