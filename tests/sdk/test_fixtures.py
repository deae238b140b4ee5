"""The fixtures the pytest plugin ships, used the way a vendor's tests use them."""

from __future__ import annotations

from typing import Any

import anyio
import msgspec
import pytest

import firebus.plugins.notify as notify_plugin
from firebus.sdk import (
    AlarmEvent,
    AlarmTransition,
    DeviceInfo,
    LinkChanged,
    PointSpec,
    PolledDriver,
    Reading,
    StateChanged,
    StateReported,
    hookimpl,
)
from firebus.sdk.modbus import ModbusProfileDriver, profile_from_data
from firebus.sdk.testing.outbox import outbox_channel_class

pytestmark = pytest.mark.anyio

PROFILE = profile_from_data({"name": "rcd1", "manufacturer": "T", "model": "RCD-1", "points": [
    {"point_key": "rc", "point_class": "residual_current", "unit": "mA", "table": "holding", "address": 0}]})


class Rcd(ModbusProfileDriver):
    type_key = "fx.rcd"
    profile = PROFILE


class RcdPlugin:
    @hookimpl
    def firebus_register_drivers(self, core):
        return [Rcd]


RCD = "  - {key: rcd, driver: fx.rcd, transport: gw, location: room, options: {unit: 2, poll_interval: 0.1}}\n"

NOTIFY = """
notify:
  channels: [{key: duty, type: test_outbox}]
  people:
    - {name: Zhang San, roles: [duty_officer], contacts: {duty: "13800000001"}}
  routes:
    - name: alarms
      min_severity: alarm
      channels: [duty]
      escalation: {steps: [{roles: [duty_officer]}]}
"""


class OutboxPlugin:
    """Registers the outbox channel type explicitly (what ``firebus_outbox.plugin`` does)."""

    def __init__(self, outbox: Any) -> None:
        self.cls = outbox_channel_class(outbox)

    @hookimpl
    def firebus_register_notifiers(self, core):
        return [self.cls]


async def test_recorder_sees_the_first_reading_and_waits_for_later_ones(
    firebus_core, firebus_modbus_sim, firebus_recorder, firebus_site_yaml
) -> None:
    async with firebus_modbus_sim({2: PROFILE}, values={2: {"rc": 5}}) as sim:
        async with firebus_core(firebus_site_yaml(modbus_port=sim.port, devices=RCD), plugins={"t": RcdPlugin()}):
            first = await firebus_recorder.wait_for(StateChanged, point_key="rc")
            assert (first.old_value, first.new_value) == (None, 5)  # subscribed before the core started
            await firebus_recorder.wait_for(StateReported, point_id=first.point_id)
            sim.devices[2].set("rc", 77)
            changed = await firebus_recorder.wait_for(StateChanged, new_value=lambda v: v == 77)
            assert changed.old_value == 5
            with pytest.raises(TimeoutError, match="no StateChanged matching"):
                await firebus_recorder.wait_for(StateChanged, new_value=999, timeout=0.2)
            assert sim.count(unit=2, fc=3) >= 2  # a real Modbus server answered real requests


async def test_outbox_receives_the_alarm_notification(
    firebus_core, firebus_modbus_sim, firebus_recorder, firebus_outbox, firebus_site_yaml
) -> None:
    async with firebus_modbus_sim({2: PROFILE}, values={2: {"rc": 20}}) as sim:
        site = firebus_site_yaml(modbus_port=sim.port, devices=RCD, extra=NOTIFY)
        plugins = {"t": RcdPlugin(), "notify": notify_plugin, "outbox": OutboxPlugin(firebus_outbox)}
        async with firebus_core(site, plugins=plugins):
            await firebus_recorder.wait_for(StateChanged, point_key="rc", new_value=20)
            sim.devices[2].set("rc", 650)
            await firebus_recorder.wait_for(AlarmEvent, transition=AlarmTransition.NEW)
            (message,) = await firebus_outbox.wait_for(kind="new")
            assert message.channel == "duty" and message.address == "13800000001"
            assert "650" in message.text


