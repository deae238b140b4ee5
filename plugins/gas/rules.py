"""Alarm rules of the gas plugin.

The two concentration levels are the core's generic ``threshold`` defaults for
``gas_lel`` (GB/T 50493-2019: level 1 ≤ 25 %LEL, level 2 ≤ 50 %LEL, category
``gas``, never ``fire``: GB 50116-2013 §8.1); per device they are point
overrides (``rules.threshold.level_1``).  This module adds:

* ``gas.device_flags``: the detector's own level-1/level-2 alarms, sensor fault,
  over range, end of life, controller power faults;
* ``gas.channel_status``: a controller channel's status code (level 1/2, fault …);
* ``gas.feedback``: a close/start command without valve/fan feedback in time is
  a fault ("valve failed to close");
* ``gas.maintenance``: sensor life and calibration reminders.
"""

from __future__ import annotations

from typing import Any, Mapping

import msgspec

from firebus.sdk import AlarmCategory, PointClass, Severity
from firebus.sdk.channels import FlagRule, ForDrivers, where
from firebus.sdk.core_api import PointInfo
from firebus.sdk.rule import AlarmRule, Condition, Evaluation, RuleConfigError, RuleInput, ValueInput, is_number
from firebus.sdk.rules import DemandFeedbackRule, DemandOptions

from .classes import (
    CALIBRATION_DUE,
    GAS_CHANNEL_STATUS,
    GAS_DEVICE_ALARM_1,
    GAS_DEVICE_ALARM_2,
    GAS_END_OF_LIFE,
    GAS_OVER_RANGE,
    GAS_POWER_FAULT,
    GAS_SENSOR_FAULT,
    SENSOR_LIFE,
)

DRIVERS = ("gas.",)


def _flag(category: AlarmCategory, severity: Severity, message: str) -> dict[str, Any]:
    return {"category": category, "severity": severity, "message": message}


class GasFlagRule(FlagRule):
    type_key = "gas.device_flags"
    drivers = DRIVERS
    defaults = {
        # Same levels and severities as the platform thresholds (sdk/rules/threshold.py):
        # level 1 ALARM, level 2 the critical one; both category gas (GB 50116 §8.1).
        GAS_DEVICE_ALARM_1: _flag(AlarmCategory.GAS, Severity.ALARM, "gas level-1 alarm (detector)"),
        GAS_DEVICE_ALARM_2: _flag(AlarmCategory.GAS, Severity.FIRE, "gas level-2 alarm (detector)"),
        # Beyond full scale the real concentration is unknown and at least 100 %LEL: the
        # most urgent gas condition, not a sensor fault.
        GAS_OVER_RANGE: _flag(AlarmCategory.GAS, Severity.FIRE, "gas concentration over range"),
        GAS_SENSOR_FAULT: _flag(AlarmCategory.FAULT, Severity.FAULT, "gas sensor fault"),
        GAS_END_OF_LIFE: _flag(AlarmCategory.FAULT, Severity.FAULT, "gas sensor at end of life: replace it"),
        # GB 16808 commissioning: main / backup power faults reported within 100 s.
        GAS_POWER_FAULT: _flag(AlarmCategory.FAULT, Severity.FAULT, "gas controller power fault"),
    }


