"""The other generic rules at their boundaries, driven through the real bus."""

import pytest

from firebus.core.alarms import AlarmConfig, RuleConfig
from firebus.sdk import (
    AlarmCategory,
    CommandRequested,
    CommandResult,
    Context,
    PointInfo,
    Severity,
)

from .harness import running
from .points import rc, smoke

pytestmark = pytest.mark.anyio


# -- sensor sanity ------------------------------------------------------------------------


async def test_sentinel_is_a_sensor_fault_not_a_65535_mA_leak(tmp_path):
    async with running(tmp_path / "db.sqlite", [rc()]) as h:
        await h.value("rc1", 120.0)
        await h.value("rc1", 65535)  # 0xFFFF: device fault
        [fault] = h.alarm_events("new")
        assert fault.category == AlarmCategory.FAULT and "0xFFFF" in fault.message
        assert not h.alarm_events("new", category=AlarmCategory.ELECTRICAL_ALARM)
        await h.value("rc1", -3.0)  # below the plausible range: still the same fault
        assert len(h.alarm_events("new")) == 1
        await h.value("rc1", 110.0)
        [cleared] = h.alarm_events("cleared")
        assert cleared.alarm_id == fault.alarm_id


async def test_value_flagged_by_the_device_holds_the_threshold(tmp_path):
    async with running(tmp_path / "db.sqlite", [rc()]) as h:
        await h.value("rc1", 350.0)
        [alarm] = h.alarm_events("new", category=AlarmCategory.ELECTRICAL_ALARM)
        await h.value("rc1", 0.0, fault="wiring fault")  # 0 from a broken wire is no all-clear
        assert not h.alarm_events("cleared", category=AlarmCategory.ELECTRICAL_ALARM)
        assert h.alarm_events("new", category=AlarmCategory.FAULT)
        await h.report("rc1", 0.0)  # the broken value again: not a repeat of the 350 mA alarm
        assert (await h.engine.get(alarm.alarm_id)).count == 1


# -- rate of rise -------------------------------------------------------------------------


async def test_rate_of_rise_100_mA_within_60_s(tmp_path):
    async with running(tmp_path / "db.sqlite", [rc()]) as h:
        await h.value("rc1", 50.0)
        await h.advance(59)
        await h.value("rc1", 149.0)  # +99 mA: short of the rise
        assert not h.alarm_events("new")
        await h.value("rc1", 151.0)  # +101 mA within the minute
        [new] = h.alarm_events("new")
        assert new.rule == "rate_of_rise" and new.category == AlarmCategory.ELECTRICAL_PRE_ALARM
        await h.advance(60)  # hold time passed without a further jump
        assert h.alarm_events("cleared", alarm_id=new.alarm_id)


async def test_slow_rise_outside_the_window_is_not_a_jump(tmp_path):
    async with running(tmp_path / "db.sqlite", [rc()]) as h:
        await h.value("rc1", 50.0)
        await h.advance(40)
        await h.value("rc1", 100.0)
        await h.advance(40)
        await h.value("rc1", 155.0)  # +105 since t0, but t0 is 80 s ago
        assert not h.alarm_events("new", rule="rate_of_rise")


# -- device status ------------------------------------------------------------------------


HKT = RuleConfig(
    key="hkt_status",
    type="device_status",
    point_classes=["status"],
    options={
        "flags": [
            {"name": "smoke", "mask": 0x02, "category": "fire", "severity": "alarm"},
            {"name": "fault", "mask": 0x04, "category": "fault", "severity": "fault"},
            {"name": "tamper", "mask": 0x10, "category": "fault", "severity": "fault"},
            {"name": "low_battery", "mask": 0x100, "category": "fault", "severity": "supervisory"},
        ]
    },
)


