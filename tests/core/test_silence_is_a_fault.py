"""Silence is a fault (通讯故障): gateways, links and detectors that stop talking raise alarms.

Real parts: a pymodbus gateway (``firebus.core.sim.modbus``) that is stopped and
started again on its port, a real Mosquitto, smoke detectors speaking the
generic NB-IoT JSON through it, and the panel's API for what a duty officer
sees ("never reported").
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Callable

import httpx
import paho.mqtt.client as mqtt
import pytest

from firebus.core.config import load_text
from firebus.core.runtime import running_core
from firebus.core.sim.modbus import ModbusSimulator, SimDevice
from firebus.core.web import create_app
from firebus.core.web.auth import AuthStore
from firebus.plugins.leakage import get_profile
from firebus.sdk import AlarmCategory
from firebus.sdk.testing.mosquitto import Mosquitto
from firebus.sdk.testing.waiting import eventually as wait_until

pytestmark = pytest.mark.anyio

PLACES = """
units:
  - key: school
    name: No. 3 School
    buildings:
      - key: main
        floors:
          - key: f1
            locations:
              - {key: switch_room, name: switch room}
              - {key: dorm_101, name: dorm 101}
"""


def active(core: Any, category: AlarmCategory, subject: str | None = None) -> list[Any]:
    return [a for a in core.alarms.open_alarms()
            if a.active and a.category is category and (subject is None or a.subject == subject)]


async def test_stopped_gateway_raises_communication_faults_and_clears_them_when_back(tmp_path: Path) -> None:
    sim = ModbusSimulator([SimDevice(1, get_profile("generic_rcd4t"))])
    await sim.start()
    port = sim.port
    site = (
        f"storage: {{path: {tmp_path / 'fb.db'}, synchronous: NORMAL}}\n" + PLACES
        + "transports:\n"
        f"  - {{key: gw, type: modbus_tcp, options: {{host: 127.0.0.1, port: {port}, timeout: 0.3, retries: 0, "
        "reconnect_delay: 0.1, reconnect_delay_max: 0.5}}\n"
        "devices:\n"
        "  - {key: rcd-1, name: board RCD, driver: leakage.modbus, transport: gw, location: switch_room,\n"
        "     options: {unit: 1, profile: generic_rcd4t, poll_interval: 0.2}}\n"
        "alarms: {link_fault_after: 2}\n"
    )
    async with running_core(load_text(site, "site.yaml")) as core:
        device_id = await wait_until(lambda: core.device_ids.get("rcd-1"))
        await wait_until(lambda: any(s is not None for s in (
            core.ingest.state(p.point_id) for p in core.registry.points_of_device(core.device_ids["rcd-1"]))),
            what="first poll")
        stopped = time.monotonic()
        await sim.stop()  # the gateway loses power
        offline = await wait_until(lambda: active(core, AlarmCategory.OFFLINE, f"device:{core.device_ids['rcd-1']}"),
                                   what="the device's communication fault")
        link = await wait_until(lambda: active(core, AlarmCategory.OFFLINE, "transport:gw"), timeout=15,
                                what="the gateway link's communication fault")
        assert time.monotonic() - stopped < 15  # well inside the 100 s the standards allow
        [dev_alarm], [link_alarm] = offline, link
        assert "board RCD" in dev_alarm.message and "通讯故障" in dev_alarm.message_zh
        assert dev_alarm.location_id == core.registry.place_by_key("switch_room").id
        assert "1 device" in link_alarm.message
        # Back on the same port: both clear by themselves.
        sim2 = ModbusSimulator([SimDevice(1, get_profile("generic_rcd4t"))], port=port)
        await sim2.start()
        try:
            await wait_until(lambda: not active(core, AlarmCategory.OFFLINE), timeout=20, what="faults cleared")
            assert device_id == core.device_ids["rcd-1"]
        finally:
            await sim2.stop()


def detector(port: int, imei: str) -> Callable[..., None]:
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"det-{imei}", protocol=mqtt.MQTTv311)
    client.connect("127.0.0.1", port)
    client.loop_start()
    seq = [0]

    def send(heartbeat_s: float, *, smoke: bool = False) -> None:
        seq[0] += 1
        body = {"v": 1, "imei": imei, "seq": seq[0], "ts": time.time(), "event": "alarm" if smoke else "heartbeat",
                "state": {"smoke": smoke, "fault": False, "low_battery": False, "tamper": False},
                "battery": 90, "heartbeat_s": heartbeat_s}
        client.publish(f"firebus/smoke/{imei}/up", json.dumps(body), qos=1).wait_for_publish(10)

    send.client = client  # type: ignore[attr-defined]
    return send


def smoke_site(tmp_path: Path, port: int, extra: str = "") -> str:
    return (
        f"storage: {{path: {tmp_path / 'fb.db'}, synchronous: NORMAL}}\n" + PLACES
        + f"transports:\n  - {{key: mqtt, type: mqtt, options: {{port: {port}, client_id: silence-core}}}}\n"
        "devices:\n"
        "  - {key: det-1, name: dorm detector, driver: smoke.generic, transport: mqtt, location: dorm_101,\n"
        "     identifiers: {imei: '861234567890001'}}\n"
        "  - {key: det-2, name: spare detector, driver: smoke.generic, transport: mqtt, location: dorm_101,\n"
        "     identifiers: {imei: '861234567890002'}}\n" + extra
    )


async def test_silent_detector_is_offline_by_its_latest_promise_and_back_on_its_next_message(tmp_path: Path) -> None:
    with Mosquitto(tmp_path / "broker") as broker:
        async with running_core(load_text(smoke_site(tmp_path, broker.port), "site.yaml")) as core:
            await core.transports["mqtt"].wait_connected(20)
            send = detector(broker.port, "861234567890001")
            try:
                dev = core.device_ids["det-1"]
                send(3600)  # an hour's promise …
                await wait_until(lambda: core.ingest.readings_in >= 1, what="the first message")
                send(2)  # … replaced by a 2 s one: judged by the new promise at once
                silent_from = time.monotonic()
                [alarm] = await wait_until(lambda: active(core, AlarmCategory.OFFLINE, f"device:{dev}"),
                                           timeout=20, what="offline after missed heartbeats")
                waited = time.monotonic() - silent_from
                assert waited < 10, waited  # 1.5 × 2 s, not an hour
                assert "dorm detector" in alarm.message and "no report" in alarm.message
                send(2)  # alive again
                await wait_until(lambda: not active(core, AlarmCategory.OFFLINE, f"device:{dev}"),
                                 what="cleared by the next message")
            finally:
                send.client.loop_stop()  # type: ignore[attr-defined]
                send.client.disconnect()  # type: ignore[attr-defined]


async def test_configured_detector_that_never_reported_is_shown_as_such(tmp_path: Path) -> None:
    with Mosquitto(tmp_path / "broker") as broker:
        async with running_core(load_text(smoke_site(tmp_path, broker.port), "site.yaml")) as core:
            await core.transports["mqtt"].wait_connected(20)
            send = detector(broker.port, "861234567890001")
            try:
                send(3600)
                await wait_until(lambda: core.ingest.readings_in >= 1, what="det-1's first message")
                auth = AuthStore(core.storage)
                await auth.create_user("duty", "admin", password="correct horse battery staple 42")
                token, _ = await auth.create_token("duty", label="test")
                async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(core)),
                                             base_url="http://panel",
                                             headers={"Authorization": f"Bearer {token}"}) as client:
                    resp = await client.get("/api/devices")
                    assert resp.status_code == 200
                    by_name = {d["name"]: d for d in resp.json()["items"]}
                    assert by_name["spare detector"]["status"] == "never_reported"
                    assert by_name["dorm detector"]["status"] == "normal"
            finally:
                send.client.loop_stop()  # type: ignore[attr-defined]
                send.client.disconnect()  # type: ignore[attr-defined]


async def test_linkage_filtered_by_site_keys_fires(tmp_path: Path) -> None:
    linkage = (
        "alarms:\n"
        "  linkage:\n"
        "    - name: dorm-sounder\n"
        "      when: {devices: [det-1], locations: [main], categories: [fire]}\n"
        "      actions: [{type: mqtt_publish, topic: 'sounder/{category}', payload: {sounder: 'on'}}]\n"
    )
    with Mosquitto(tmp_path / "broker") as broker:
        async with running_core(load_text(smoke_site(tmp_path, broker.port, linkage), "site.yaml")) as core:
            await core.transports["mqtt"].wait_connected(20)
            got: list[bytes] = []
            sub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="sounder", protocol=mqtt.MQTTv311)
            sub.on_message = lambda c, u, m: got.append(m.payload)
            sub.connect("127.0.0.1", broker.port)
            sub.subscribe("sounder/#", qos=1)
            sub.loop_start()
            send = detector(broker.port, "861234567890001")
            try:
                send(3600, smoke=True)
                await wait_until(lambda: got, timeout=20, what="the sounder command")
                assert json.loads(got[0]) == {"sounder": "on"}
                [alarm] = [a for a in core.alarms.open_alarms() if a.category is AlarmCategory.FIRE]
                [record] = await core.alarms.linkage_log(alarm.id)
                assert record.rule == "dorm-sounder"
            finally:
                for c in (sub, send.client):  # type: ignore[attr-defined]
                    c.loop_stop()
                    c.disconnect()


def test_check_refuses_a_linkage_filter_that_names_nothing(tmp_path: Path) -> None:
    from firebus.core.config import ConfigError
    from firebus.core.runtime import build_plugin_host, prepare

    text = smoke_site(tmp_path, 1883, (
        "alarms:\n"
        "  linkage:\n"
        "    - name: pump\n"
        "      when: {devices: [fire-pump-9]}\n"
        "      actions: [{type: write_point, point_key: start, value: true}]\n"
    ))
    loaded = load_text(text, "site.yaml")
    with pytest.raises(ConfigError) as err:
        prepare(loaded, build_plugin_host(loaded.site))
    message = str(err.value)
    assert "site.yaml:" in message and "fire-pump-9" in message and "linkage" in message