class StateAlarm(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    category: AlarmCategory
    severity: Severity
    message: str


class ChannelStatusOptions(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    states: dict[str, StateAlarm]  # status name -> the alarm it means


class GasChannelStatusRule(ForDrivers, AlarmRule):
    """A controller channel's status code: one alarm per category, at the state's severity."""

    type_key = "gas.channel_status"
    Options = ChannelStatusOptions
    drivers = DRIVERS
    defaults = {
        GAS_CHANNEL_STATUS: {
            "states": {
                "level_1": _flag(AlarmCategory.GAS, Severity.ALARM, "gas level-1 alarm (controller)"),
                "level_2": _flag(AlarmCategory.GAS, Severity.FIRE, "gas level-2 alarm (controller)"),
                "over_range": _flag(AlarmCategory.GAS, Severity.FIRE, "gas concentration over range (controller)"),
                "fault": _flag(AlarmCategory.FAULT, Severity.FAULT, "detector loop fault (controller)"),
            }
        }
    }

    def evaluate(self, point: PointInfo, opts: ChannelStatusOptions, inp: RuleInput, state: Mapping[str, Any]) -> Evaluation:
        if not isinstance(inp, ValueInput) or inp.key != point.key or inp.fault is not None:
            return Evaluation(state=dict(state))
        current = opts.states.get(str(inp.value))
        conditions = []
        for category in {s.category for s in opts.states.values()}:
            if current is not None and current.category is category:
                conditions.append(Condition(category=category, severity=current.severity, active=True,
                                            value=inp.value, message=f"{where(point)}: {current.message}"))
            else:
                worst = max(s.severity for s in opts.states.values() if s.category is category)
                conditions.append(Condition(category=category, severity=worst, active=False, value=inp.value))
        return Evaluation(state={"value": inp.value}, conditions=conditions)


class GasFeedbackOptions(DemandOptions, frozen=True, forbid_unknown_fields=True):
    # Defaults so a site can write just ``{timeout: 30}``: the demand key comes from the
    # point class (valve or fan) unless given.
    demand_key: str = ""
    timeout: float = 60.0


class GasFeedbackRule(ForDrivers, DemandFeedbackRule):
    """Valve / fan command without feedback in time → fault (on the feedback point)."""

    type_key = "gas.feedback"
    Options = GasFeedbackOptions
    drivers = DRIVERS
    defaults = {
        # Design choice, not a norm: motorised gas shut-off valves close in seconds; 60 s
        # leaves room for slow ball valves (same default as the generic demand_feedback).
        PointClass.VALVE_STATE: {
            "demand_key": "valve_close",
            "timeout": 60,
            "expect": ["true", "closed", "close", "1"],
            "message": "valve failed to close",
        },
        PointClass.FAN_STATE: {
            "demand_key": "fan_start",
            "timeout": 60,
            "expect": ["true", "running", "run", "on", "1"],
            "message": "exhaust fan failed to start",
        },
    }

    def check_options(self, opts: GasFeedbackOptions) -> None:
        super().check_options(opts)
        if not opts.demand_key:
            raise RuleConfigError(f"rule {self.key!r}: demand_key is empty (no default for this point class)")


class MaintenanceOptions(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    warn_days: float  # remind this many days ahead
    what: str  # "sensor life" / "calibration"


class GasMaintenanceRule(ForDrivers, AlarmRule):
    """Days left → a supervisory reminder within ``warn_days``, a fault once at or below 0."""

    type_key = "gas.maintenance"
    Options = MaintenanceOptions
    drivers = DRIVERS
    defaults = {
        # Design choice: a month's notice to order a sensor or book a calibration.
        SENSOR_LIFE: {"warn_days": 30, "what": "sensor life"},
        CALIBRATION_DUE: {"warn_days": 30, "what": "calibration"},
    }

    def check_options(self, opts: MaintenanceOptions) -> None:
        if opts.warn_days < 0:
            raise RuleConfigError(f"rule {self.key!r}: warn_days must be ≥ 0")

    def evaluate(self, point: PointInfo, opts: MaintenanceOptions, inp: RuleInput, state: Mapping[str, Any]) -> Evaluation:
        if not isinstance(inp, ValueInput) or inp.key != point.key or inp.fault is not None or not is_number(inp.value):
            return Evaluation(state=dict(state))
        days = inp.value
        due = days <= opts.warn_days
        over = days <= 0
        text = "expired" if opts.what == "sensor life" else "overdue"
        return Evaluation(
            state={"days": days},
            conditions=[
                Condition(category=AlarmCategory.SUPERVISORY, severity=Severity.SUPERVISORY, active=due and not over,
                          value=days, group="reminder",
                          message=f"{where(point)}: {opts.what} due in {days:g} days" if due else ""),
                Condition(category=AlarmCategory.FAULT, severity=Severity.FAULT, active=over, value=days,
                          group="expired", message=f"{where(point)}: {opts.what} {text} ({days:g} days)" if over else ""),
            ],
        )


RULES: list[type] = [GasFlagRule, GasChannelStatusRule, GasFeedbackRule, GasMaintenanceRule]