async def test_device_status_bits_each_raise_their_own_alarm(tmp_path):
    p = PointInfo(point_id="st1", device_id="hkt1", key="status", point_class="status", device_name="HKT-SD-100")
    config = AlarmConfig(rules=[HKT, RuleConfig(key="device_status", type="device_status")])
    async with running(tmp_path / "db.sqlite", [p], config=config) as h:
        await h.value("st1", 0)
        assert not h.alarm_events()
        await h.value("st1", 0x02 | 0x100)
        new = {e.rule: e for e in h.alarm_events("new")}
        assert set(new) == {"hkt_status:smoke", "hkt_status:low_battery"}
        assert new["hkt_status:smoke"].category == AlarmCategory.FIRE
        assert new["hkt_status:low_battery"].severity == Severity.SUPERVISORY
        await h.value("st1", 0x100 | 0x04)
        assert {e.rule for e in h.alarm_events("cleared")} == {"hkt_status:smoke"}
        assert {e.rule for e in h.alarm_events("new")} == {"hkt_status:smoke", "hkt_status:low_battery", "hkt_status:fault"}


async def test_boolean_tamper_point(tmp_path):
    p = PointInfo(point_id="t1", device_id="sd1", key="tamper", point_class="tamper")
    async with running(tmp_path / "db.sqlite", [p]) as h:
        await h.value("t1", False)
        await h.value("t1", True)
        [new] = h.alarm_events("new")
        assert new.category == AlarmCategory.FAULT and "tamper" in new.message


# -- heartbeat ----------------------------------------------------------------------------


async def test_offline_after_three_missed_reports_one_alarm_per_device(tmp_path):
    points = [
        PointInfo(point_id="a", device_id="nb1", key="smoke", point_class="smoke", overrides={"expected_interval": 60}),
        PointInfo(point_id="b", device_id="nb1", key="battery", point_class="battery", overrides={"expected_interval": 60}),
    ]
    async with running(tmp_path / "db.sqlite", points) as h:
        t0 = h.clock.time()
        await h.value("a", False)
        await h.value("b", 90)
        await h.advance(179.9)  # 3 × 60 s not yet over
        assert not h.alarm_events("new")
        await h.advance(0.2)
        [new] = h.alarm_events("new")
        assert new.category == AlarmCategory.OFFLINE and new.device_id == "nb1" and new.point_id is None
        assert new.ts == pytest.approx(t0 + 180)
        await h.report("b", 90)  # any report brings it back
        assert h.alarm_events("cleared", alarm_id=new.alarm_id)


async def test_driver_reported_unavailability_is_the_same_offline_alarm(tmp_path):
    p = PointInfo(point_id="a", device_id="mb1", key="rc", point_class="residual_current", overrides={"expected_interval": 5})
    async with running(tmp_path / "db.sqlite", [p]) as h:
        await h.value("a", 10.0)
        await h.availability("mb1", False, "modbus timeout")
        [new] = h.alarm_events("new", category=AlarmCategory.OFFLINE)
        assert "modbus timeout" in new.message
        await h.advance(60)  # the heartbeat deadline passing changes nothing
        assert len(h.alarm_events("new", category=AlarmCategory.OFFLINE)) == 1
        await h.availability("mb1", True)
        assert h.alarm_events("cleared", alarm_id=new.alarm_id)


# -- two-detector confirmation --------------------------------------------------------------


async def test_two_detectors_in_one_room_confirm_a_fire(tmp_path):
    points = [smoke("s1", "room-1"), smoke("s2", "room-1"), smoke("s3", "room-2")]
    async with running(tmp_path / "db.sqlite", points) as h:
        await h.value("s1", True)
        [single] = h.alarm_events("new")
        assert (single.category, single.severity, single.point_id) == (AlarmCategory.FIRE, Severity.ALARM, "s1")
        assert "unconfirmed" in single.message
        await h.value("s3", True)  # another room does not confirm room-1
        assert not h.alarm_events("new", rule="two_detector:confirmed")
        await h.value("s2", True)
        [confirmed] = h.alarm_events("new", rule="two_detector:confirmed")
        assert confirmed.severity == Severity.FIRE and confirmed.location_id == "room-1"
        assert confirmed.point_id is None
        await h.value("s1", False)
        assert not h.alarm_events("cleared", rule="two_detector:confirmed")
        await h.value("s2", False)
        assert h.alarm_events("cleared", rule="two_detector:confirmed")


