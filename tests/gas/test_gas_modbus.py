"""Gas plugin on Modbus: levels at their boundaries, valve/fan linkage with feedback, faults."""

from __future__ import annotations

import pytest

from firebus.core.sim.scenario import Fault, Follow
from firebus.sdk import Severity
from firebus.sdk.testing.waiting import eventually as wait_until

from .conftest import alarms_yaml, modbus_device

pytestmark = pytest.mark.anyio

DETECTOR = {
    "gas_lel": 12.3,
    "level_1_alarm": True,
    "over_range": False,
    "sensor_life_days": 1460,
    "calibration_due_days": 200,
    "level_1_setting": 20.0,
    "level_2_setting": 40.0,
}
CONTROLLER = {
    "gas_lel_1": 7,
    "gas_lel_2": 31,
    "gas_lel_1_status": "normal",
    "gas_lel_2_status": "level_1",
    "backup_power_fault": True,
}


@pytest.mark.parametrize("profile,values", [("point_detector", DETECTOR), ("alarm_controller_4ch", CONTROLLER)])
async def test_each_profile_decodes(make_rig, profile, values) -> None:
    rig = await make_rig({3: profile}, modbus_device("gd", 3, profile), alarms=alarms_yaml(linkage=False),
                         behaviours={3: values})
    for key, value in values.items():
        await rig.wait_value("gd", key, value)
    assert rig.value("gd", "valve_closed") is False
    if profile == "alarm_controller_4ch":
        (alarm,) = await wait_until(lambda: rig.alarms(rule="gas.channel_status", category="gas"))
        assert alarm.severity == Severity.ALARM and "Kitchen 2" in alarm.message
        (power,) = await wait_until(lambda: rig.alarms(rule="gas.device_flags", category="fault"))
        assert "power fault" in power.message


async def test_two_levels_at_their_boundaries_and_per_device_override(make_rig) -> None:
    rig = await make_rig(
        {1: "point_detector", 2: "point_detector"},
        modbus_device("kitchen", 1, circuits={"gas_lel": "wok range hood"})
        + modbus_device("boiler", 2, location="boiler_room"),
        alarms=alarms_yaml(linkage=False),
        behaviours={1: {"gas_lel": 24.9}, 2: {"gas_lel": 19.9}},
    )
    await rig.wait_value("kitchen", "gas_lel", 24.9)
    await rig.polls(3)
    assert rig.alarms(category="gas") == []
    dev = rig.sim.devices[1]
    dev.set("gas_lel", 25.0)  # GB/T 50493 level 1: ≤ 25 %LEL, so 25.0 alarms
    (alarm,) = await wait_until(lambda: rig.alarms(category="gas", rule="threshold"))
    assert alarm.severity == Severity.ALARM
    assert "wok range hood" in alarm.message and "level_1" in alarm.message
    assert rig.core.registry.places[alarm.location_id].name == "Kitchen 2"
    assert rig.alarms(category="fire") == []  # a gas alarm is never a fire alarm
    dev.set("gas_lel", 49.9)
    await rig.wait_value("kitchen", "gas_lel", 49.9)
    await rig.polls(3)
    assert rig.alarms(category="gas", rule="threshold")[0].severity == Severity.ALARM
    dev.set("gas_lel", 50.0)  # level 2
    await wait_until(lambda: rig.alarms(category="gas", rule="threshold")[0].severity == Severity.FIRE)
    assert len(rig.alarms(category="gas", rule="threshold")) == 1  # one gas alarm, escalated, not two

    # Per device: the boiler room detector is set to 20 %LEL for level 1.
    boiler = rig.device_id("boiler")
    await rig.core.registry.set_device_overrides(boiler, points={"gas_lel": {"rules": {"threshold": {"level_1": 20}}}})
    await rig.polls(3)
    assert rig.alarms(category="gas", device_key="boiler") == []
    rig.sim.devices[2].set("gas_lel", 20.0)
    (boiler_alarm,) = await wait_until(lambda: rig.alarms(category="gas", device_key="boiler"))
    assert boiler_alarm.severity == Severity.ALARM and "20" in boiler_alarm.message


async def test_level_2_closes_valve_and_starts_fan_with_feedback(make_rig) -> None:
    rig = await make_rig(
        {1: "point_detector"},
        modbus_device("kitchen", 1),
        alarms=alarms_yaml(feedback_timeout=1.5),
        behaviours={1: {"gas_lel": 10.0,
                        "valve_closed": Follow(source="valve_close", delay=0.3),
                        "fan_running": Follow(source="fan_start", delay=0.3)}},
    )
    await rig.wait_value("kitchen", "gas_lel", 10.0)
    dev = rig.sim.devices[1]
    dev.set("gas_lel", 30.0)  # level 1: no linkage by default
    await wait_until(lambda: rig.alarms(category="gas", rule="threshold"))
    await rig.polls(5)
    assert "valve_close" not in dev.write_log
    dev.set("gas_lel", 55.0)  # level 2
    await wait_until(lambda: dev.write_log.get("valve_close") and dev.write_log.get("fan_start"))
    assert dev.write_log["valve_close"][-1][1] is True and dev.write_log["fan_start"][-1][1] is True
    await rig.wait_value("kitchen", "valve_closed", True)
    await rig.wait_value("kitchen", "fan_running", True)
    (alarm,) = rig.alarms(category="gas", rule="threshold")
    log = await rig.core.alarms.linkage_log(alarm.id)
    assert sorted(r.action["point_key"] for r in log) == ["fan_start", "valve_close"]
    # Feedback came: no "failed to close" fault, even once the 1.5 s deadline has passed.
    t0 = rig.core.clock.time()
    await wait_until(lambda: rig.core.clock.time() > t0 + 2.0)
    await rig.polls(3)
    assert rig.alarms(rule="gas.feedback") == []


