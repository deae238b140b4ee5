"""Simulators through real clients: Modbus scenarios over TCP, the smoke fleet over Mosquitto, the CLI."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import subprocess
import sys
from collections import defaultdict

import pytest
import yaml
from firebus.core.sim.cli import add_sim_commands
from firebus.core.sim.modbus import ModbusSimulator, SimDevice, resolve_profile
from firebus.core.sim.scenario import Drift, Scenario, load_scenario
from firebus.core.sim.smoke import (
    FleetConfig,
    ScriptedEvent,
    SmokeFleetPublisher,
    iter_imeis,
    timeline,
)
from firebus.core.transports.modbus import ModbusTcpOptions, ModbusTcpTransport
from firebus.core.transports.mqtt import MqttOptions, MqttTransport
from firebus.sdk.modbus import ModbusDeviceOptions, ModbusProfileDriver, ModbusTimeoutError
from firebus.sdk.testing.waiting import eventually as wait_for

from .conftest import RecordingContext

pytestmark = pytest.mark.anyio


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


class DriverCtx:
    def __init__(self, transport) -> None:
        self.transport = transport
        self.device_id = None
        self.logger = logging.getLogger("firebus.test.sim")


def demo() -> Scenario:
    from importlib import resources

    text = resources.files("firebus.core.sim.profiles").joinpath("demo.scenario.yaml").read_text("utf-8")
    return load_scenario(yaml.safe_load(text), "demo")


def driver_for(line, sim: ModbusSimulator, unit: int) -> ModbusProfileDriver:
    class Fixed(ModbusProfileDriver):
        type_key = "fixed"
        profile = sim.devices[unit].profile

    return Fixed(ModbusDeviceOptions(unit=unit), DriverCtx(line))


async def test_demo_scenario_through_a_real_client():
    clock = Clock()
    async with ModbusSimulator.from_scenario(demo(), clock=clock) as sim:
        line = ModbusTcpTransport("gw", ModbusTcpOptions(host="127.0.0.1", port=sim.port, timeout=0.5, retries=0),
                                  RecordingContext())
        await line.start()
        try:
            rcd, gas, water, pump = (driver_for(line, sim, u) for u in (1, 2, 3, 4))

            async def values(drv):
                return {r.point_key: (r.value if r.fault is None else ("fault", r.fault)) for r in await drv.poll()}

            v = await values(rcd)
            assert 140 <= v["residual_current"] <= 160 and v["temperature_2"] == pytest.approx(35, abs=0.5)
            clock.t = 160.0  # drift crossed 300 mA, T2 jumped
            v = await values(rcd)
            assert v["residual_current"] >= 380 and v["temperature_2"] >= 90
            clock.t = 250.0
            assert (await values(rcd))["temperature_4"] == ("fault", "open_circuit")

            clock.t = 100.0
            g = await values(gas)
            assert g["gas_lel"] >= 29 and g["level1_alarm"] is True and g["valve_closed"] is False
            await gas.write("valve_close", True)
            assert (await values(gas))["valve_closed"] is False  # valve still travelling
            clock.t = 103.0
            assert (await values(gas))["valve_closed"] is True

            clock.t = 10.0
            w = await values(water)
            assert w["pressure"] == pytest.approx(0.31, abs=0.01) and w["pressure_range_max"] == pytest.approx(1.6)

            p = await values(pump)
            assert p["running"] is False and p["mode"] == "auto"
            await pump.write("start", True)
            clock.t = 19.0
            assert (await values(pump))["running"] is True
            clock.t = 310.0  # pump controller drops off the bus
            with pytest.raises(ModbusTimeoutError):
                await pump.poll()
            assert (await values(water))["pressure_decimals"] == 3  # the others still answer
        finally:
            await line.stop()


async def test_same_seed_same_values_different_seed_different_noise():
    def dev(seed):
        return SimDevice(1, resolve_profile("rcd_temp4"), {"residual_current": Drift(start=200, rate=0.5, noise=20)},
                         seed=seed)

    a, b, c = dev(1), dev(1), dev(2)
    for t in (0.0, 1.0, 7.5, 99.0):
        assert a.readings(t) == b.readings(t)
    assert [a.readings(t)["residual_current"] for t in range(10)] != [c.readings(t)["residual_current"] for t in range(10)]


def test_smoke_timeline_is_reproducible_and_complete():
    cfg = FleetConfig(devices=5, seed=11, heartbeat_s=30, start_ts=1_700_000_000, alarm_rate=20, tamper_rate=5,
                      events=[ScriptedEvent(at=12, device=3, event="alarm", duration=40)])
    a, b = timeline(cfg, 600), timeline(cfg, 600)
    assert [m.encode() for m in a] == [m.encode() for m in b]
    assert [m.t for m in a] == sorted(m.t for m in a)
    per: dict[str, list[int]] = defaultdict(list)
    for m in a:
        per[m.payload["imei"]].append(m.payload["seq"])
    assert set(per) == set(iter_imeis(cfg))
    for seqs in per.values():
        assert seqs == list(range(1, len(seqs) + 1))  # contiguous: a consumer can count losses
    dev3 = list(iter_imeis(cfg))[3]
    ev3 = [(m.t, m.payload["event"]) for m in a if m.payload["imei"] == dev3 and m.payload["event"] != "heartbeat"]
    assert (12, "alarm") in ev3 and (52, "clear") in ev3
    assert {m.payload["event"] for m in a} >= {"heartbeat", "alarm", "clear", "tamper", "tamper_clear"}
    assert timeline(FleetConfig(devices=5, seed=12), 600) != timeline(FleetConfig(devices=5, seed=11), 600)


async def test_smoke_fleet_over_a_real_broker_loses_nothing(mosquitto):
    cfg = FleetConfig(devices=20, seed=3, heartbeat_s=10, battery_start=(19, 30),
                      events=[ScriptedEvent(at=1, device=0, event="alarm", duration=5),
                              ScriptedEvent(at=2, device=1, event="tamper")])
    got: dict[str, list[int]] = defaultdict(list)
    events: list[str] = []

    async def handler(topic, payload, ack):
        msg = json.loads(payload)
        assert topic == f"firebus/smoke/{msg['imei']}/up"
        got[msg["imei"]].append(msg["seq"])
        events.append(msg["event"])
        ack()

    t = MqttTransport("mqtt", MqttOptions(host=mosquitto.host, port=mosquitto.port, client_id="fleet-sink"),
                      RecordingContext())
    t.subscribe("firebus/smoke/+/up", handler)
    await t.start()
    try:
        await t.wait_connected()
        pub = SmokeFleetPublisher(cfg, mosquitto.host, mosquitto.port)
        sent = await asyncio.to_thread(pub.run, 60, speed=0)
        await wait_for(lambda: sum(len(v) for v in got.values()) == len(sent), what="every fleet message")
    finally:
        await t.stop()
    for imei in iter_imeis(cfg):
        assert sorted(got[imei]) == list(range(1, len(got[imei]) + 1))
    assert {"alarm", "clear", "tamper", "low_battery"} <= set(events)


def test_cli_help_lists_the_simulators():
    parser = argparse.ArgumentParser(prog="firebus")
    add_sim_commands(parser.add_subparsers(dest="command"))
    help_text = parser._subparsers._group_actions[0].choices["sim"].format_help()
    for name in ("modbus", "smoke", "list"):
        assert name in help_text
    out = subprocess.run([sys.executable, "-m", "firebus.core.sim", "list", "--json"], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert {"rcd_temp4", "gas_detector", "water_transmitter", "pump_controller"} <= set(data["profiles"])
    assert "demo.scenario.yaml" in data["scenarios"]
    bad = subprocess.run([sys.executable, "-m", "firebus.core.sim", "modbus", "--device", "1:nope"],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "unknown profile" in bad.stderr


async def test_cli_modbus_serves_a_real_port():
    proc = subprocess.Popen([sys.executable, "-u", "-m", "firebus.core.sim", "modbus", "--port", "0",
                             "--device", "9:pump_controller"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        line = await asyncio.wait_for(asyncio.to_thread(proc.stdout.readline), 60)
        assert "modbus simulator on 127.0.0.1:" in line, proc.stderr.read() if proc.poll() is not None else line
        port = int(line.split("127.0.0.1:")[1].split()[0])
        hub = ModbusTcpTransport("cli", ModbusTcpOptions(host="127.0.0.1", port=port, timeout=2), RecordingContext())
        await hub.start()
        try:
            assert await hub.read(9, "holding", 0, 1) == [0]  # mode = auto
        finally:
            await hub.stop()
    finally:
        proc.terminate()
        proc.wait(10)


def test_out_of_range_values_saturate_at_full_scale_not_at_a_sentinel():
    d = SimDevice(1, resolve_profile("rcd_temp4"), {"residual_current": Drift(start=65000, rate=1000)})
    assert d.readings(0)["residual_current"] == 65000
    assert d.readings(10)["residual_current"] == 65533  # 0xFFFF/0xFFFE are the device's fault codes
    d.set("temperature_1", -5000)
    assert d.readings(0)["temperature_1"] == pytest.approx(-3276.7)
