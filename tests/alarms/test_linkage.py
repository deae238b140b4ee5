"""Linkage: a gas alarm closes the valve on a real pymodbus server; failures are recorded."""

import socket

import anyio
import pytest
from pymodbus.client import AsyncModbusTcpClient
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from firebus.core.alarms import AlarmConfig, LinkageRule, Match, MqttPublish, Snapshot, WritePoint
from firebus.sdk import AlarmCategory, AlarmTransition

from .harness import running
from .points import gas

pytestmark = pytest.mark.anyio

VALVE_REGISTER = {"valve_close": 10, "fan_start": 11}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ValveController:
    """A real Modbus TCP server standing in for a gas valve / fan controller."""

    def __init__(self) -> None:
        self.port = free_port()
        self.writes: list[tuple[int, int, list[int]]] = []

    async def _action(self, fc, start, address, count, registers, set_values):
        if set_values is not None:
            self.writes.append((fc, address, list(set_values)))
        return None

    async def __aenter__(self):
        device = SimDevice(
            id=1, simdata=[SimData(0, count=64, values=0, datatype=DataType.REGISTERS)], action=self._action
        )
        self.server = ModbusTcpServer(device, address=("127.0.0.1", self.port))
        await self.server.serve_forever(background=True)
        return self

    async def __aexit__(self, *exc):
        await self.server.shutdown()


def modbus_writer(port: int):
    """``core.write_point`` for the test core: a real pymodbus client write."""

    async def write(device_id, point_key, value, context):
        client = AsyncModbusTcpClient("127.0.0.1", port=port, timeout=2, retries=0)
        try:
            if not await client.connect():
                raise ConnectionError(f"cannot reach {device_id} at 127.0.0.1:{port}")
            response = await client.write_register(VALVE_REGISTER[point_key], int(value), device_id=1)
            if response.isError():
                raise IOError(f"device answered {response}")
        finally:
            client.close()

    return write


LINKAGE = [
    LinkageRule(
        name="gas-shutoff",
        when=Match(categories=[AlarmCategory.GAS]),
        actions=[WritePoint(point_key="valve_close", value=1), WritePoint(point_key="fan_start", value=1)],
    ),
    LinkageRule(
        name="bms",
        when=Match(categories=[AlarmCategory.GAS], transitions=[AlarmTransition.NEW, AlarmTransition.CLEARED]),
        actions=[MqttPublish(topic="bms/{unit_id}/alarm/{category}"), Snapshot(camera="kitchen-cam")],
    ),
]


async def test_gas_alarm_closes_the_valve_on_a_real_modbus_device(tmp_path):
    async def broken_camera(action, alarm, context):
        raise RuntimeError("camera refused the connection")

    async with ValveController() as valve:
        config = AlarmConfig(linkage=LINKAGE)
        async with running(
            tmp_path / "db.sqlite", [gas()], config=config, write_impl=modbus_writer(valve.port),
            handlers={"snapshot": broken_camera},
        ) as h:
            reading = await h.value("gas1", 30.0)
            [new] = h.alarm_events("new")
            await h.wait_for(lambda: len(valve.writes) == 2)
            assert sorted(valve.writes) == [(6, 10, [1]), (6, 11, [1])]  # FC06 seen by the device

            with anyio.fail_after(20):
                while True:
                    records = await h.engine.linkage_log(new.alarm_id)
                    if len(records) == 4 and all(r.ok is not None for r in records):
                        break
                    await anyio.sleep(0.02)
            by_kind = {r.action["type"] + ":" + r.action.get("point_key", ""): r for r in records}
            assert by_kind["write_point:valve_close"].ok and by_kind["write_point:fan_start"].ok
            mqtt = by_kind["mqtt_publish:"]
            assert mqtt.ok is False and "no handler for 'mqtt_publish'" in mqtt.error
            snap = by_kind["snapshot:"]
            assert snap.ok is False and "camera refused" in snap.error

            # context chain: reading → alarm → action → the write the driver received
            new_event = next(e for e in h.events if e.data.transition == "new")
            assert new_event.context.parent_id == reading.ref  # a state change is known by its seq
            assert all(r.parent_id == new_event.context.id for r in records)
            device_id, key, value, ctx = h.core.writes[0]
            assert device_id == "gd1" and ctx.parent_id == new_event.context.id
            assert ctx.id in {r.context_id for r in records}

            # failures never stop the engine: the alarm clears and more linkage runs
            await h.value("gas1", 5.0)
            assert h.alarm_events("cleared")