async def test_outbox_fail_next_makes_deliveries_raise(firebus_outbox) -> None:
    from firebus.sdk.notify import DeliveryError
    from firebus.sdk.testing.contracts import sample_message

    channel = outbox_channel_class(firebus_outbox)("duty", None, None)
    firebus_outbox.fail_next(2)
    for _ in range(2):
        with pytest.raises(DeliveryError, match="injected"):
            await channel.send(sample_message())
    await channel.send(sample_message())
    assert firebus_outbox.attempts == 3 and len(firebus_outbox.messages) == 1


async def test_panel_client_is_logged_in(firebus_core, firebus_panel_client, firebus_site_yaml) -> None:
    async with firebus_core(firebus_site_yaml(), plugins={"t": RcdPlugin()}) as core:
        async with firebus_panel_client(core) as http:
            response = await http.get("/api/plugins")
            assert response.status_code == 200
            assert {row["name"]: row["status"] for row in response.json()["items"]}["t"] == "loaded"
        async with firebus_panel_client(core, role="duty_officer", units=["site"]) as http:
            assert (await http.get("/api/plugins")).status_code == 403


async def test_mosquitto_is_a_real_broker_the_core_connects_to(
    firebus_core, firebus_mosquitto, firebus_recorder, firebus_site_yaml
) -> None:
    transports = (f"  - {{key: broker, type: mqtt, options: {{host: {firebus_mosquitto.host}, "
                  f"port: {firebus_mosquitto.port}}}}}\n")
    async with firebus_core(firebus_site_yaml(transports=transports)) as core:
        with anyio.fail_after(20):
            while not core.transports["broker"].connected:
                await anyio.sleep(0.02)
        await anyio.to_thread.run_sync(firebus_mosquitto.stop)
        down = await firebus_recorder.wait_for(LinkChanged, up=False)
        assert down.transport == "broker"
        await anyio.to_thread.run_sync(firebus_mosquitto.start)
        await firebus_recorder.wait_for(LinkChanged, transport="broker", up=True)


class Counter(msgspec.Struct, forbid_unknown_fields=True):
    serial: str


POLLS: list[float] = []


class Ticker(PolledDriver):
    type_key = "fx.ticker"
    Options = Counter
    transports = ()
    poll_interval = 10.0

    async def setup(self) -> DeviceInfo:
        return DeviceInfo(identifiers={"serial": self.options.serial})

    def points(self) -> list[PointSpec]:
        return [PointSpec(key="n", point_class="sequence")]

    async def poll(self) -> list[Reading]:
        POLLS.append(1)
        return [Reading(point_key="n", value=len(POLLS))]


class TickerPlugin:
    @hookimpl
    def firebus_register_drivers(self, core):
        return [Ticker]


async def test_manual_clock_drives_polling(firebus_core, firebus_clock, firebus_recorder, firebus_site_yaml) -> None:
    POLLS.clear()
    devices = "  - {key: tick, driver: fx.ticker, location: room, options: {serial: T1}}\n"
    async with firebus_core(firebus_site_yaml(devices=devices), plugins={"t": TickerPlugin()},
                            clock=firebus_clock):
        await firebus_recorder.wait_for(StateChanged, point_key="n", new_value=1)
        await firebus_clock.settle()
        assert len(POLLS) == 1  # an hour of wall time would not matter: only the clock moves polls
        await firebus_clock.advance(30)
        await firebus_recorder.wait_for(StateChanged, point_key="n", new_value=4)
        assert len(POLLS) == 4


def test_the_plugin_loads_through_its_entry_point_and_shadows_nothing(request: pytest.FixtureRequest) -> None:
    import re
    from pathlib import Path

    from firebus.sdk.testing import pytest_plugin

    assert request.config.pluginmanager.get_plugin("firebus") is pytest_plugin  # the pytest11 entry point
    ours = {name for name, obj in vars(pytest_plugin).items()
            if callable(obj) and name.startswith("firebus_")}
    assert {"firebus_core", "firebus_recorder", "firebus_modbus_sim", "firebus_outbox"} <= ours
    # a suite fixture with one of these names would silently replace the shipped one
    fixture_def = re.compile(r"@pytest\.fixture[^\n]*\n(?:@[^\n]*\n)*\s*(?:async )?def (\w+)\(")
    suite = {m for p in Path(__file__).parents[1].rglob("*.py") for m in fixture_def.findall(p.read_text())}
    assert "anyio_backend" in suite and "sdk_venv" in suite  # the scan sees the suite's fixtures
    assert not ours & suite
