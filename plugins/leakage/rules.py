"""Alarm rules of the leakage plugin.

The standard thresholds (300 mA alarm, 200 mA pre-alarm, 85 °C) are the core's
generic ``threshold`` defaults for the ``residual_current`` / ``temperature``
classes (sdk/rules/threshold.py, with sources); this module adds what is
specific to electrical-fire detectors:

* ``leakage.device_flags``: the detector's own alarm flags and wiring faults.  A
  detector set to 500 mA that alarms is shown even if the platform's threshold
  is elsewhere (GB 14287.1 4.3.4: the monitoring equipment shows what the
  detectors report);
* ``leakage.jump``: 瞬间漏电流变化, a sudden change of residual current between two
  consecutive readings, with the values before and after, even below threshold.
"""

from __future__ import annotations

from typing import Any, Literal, Mapping

import msgspec

from firebus.sdk import AlarmCategory, PointClass, Severity
from firebus.sdk.channels import FlagRule, ForDrivers, where
from firebus.sdk.core_api import PointInfo
from firebus.sdk.rule import AlarmRule, Condition, Evaluation, RuleConfigError, RuleInput, TickInput, ValueInput, is_number

DRIVERS = ("leakage.",)

ELECTRICAL_DEVICE_ALARM = "electrical_device_alarm"
WIRING_FAULT = "wiring_fault"
ALARM_SETTING = "alarm_setting"
ALARM_VALUE = "alarm_value"
POINT_CLASSES = [ELECTRICAL_DEVICE_ALARM, WIRING_FAULT, ALARM_SETTING, ALARM_VALUE]


class LeakageFlagRule(FlagRule):
    type_key = "leakage.device_flags"
    drivers = DRIVERS
    defaults = {
        # GB 14287.1-2014: monitoring equipment gives a monitoring alarm for each detector
        # alarm and shows it in the fire-control room (GB 50116-2013 9.1.5).
        ELECTRICAL_DEVICE_ALARM: {
            "category": AlarmCategory.ELECTRICAL_ALARM,
            "severity": Severity.ALARM,
            "message": "detector alarm (detector's own setting)",
        },
        # A broken transformer or probe lead: the channel is blind, which is a fault.
        WIRING_FAULT: {"category": AlarmCategory.FAULT, "severity": Severity.FAULT, "message": "sensor wiring fault"},
    }


class JumpOptions(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    jump: float  # change between two consecutive readings, in the point's unit
    direction: Literal["rise", "both"] = "rise"
    hold: float = 300.0  # seconds the alarm stays after the last jump
    category: AlarmCategory = AlarmCategory.ELECTRICAL_PRE_ALARM
    severity: Severity = Severity.PRE_ALARM


class LeakageJumpRule(ForDrivers, AlarmRule):
    """A sudden change between two consecutive valid readings, whatever the time between them."""

    type_key = "leakage.jump"
    Options = JumpOptions
    drivers = DRIVERS
    defaults = {
        # Design choice, not a norm: GB 50116-2013 9.2.3 (explanation) puts a circuit's
        # natural leakage at 100–200 mA; a step of half that band from one reading to the
        # next is an insulation event, not drift.  Configure per site (option ``jump``).
        PointClass.RESIDUAL_CURRENT: {"jump": 50},
    }

    def check_options(self, opts: JumpOptions) -> None:
        if opts.jump <= 0 or opts.hold < 0:
            raise RuleConfigError(f"rule {self.key!r}: jump must be > 0 and hold ≥ 0")

    def evaluate(self, point: PointInfo, opts: JumpOptions, inp: RuleInput, state: Mapping[str, Any]) -> Evaluation:
        last = state.get("last")
        until = state.get("until")
        jump = state.get("jump")
        if isinstance(inp, ValueInput) and inp.key == point.key:
            if inp.fault is not None or not is_number(inp.value):
                return Evaluation(state=dict(state), wake_at=until)  # a fault is no "before" value
            value = float(inp.value)
            if last is not None:
                delta = value - last
                if delta >= opts.jump or (opts.direction == "both" and -delta >= opts.jump):
                    until, jump = inp.ts + opts.hold, [last, value]
            last = value
        elif not isinstance(inp, TickInput):
            return Evaluation(state=dict(state), wake_at=until)
        active = until is not None and inp.ts < until
        new_state: dict[str, Any] = {"last": last}
        if active:
            new_state.update(until=until, jump=jump)
        before, after = (jump or [None, None])
        condition = Condition(
            category=opts.category,
            severity=opts.severity,
            active=active,
            value=after if active else None,
            message=(
                f"{where(point)}: sudden leakage change {before:g} → {after:g}{point.unit} "
                f"({after - before:+g}{point.unit}) between two readings"
            )
            if active
            else "",
            message_zh=f"{where(point)}：剩余电流突变 {before:g} → {after:g}{point.unit}（相邻两次读数相差 {after - before:+g}{point.unit}）"
            if active
            else "",
        )
        return Evaluation(state=new_state, conditions=[condition], wake_at=until if active else None)


RULES: list[type] = [LeakageFlagRule, LeakageJumpRule]
