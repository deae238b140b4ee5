"""Threshold rule driven through the real bus: boundaries, delays, hysteresis, dedup."""

import pytest

from firebus.core.alarms import AlarmStatus
from firebus.sdk import AlarmCategory, Severity

from .harness import running
from .points import gas, rc

pytestmark = pytest.mark.anyio

ALARM = AlarmCategory.ELECTRICAL_ALARM
PRE = AlarmCategory.ELECTRICAL_PRE_ALARM


async def test_residual_current_95_and_105_percent_of_the_300_mA_default(tmp_path):
    async with running(tmp_path / "db.sqlite", [rc()]) as h:
        await h.value("rc1", 285.0)  # 95 % of 300 mA
        await h.advance(60)  # GB 14287.2 style: held for a minute
        assert not h.alarm_events("new", category=ALARM)
        # 285 mA is above the 200 mA pre-alarm (natural leakage ends at 200 mA)
        assert [e.category for e in h.alarm_events("new")] == [PRE]

        await h.value("rc1", 315.0)  # 105 %
        [new] = h.alarm_events("new", category=ALARM)
        assert new.value == 315.0 and new.severity == Severity.ALARM
        assert new.point_id == "rc1" and new.unit_id == "unit-a" and new.location_id == "room-101"
        assert "315mA ≥ alarm 300mA" in new.message


async def test_on_delay_just_short_of_and_just_past_the_limit(tmp_path):
    point = rc(rules={"threshold": {"on_delay": 30}})
    async with running(tmp_path / "db.sqlite", [point]) as h:
        t0 = h.clock.time()
        await h.value("rc1", 315.0)
        await h.advance(29.9)
        assert not h.alarm_events("new")
        await h.advance(0.2)
        new = {e.category: e for e in h.alarm_events("new")}
        assert set(new) == {PRE, ALARM}
        assert new[ALARM].ts == pytest.approx(t0 + 30)  # raised exactly when the delay ran out


async def test_on_delay_restarts_when_the_value_drops_back(tmp_path):
    point = rc(rules={"threshold": {"on_delay": 30}})
    async with running(tmp_path / "db.sqlite", [point]) as h:
        await h.value("rc1", 315.0)
        await h.advance(20)
        await h.value("rc1", 299.0)  # below 300: the alarm level's wait starts over
        await h.value("rc1", 316.0)
        t1 = h.clock.time()
        await h.advance(29)
        assert not h.alarm_events("new", category=ALARM)
        await h.advance(2)
        [new] = h.alarm_events("new", category=ALARM)
        assert new.ts == pytest.approx(t1 + 30)


async def test_hysteresis_and_off_delay(tmp_path):
    point = rc(rules={"threshold": {"off_delay": 10, "pre_alarm": 250}})
    async with running(tmp_path / "db.sqlite", [point]) as h:
        await h.value("rc1", 320.0)
        await h.value("rc1", 290.0)  # under 300 but within the 15 mA hysteresis
        await h.value("rc1", 286.0)
        assert not h.alarm_events("cleared", category=ALARM)
        await h.value("rc1", 280.0)  # < 285: off-delay starts
        await h.advance(9.9)
        assert not h.alarm_events("cleared", category=ALARM)
        await h.advance(0.2)
        [cleared] = h.alarm_events("cleared", category=ALARM)
        assert cleared.status == AlarmStatus.CLEARED_UNACK


async def test_repeats_update_one_alarm_with_count_last_and_peak(tmp_path):
    async with running(tmp_path / "db.sqlite", [rc()]) as h:
        for value in (315.0, 320.0, 330.0, 318.0):
            await h.value("rc1", value)
        assert len(h.alarm_events("new", category=ALARM)) == 1
        [alarm] = await h.engine.list_alarms(category=ALARM)
        assert (alarm.count, alarm.first_value, alarm.last_value, alarm.peak_value) == (4, 315.0, 318.0, 330.0)
        # a report of the same value again is a repeat too
        await h.report("rc1", 318.0)
        assert (await h.engine.get(alarm.id)).count == 5


async def test_gas_levels_update_one_gas_alarm(tmp_path):
    async with running(tmp_path / "db.sqlite", [gas()]) as h:
        await h.value("gas1", 24.0)
        assert not h.alarm_events()
        await h.value("gas1", 26.0)  # GB/T 50493 level 1 (25 %LEL)
        [new] = h.alarm_events("new")
        assert (new.category, new.severity) == (AlarmCategory.GAS, Severity.ALARM)
        await h.value("gas1", 55.0)  # level 2 (50 %LEL): same alarm, higher severity
        [update] = h.alarm_events("update")
        assert update.alarm_id == new.alarm_id and update.severity == Severity.FIRE
        await h.value("gas1", 10.0)
        [cleared] = h.alarm_events("cleared")
        assert cleared.alarm_id == new.alarm_id
        alarm = await h.engine.get(new.alarm_id)
        assert alarm.peak_severity == Severity.FIRE and alarm.peak_value == 55.0


async def test_low_pressure_uses_a_low_level(tmp_path):
    from firebus.sdk import PointInfo

    p = PointInfo(point_id="p1", device_id="pt1", key="pressure", point_class="pressure", unit="MPa")
    async with running(tmp_path / "db.sqlite", [p]) as h:
        await h.value("p1", 0.105)  # 105 % of 0.10 MPa: fine
        assert not h.alarm_events()
        await h.value("p1", 0.095)  # 95 %: low-pressure supervisory
        [new] = h.alarm_events("new")
        assert new.category == AlarmCategory.SUPERVISORY
        await h.value("p1", 0.105)  # inside the 0.01 MPa hysteresis: still low
        assert not h.alarm_events("cleared")
        await h.value("p1", 0.09)
        await h.value("p1", 0.12)
        assert len(h.alarm_events("cleared")) == 1
        assert (await h.engine.get(new.alarm_id)).peak_value == 0.09  # lower is worse


async def test_user_override_moves_the_threshold_and_bad_override_is_a_visible_fault(tmp_path):
    points = [rc("rc1", rules={"threshold": {"alarm": 400}}), rc("rc2", "em2", rules={"threshold": {"alarm": "x"}})]
    async with running(tmp_path / "db.sqlite", points) as h:
        await h.value("rc1", 390.0)
        assert not h.alarm_events("new", category=ALARM)
        await h.value("rc1", 401.0)
        assert h.alarm_events("new", category=ALARM, point_id="rc1")
        await h.value("rc2", 100.0)
        [fault] = h.alarm_events("new", category=AlarmCategory.FAULT, point_id="rc2")
        assert "rule configuration invalid" in fault.message and fault.rule == "threshold:config"