async def test_unreachable_device_is_recorded_as_a_failed_action(tmp_path):
    config = AlarmConfig(linkage=LINKAGE[:1])
    async with running(tmp_path / "db.sqlite", [gas()], config=config, write_impl=modbus_writer(free_port())) as h:
        await h.value("gas1", 30.0)
        [new] = h.alarm_events("new")
        with anyio.fail_after(20):
            while True:
                records = await h.engine.linkage_log(new.alarm_id)
                if len(records) == 2 and all(r.ok is not None for r in records):
                    break
                await anyio.sleep(0.02)
        assert all(r.ok is False and "cannot reach gd1" in r.error for r in records)
        assert h.engine.metrics()["linkage"]["failed"] == 2
        await h.value("gas1", 60.0)  # the engine carries on
        assert h.alarm_events("update")


async def test_pending_action_is_run_again_after_a_crash(tmp_path):
    db = tmp_path / "db.sqlite"
    gate = anyio.Event()

    async def stuck(action, alarm, context):
        await gate.wait()  # never released: the process "dies" mid-action

    calls = []

    async def snapshot(action, alarm, context):
        calls.append((action.camera, alarm.id, context.parent_id))

    config = AlarmConfig(linkage=[LinkageRule(name="cam", when=Match(), actions=[Snapshot(camera="c1")])])
    async with running(db, [gas()], config=config, handlers={"snapshot": stuck}, graceful=False) as h:
        await h.value("gas1", 30.0)
        [new] = h.alarm_events("new")
        [record] = await h.engine.linkage_log(new.alarm_id)
        assert record.ok is None
    async with running(db, [gas()], config=config, handlers={"snapshot": snapshot}) as h:
        await h.wait_for(lambda: calls)
        with anyio.fail_after(20):
            while (await h.engine.linkage_log(new.alarm_id))[0].ok is None:
                await anyio.sleep(0.02)
        [record] = await h.engine.linkage_log(new.alarm_id)
        assert record.ok and record.attempts == 1 and calls == [("c1", new.alarm_id, record.parent_id)]


async def test_mqtt_publish_action_reaches_a_real_mosquitto(tmp_path):
    import json
    import subprocess

    from paho.mqtt import publish as mqtt_publish
    from paho.mqtt import subscribe as mqtt_subscribe

    from firebus.core.alarms import make_mqtt_publish_handler

    port = free_port()
    conf = tmp_path / "mosquitto.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n")
    broker = subprocess.Popen(["/usr/sbin/mosquitto", "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        with anyio.fail_after(20):
            while True:
                try:
                    with socket.create_connection(("127.0.0.1", port), timeout=1):
                        break
                except OSError:
                    assert broker.poll() is None, broker.stderr.read()
                    await anyio.sleep(0.05)

        async def publish(topic, payload, qos, retain):
            await anyio.to_thread.run_sync(
                lambda: mqtt_publish.single(topic, payload, qos=qos, retain=retain, hostname="127.0.0.1", port=port)
            )

        rule = LinkageRule(
            name="bms",
            when=Match(categories=[AlarmCategory.GAS]),
            actions=[MqttPublish(topic="bms/{unit_id}/{category}", retain=True)],
        )
        config = AlarmConfig(linkage=[rule])
        handlers = {"mqtt_publish": make_mqtt_publish_handler(publish)}
        async with running(tmp_path / "db.sqlite", [gas()], config=config, handlers=handlers) as h:
            await h.value("gas1", 40.0)
            [new] = h.alarm_events("new")
            with anyio.fail_after(20):
                while not (records := await h.engine.linkage_log(new.alarm_id)) or records[0].ok is None:
                    await anyio.sleep(0.02)
            assert records[0].ok, records[0].error
            with anyio.fail_after(20):  # the retained message is there for a late subscriber
                message = await anyio.to_thread.run_sync(
                    lambda: mqtt_subscribe.simple("bms/unit-a/gas", hostname="127.0.0.1", port=port),
                    abandon_on_cancel=True,
                )
            body = json.loads(message.payload)
            assert body["alarm"]["id"] == new.alarm_id and body["context_id"] == records[0].context_id
            assert body["parent_id"] == next(e for e in h.events if e.data.transition == "new").context.id
    finally:
        broker.terminate()
        broker.wait(timeout=10)