@pytest.mark.parametrize("gap, confirmed", [(299.0, True), (301.0, False)])
async def test_confirmation_window_for_detectors_that_restore(tmp_path, gap, confirmed):
    points = [smoke("s1", "room-1"), smoke("s2", "room-1")]
    async with running(tmp_path / "db.sqlite", points) as h:
        await h.value("s1", True)
        await h.advance(5)
        await h.value("s1", False)  # an NB smoke alarm that went quiet by itself
        await h.advance(gap - 5)
        await h.value("s2", True)
        assert bool(h.alarm_events("new", rule="two_detector:confirmed")) is confirmed


async def test_smoke_plus_heat_mode_needs_two_classes(tmp_path):
    config = AlarmConfig(rules=[RuleConfig(key="sh", type="two_detector", options={"distinct_classes": True})])
    points = [smoke("s1", "r"), smoke("s2", "r"), smoke("h1", "r", point_class="heat")]
    async with running(tmp_path / "db.sqlite", points, config=config) as h:
        await h.value("s1", True)
        await h.value("s2", True)
        assert not h.alarm_events("new", rule="sh:confirmed")
        await h.value("h1", True)
        assert h.alarm_events("new", rule="sh:confirmed")


# -- demand / feedback --------------------------------------------------------------------


def pump_points():
    return [
        PointInfo(point_id="run", device_id="pump1", key="running", point_class="pump_state", device_name="fire pump 1"),
        PointInfo(point_id="start", device_id="pump1", key="start", point_class="status"),
    ]


async def test_fire_pump_failed_to_start_after_120_s(tmp_path):
    async with running(tmp_path / "db.sqlite", pump_points()) as h:
        await h.value("run", False)
        await h.value("start", True)
        await h.advance(119.9)
        assert not h.alarm_events("new")
        await h.advance(0.2)
        [fault] = h.alarm_events("new")
        assert fault.category == AlarmCategory.FAULT and "fire pump failed to start" in fault.message
        assert fault.point_id == "run"
        await h.value("run", True)  # it finally runs
        assert h.alarm_events("cleared", alarm_id=fault.alarm_id)


async def test_pump_running_in_time_raises_nothing(tmp_path):
    async with running(tmp_path / "db.sqlite", pump_points()) as h:
        await h.value("run", False)
        await h.value("start", True)
        await h.advance(100)
        await h.value("run", True)
        await h.advance(500)
        assert not h.alarm_events()


def test_a_start_signal_read_before_the_command_does_not_withdraw_it():
    """Commands travel in the alarm lane, so the engine may see a linkage's start before an
    older poll of the start signal (False) still queued behind telemetry: that poll is not a
    withdrawal.  A reading received after the command is."""
    from firebus.sdk.rule import CommandInput, TickInput, ValueInput
    from firebus.sdk.rules import DemandFeedbackRule

    rule = DemandFeedbackRule()
    run = pump_points()[0]
    opts = rule.Options(**rule.defaults["pump_state"])
    state: dict = {}
    steps = [
        CommandInput(ts=1000.0, key="start", value=True),
        ValueInput(ts=999.5, key="start", value=False),  # polled before the command
        TickInput(ts=1120.0),
    ]
    for inp in steps:
        ev = rule.evaluate(run, opts, inp, state)
        state = ev.state
    assert [c.active for c in ev.conditions] == [True]
    state = {}
    for inp in [CommandInput(ts=1000.0, key="start", value=True),
                ValueInput(ts=1001.0, key="start", value=False),  # the operator stopped it
                TickInput(ts=1120.0)]:
        ev = rule.evaluate(run, opts, inp, state)
        state = ev.state
    assert not ev.conditions and ev.wake_at is None


async def test_commands_count_as_demands_and_a_failed_command_is_a_fault_at_once(tmp_path):
    async with running(tmp_path / "db.sqlite", pump_points()) as h:
        await h.value("run", False)
        h.bus.publish(CommandRequested(command_id="c1", device_id="pump1", point_key="start", value=True), Context())
        await h.settle()
        await h.advance(120.1)
        [timeout] = h.alarm_events("new")
        await h.value("run", True)
        await h.value("run", False)
        h.bus.publish(CommandResult(command_id="c2", device_id="pump1", point_key="start", ok=False, error="exception 4"))
        await h.settle()
        failed = [e for e in h.alarm_events("new") if e.alarm_id != timeout.alarm_id]
        assert len(failed) == 1 and "exception 4" in failed[0].message
