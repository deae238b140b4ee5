"""Pure rule logic (no I/O): the gas and leakage rules evaluated as functions, time given explicitly."""

from __future__ import annotations

from firebus.plugins.gas.rules import GasChannelStatusRule, GasFeedbackRule, GasMaintenanceRule
from firebus.plugins.leakage.rules import LeakageJumpRule
from firebus.sdk import AlarmCategory, PointInfo, Severity
from firebus.sdk.rule import CommandInput, TickInput, ValueInput


def point(key: str, point_class: str, driver: str = "gas.modbus", unit: str = "") -> PointInfo:
    return PointInfo(point_id=f"p-{key}", device_id="d1", key=key, point_class=point_class, unit=unit,
                     name=key, device_name="det", driver=driver, location_name="Kitchen 2")


def run(rule, p, inputs):
    state: dict = {}
    out = []
    opts = rule.options_for(p)
    for inp in inputs:
        ev = rule.evaluate(p, opts, inp, state)
        state = ev.state
        out.append(ev)
    return out


def test_jump_needs_a_step_between_consecutive_readings_and_clears_after_hold() -> None:
    rule = LeakageJumpRule()
    p = point("residual_current", "residual_current", driver="leakage.modbus", unit="mA")
    evs = run(rule, p, [
        ValueInput(ts=0, key=p.key, value=100),
        ValueInput(ts=10, key=p.key, value=149),  # +49: below the 50 mA default
        ValueInput(ts=20, key=p.key, value=None, fault="open_circuit"),  # a fault is no "before"
        ValueInput(ts=30, key=p.key, value=199),  # +50 from the last valid value: a jump
        TickInput(ts=329),
        TickInput(ts=330),
    ])
    assert [c.active for c in evs[1].conditions] == [False]
    assert evs[3].conditions[0].active and "149 → 199mA (+50mA)" in evs[3].conditions[0].message
    assert evs[3].wake_at == 330
    assert evs[4].conditions[0].active
    assert not evs[5].conditions[0].active


def test_jump_rule_only_for_leakage_devices_and_drops_only_when_asked() -> None:
    rule = LeakageJumpRule()
    assert not rule.applies_to(point("residual_current", "residual_current", driver="other.modbus"))
    both = LeakageJumpRule("j", {"direction": "both"})
    p = point("residual_current", "residual_current", driver="leakage.modbus")
    evs = run(both, p, [ValueInput(ts=0, key=p.key, value=300), ValueInput(ts=1, key=p.key, value=200)])
    assert evs[1].conditions[0].active
    evs = run(rule, p, [ValueInput(ts=0, key=p.key, value=300), ValueInput(ts=1, key=p.key, value=200)])
    assert not evs[1].conditions[0].active


def test_channel_status_levels_share_one_gas_alarm_and_fault_is_separate() -> None:
    rule = GasChannelStatusRule()
    p = point("gas_lel_2_status", "gas_channel_status")
    evs = run(rule, p, [ValueInput(ts=0, key=p.key, value=s) for s in ("level_1", "level_2", "fault", "normal")])

    def active(ev):
        return {(str(c.category), int(c.severity)) for c in ev.conditions if c.active}

    assert active(evs[0]) == {("gas", Severity.ALARM)}
    assert active(evs[1]) == {("gas", Severity.FIRE)}
    assert active(evs[2]) == {("fault", Severity.FAULT)}
    assert active(evs[3]) == set()


def test_feedback_defaults_per_class_and_partial_site_options() -> None:
    rule = GasFeedbackRule("gas.feedback", {"timeout": 5})
    valve = point("valve_closed", "valve_state")
    fan = point("fan_running", "fan_state")
    assert rule.options_for(valve).demand_key == "valve_close" and rule.options_for(valve).timeout == 5
    assert rule.options_for(fan).demand_key == "fan_start"
    assert not rule.applies_to(point("valve_closed", "valve_state", driver="water.modbus"))
    evs = run(rule, valve, [
        CommandInput(ts=0, key="valve_close", value=True),
        TickInput(ts=5),
    ])
    assert evs[0].wake_at == 5
    (cond,) = evs[1].conditions
    assert cond.active and cond.category is AlarmCategory.FAULT and "valve failed to close" in cond.message


def test_maintenance_reminder_then_expired() -> None:
    rule = GasMaintenanceRule()
    p = point("sensor_life_days", "gas_sensor_life")
    evs = run(rule, p, [ValueInput(ts=0, key=p.key, value=v) for v in (31, 30, 0)])
    assert [c.active for c in evs[0].conditions] == [False, False]
    assert [c.active for c in evs[1].conditions] == [True, False]
    assert [c.active for c in evs[2].conditions] == [False, True]
    assert "sensor life expired" in evs[2].conditions[1].message
