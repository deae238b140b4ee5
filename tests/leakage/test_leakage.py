"""Leakage plugin against a real core and the real pymodbus simulator.

Each profile is served register for register by the simulator; the driver, the
Modbus hub, ingest and the alarm engine are the production ones.
"""

from __future__ import annotations

import struct

import pytest

from firebus.core.sim.modbus import SimDevice
from firebus.core.sim.scenario import Fault
from firebus.sdk import CommandResult
from firebus.sdk.modbus import ModbusWriteVerifyError, Table
from firebus.sdk.testing.waiting import eventually as wait_until

from .conftest import device_yaml

pytestmark = pytest.mark.anyio

GENERIC = {
    "residual_current": 123,
    "temperature_1": 31.5,
    "temperature_2": -5.2,
    "temperature_3": 64.0,
    "temperature_4": 88.8,
    "residual_current_at_alarm": 287.5,
    "residual_current_setting": 300,
    "temperature_1_setting": 85,
}
ACREL = {
    "residual_current": 123.0,
    "temperature_1": 31.5,
    "temperature_2": -5.25,
    "temperature_3": 64.0,
    "temperature_4": 70.5,
    "residual_current_at_alarm": 312.5,
    "temperature_2_at_alarm": 86.5,
    "residual_current_setting": 500,
    "temperature_3_setting": 90,
    "over_voltage": True,
}


@pytest.mark.parametrize("profile,values", [("generic_rcd4t", GENERIC), ("acrel_arcm", ACREL)])
async def test_each_profile_decodes_values_scaling_and_word_order(make_rig, profile, values) -> None:
    rig = await make_rig({5: profile}, device_yaml("rcd", 5, profile), behaviours={5: values})
    for key, value in values.items():
        expected = round(value, 1) if isinstance(value, float) else value
        await rig.wait_value("rcd", key, expected)
    # Untouched bits decode as clear, not as missing.
    assert rig.value("rcd", "temperature_2_alarm") is False
    # One read per contiguous block, not one per point (status + measurements, at-alarm, settings).
    dev = rig.sim.devices[5]
    n_blocks = len({(r.address, r.count) for r in rig.sim.requests if r.unit == 5 and r.fc == 3})
    assert n_blocks <= 3
    if profile == "acrel_arcm":
        # Word order on the wire: float32 with the LOW word first (Acrel "需高低位转换").
        image = dev.image(Table.HOLDING, rig.sim.now())
        hi, lo = struct.unpack(">HH", struct.pack(">f", 123.0))
        assert (image[0x0006], image[0x0007]) == (lo, hi)


async def test_threshold_alarm_at_105_percent_not_at_95(make_rig) -> None:
    rig = await make_rig(
        {1: "generic_rcd4t"},
        device_yaml("rcd", 1, "generic_rcd4t", circuits={"residual_current": "AL1 incomer", "temperature_2": "WL3 N line"}),
        behaviours={1: {"residual_current": 285, "temperature_2": 80.7}},  # 95 % of 300 mA and of 85 °C
    )
    await rig.wait_value("rcd", "residual_current", 285)
    await rig.wait_value("rcd", "temperature_2", 80.7)
    await rig.polls(5)
    assert rig.alarms(category="electrical_alarm") == []
    # 285 mA is above the 200 mA pre-alarm: that one is expected, the alarm is not.
    assert [a.rule for a in rig.alarms(category="electrical_pre_alarm", rule="threshold")] == ["threshold"]

    dev = rig.sim.devices[1]
    dev.set("residual_current", 315)  # 105 %
    dev.set("temperature_2", 89.3)  # 105 % of 85 °C
    alarms = await wait_until(lambda: len(rig.alarms(category="electrical_alarm", rule="threshold")) == 2
                              and rig.alarms(category="electrical_alarm", rule="threshold"))
    messages = sorted(a.message for a in alarms)
    # The alarm names the board's circuit; the alarm record carries the room.
    assert any("AL1 incomer" in m and "315mA" in m for m in messages), messages
    assert any("WL3 N line" in m and "89.3°C" in m for m in messages), messages
    location = rig.core.registry.place_by_key("switch_room")
    assert {a.location_id for a in alarms} == {location.id}