async def test_valve_that_sticks_raises_failed_to_close(make_rig) -> None:
    rig = await make_rig(
        {1: "point_detector"},
        modbus_device("kitchen", 1),
        alarms=alarms_yaml(feedback_timeout=1.5),
        behaviours={1: {"gas_lel": 10.0, "valve_closed": False,  # stuck open: the relay clicks, nothing moves
                        "fan_running": Follow(source="fan_start", delay=0.2)}},
    )
    await rig.wait_value("kitchen", "gas_lel", 10.0)
    rig.sim.devices[1].set("gas_lel", 60.0)
    (fault,) = await wait_until(lambda: rig.alarms(rule="gas.feedback"), timeout=30)
    assert str(fault.category) == "fault"
    assert "valve failed to close" in fault.message
    assert fault.point_id == rig.point_id("kitchen", "valve_closed")
    assert rig.value("kitchen", "fan_running") is True  # the fan did start: no fault for it
    assert all("fan" not in a.message for a in rig.alarms(rule="gas.feedback"))


async def test_sensor_faults_over_range_and_maintenance_reminders(make_rig) -> None:
    rig = await make_rig(
        {1: "point_detector", 2: "alarm_controller_4ch"},
        modbus_device("kitchen", 1) + modbus_device("ctl", 2, profile="alarm_controller_4ch",
                                                   location="boiler_room", circuits={"gas_lel_2": "boiler 2 burner"}),
        alarms=alarms_yaml(linkage=False),
        behaviours={1: {"gas_lel": 5.0, "sensor_life_days": 400, "calibration_due_days": 100},
                    2: {"gas_lel_2": 3}},
    )
    await rig.wait_value("kitchen", "gas_lel", 5.0)
    dev = rig.sim.devices[1]
    # The sensor fault flag: the register's junk (80 %LEL) is a fault, not a level-2 leak.
    dev.set("gas_lel", 80.0)
    dev.set("gas_lel_sensor_fault", True)
    await wait_until(lambda: (st := rig.state("kitchen", "gas_lel")) is not None and st.fault == "sensor_fault")
    (fault,) = await wait_until(lambda: rig.alarms(rule="gas.device_flags", category="fault"))
    assert "gas sensor fault" in fault.message and "Kitchen 2" in fault.message
    assert rig.alarms(category="gas") == []
    dev.set("gas_lel_sensor_fault", False)
    # A sentinel (0xFFFF) is a fault too.
    dev.set("gas_lel", Fault(base=5.0))
    await wait_until(lambda: (st := rig.state("kitchen", "gas_lel")) is not None and st.fault == "sensor_fault")
    await wait_until(lambda: not rig.alarms(rule="gas.device_flags", category="fault"))
    assert rig.alarms(category="gas") == []
    # Over range: the most urgent gas condition.
    dev.set("over_range", True)
    (over,) = await wait_until(lambda: rig.alarms(rule="gas.device_flags", category="gas"))
    assert over.severity == Severity.FIRE and "over range" in over.message
    # Reminders: life within 30 days; calibration overdue.
    dev.set("sensor_life_days", 20)
    dev.set("calibration_due_days", -3)
    (life,) = await wait_until(lambda: rig.alarms(rule="gas.maintenance", category="supervisory"))
    assert "sensor life due in 20 days" in life.message
    (overdue,) = await wait_until(lambda: rig.alarms(rule="gas.maintenance", category="fault"))
    assert "calibration overdue" in overdue.message
    # Controller: a loop fault makes that channel's value a fault and names the burner.
    ctl = rig.sim.devices[2]
    ctl.set("gas_lel_2_status", "fault")
    await wait_until(lambda: (st := rig.state("ctl", "gas_lel_2")) is not None and st.fault == "fault")
    (loop,) = await wait_until(lambda: rig.alarms(rule="gas.channel_status", category="fault"))
    assert "boiler 2 burner" in loop.message and "Boiler room" in loop.message


async def test_calibration_date_option_gives_days_to_calibration(make_rig) -> None:
    import datetime as dt

    last = (dt.date.today() - dt.timedelta(days=350)).isoformat()
    rig = await make_rig({4: "alarm_controller_4ch"},
                         modbus_device("ctl", 4, profile="alarm_controller_4ch", calibrated_on=last),
                         alarms=alarms_yaml(linkage=False))
    await rig.wait_value("ctl", "calibration_due_days", 15)
    (reminder,) = await wait_until(lambda: rig.alarms(rule="gas.maintenance"))
    assert "calibration due in 15 days" in reminder.message