async def test_sudden_jump_below_threshold_raises_event_with_before_and_after(make_rig) -> None:
    rig = await make_rig({1: "generic_rcd4t"}, device_yaml("rcd", 1, "generic_rcd4t"),
                         behaviours={1: {"residual_current": 40}})
    await rig.wait_value("rcd", "residual_current", 40)
    rig.sim.devices[1].set("residual_current", 75)  # +35 mA: drift, not a jump
    await rig.wait_value("rcd", "residual_current", 75)
    await rig.polls(3)
    assert rig.alarms(rule="leakage.jump") == []
    rig.sim.devices[1].set("residual_current", 180)  # +105 mA in one poll, still below 200 / 300 mA
    (alarm,) = await wait_until(lambda: rig.alarms(rule="leakage.jump"))
    assert "75 → 180mA" in alarm.message and "+105mA" in alarm.message
    assert alarm.last_value == 180
    assert str(alarm.category) == "electrical_pre_alarm"
    assert rig.alarms(category="electrical_alarm") == []
    history = await rig.core.alarms.history(alarm.id)
    assert history[0].transition == "new"


async def test_device_side_alarm_is_shown_even_when_platform_threshold_differs(make_rig) -> None:
    # The detector is set to 100 mA; the platform keeps 300 mA.  At 150 mA the detector alarms.
    rig = await make_rig({1: "generic_rcd4t"}, device_yaml("rcd", 1, "generic_rcd4t"),
                         behaviours={1: {"residual_current": 150, "residual_current_setting": 100}})
    await rig.wait_value("rcd", "residual_current", 150)
    assert rig.alarms(category="electrical_alarm") == []
    rig.sim.devices[1].set("residual_current_alarm", True)
    rig.sim.devices[1].set("residual_current_at_alarm", 150.0)
    (alarm,) = await wait_until(lambda: rig.alarms(category="electrical_alarm"))
    assert alarm.rule == "leakage.device_flags"
    assert "B1 switch room" in alarm.message and "detector alarm" in alarm.message
    rig.sim.devices[1].set("residual_current_alarm", False)  # reset at the detector
    await wait_until(lambda: not rig.alarms(category="electrical_alarm"))


@pytest.mark.parametrize("profile", ["generic_rcd4t", "acrel_arcm"])
async def test_wiring_fault_and_sentinel_are_faults_never_readings(make_rig, profile) -> None:
    rig = await make_rig({1: profile}, device_yaml("rcd", 1, profile, circuits={"temperature_3": "WL5 L2"}),
                         behaviours={1: {"temperature_3": 40.0, "temperature_4": 41.0}})
    await rig.wait_value("rcd", "temperature_3", 40.0)
    dev = rig.sim.devices[1]
    # A broken probe lead: the register holds junk above the alarm setting, the flag says "wiring fault".
    dev.set("temperature_3", 120.0)
    dev.set("temperature_3_wiring_fault", True)
    await wait_until(lambda: (st := rig.state("rcd", "temperature_3")) is not None and st.fault == "wiring_fault")
    assert rig.state("rcd", "temperature_3").value is None
    (fault,) = await wait_until(lambda: rig.alarms(rule="leakage.device_flags", category="fault"))
    assert "wiring fault" in fault.message and "WL5 L2" in fault.message
    if profile == "generic_rcd4t":
        # An open-circuit sentinel (0x7FFF) on T4: a fault, not 3276.7 °C.
        dev.set("temperature_4", Fault(base=41.0))
        await wait_until(lambda: (st := rig.state("rcd", "temperature_4")) is not None and st.fault == "open_circuit")
        await wait_until(lambda: rig.alarms(rule="sensor_sanity", category="fault"))
    await rig.polls(3)
    assert rig.alarms(category="electrical_alarm") == []  # 120 °C junk never became an alarm
    rows = await rig.core.storage.fetchall(
        "SELECT value, fault FROM readings WHERE point_id = ? ORDER BY ts", (rig.point_id("rcd", "temperature_3"),)
    )
    assert 120.0 not in [r[0] for r in rows]
    dev.set("temperature_3_wiring_fault", False)
    await wait_until(lambda: not rig.alarms(rule="leakage.device_flags", category="fault"))


async def test_gateway_timeout_unavailable_then_recovery(make_rig) -> None:
    rig = await make_rig({1: "generic_rcd4t", 2: "acrel_arcm"},
                         device_yaml("rcd1", 1, "generic_rcd4t") + device_yaml("rcd2", 2, "acrel_arcm"),
                         behaviours={1: {"residual_current": 50}, 2: {"residual_current": 60.0}})
    await rig.wait_value("rcd1", "residual_current", 50)
    await rig.wait_value("rcd2", "residual_current", 60.0)
    avail = rig.core.availability
    rig.sim.devices[1].forced_silent = True  # unit 1 stops answering behind a live gateway
    await wait_until(lambda: str(avail.get(rig.device_id("rcd1"))) == "unavailable")
    assert str(avail.get(rig.device_id("rcd2"))) == "available"  # its neighbour is unaffected
    rig.sim.devices[1].forced_silent = False
    rig.sim.devices[1].set("residual_current", 55)
    await wait_until(lambda: str(avail.get(rig.device_id("rcd1"))) == "available")
    await rig.wait_value("rcd1", "residual_current", 55)
    # The whole gateway goes away, then comes back on the same port.
    port = rig.sim.port
    await rig.sim.stop()
    await wait_until(lambda: str(avail.get(rig.device_id("rcd2"))) == "unavailable")
    rig.sim.port = port
    await rig.sim.start()
    await wait_until(lambda: str(avail.get(rig.device_id("rcd2"))) == "available", timeout=30)


class ClampingDevice(SimDevice):
    """A detector that accepts a write but keeps its own limit (500 mA): the read-back differs."""

    def write(self, table, address, values, t):
        p = self.profile.point("residual_current_setting")
        if table is Table.HOLDING and address == p.address:
            values = [min(int(values[0]), 500)]
        return super().write(table, address, values, t)


async def test_remote_threshold_write_with_readback(make_rig) -> None:
    rig = await make_rig({1: "generic_rcd4t"}, device_yaml("rcd", 1, "generic_rcd4t"),
                         behaviours={1: {"residual_current_setting": 300}}, device_cls=ClampingDevice)
    await rig.wait_value("rcd", "residual_current_setting", 300)
    results: list[CommandResult] = []
    rig.core.bus.subscribe("t", lambda e: results.append(e.data), types=[CommandResult])
    device_id = rig.device_id("rcd")
    await rig.core.write_point(device_id, "residual_current_setting", 400)
    assert rig.sim.devices[1].readings(rig.sim.now())["residual_current_setting"] == 400
    await rig.wait_value("rcd", "residual_current_setting", 400)
    # Outside the detector's range (20–1000 mA): refused before anything is sent.
    writes = rig.sim.count(unit=1, fc=6)
    with pytest.raises(ValueError, match="outside"):
        await rig.core.write_point(device_id, "residual_current_setting", 2000)
    assert rig.sim.count(unit=1, fc=6) == writes
    # Accepted on the wire but the device kept 500: the read-back catches it.
    with pytest.raises(ModbusWriteVerifyError, match="read back"):
        await rig.core.write_point(device_id, "residual_current_setting", 800)
    await wait_until(lambda: len(results) >= 3)
    assert [r.ok for r in results] == [True, False, False]
    assert "read back" in results[-1].error
    await rig.wait_value("rcd", "residual_current_setting", 500)
    # Measurements are read-only.
    with pytest.raises(ValueError):
        await rig.core.write_point(device_id, "residual_current", 0)
