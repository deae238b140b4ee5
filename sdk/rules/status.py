"""Device-reported status: the device's own alarm, fault, tamper, low-battery, wiring bits.

The device already decided; the platform must not second-guess it, only name it.
A status point's value is matched three ways, each giving its own alarm
(``group`` = the flag's name, so "fault" and "wiring fault" are two alarms):

* ``flags``: bit masks over an integer status word (HKT-SD-100: 0x02 smoke alarm,
  0x04 fault, 0x10 tamper, 0x100 low voltage; Acrel ARCM300T wiring-fault byte);
* ``values``: exact values of an enum status (Milesight GS524N event nibble: 1 alarm,
  4 low battery, 5 fault, 10 removed; carrier NB smoke ``category`` 1 alarm, 2 fault);
* ``on_true``: a boolean point (class ``fault``, ``tamper``, ``smoke``) that is true.
"""

from __future__ import annotations

from typing import Any, Mapping

import msgspec

from ..core_api import PointInfo
from ..rule import AlarmRule, Condition, Evaluation, RuleInput, ValueInput, truthy
from ..vocab import AlarmCategory, PointClass, Severity


class Flag(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    name: str
    category: AlarmCategory
    severity: Severity
    mask: int | None = None  # bit mask over an integer status word
    values: list[str] = []  # or: any of these exact values (compared as strings)
    message: str = ""


class StatusOptions(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    flags: list[Flag] = []
    on_true: Flag | None = None


def _flag(name: str, category: AlarmCategory, severity: Severity, message: str, **kw: Any) -> dict:
    return {"name": name, "category": category, "severity": severity, "message": message, **kw}


class DeviceStatusRule(AlarmRule):
    type_key = "device_status"
    Options = StatusOptions
    defaults = {
        # A boolean fault/tamper point needs no table.  Tamper (detector removed from its
        # base, GS524N event 10) is a fault: the room is no longer watched.
        PointClass.FAULT: {"on_true": _flag("fault", AlarmCategory.FAULT, Severity.FAULT, "device fault")},
        PointClass.TAMPER: {
            "on_true": _flag("tamper", AlarmCategory.FAULT, Severity.FAULT, "tamper: detector removed or opened")
        },
    }

    def evaluate(self, point: PointInfo, opts: StatusOptions, inp: RuleInput, state: Mapping[str, Any]) -> Evaluation:
        if not isinstance(inp, ValueInput) or inp.key != point.key:
            return Evaluation(state=dict(state))
        if inp.fault is not None:
            return Evaluation(state=dict(state))  # an invalid status word is not "all clear"
        value = inp.value
        word = _as_int(value)
        conditions = []
        for flag in opts.flags:
            if flag.mask is not None:
                on = word is not None and bool(word & flag.mask)
            else:
                on = str(value) in flag.values
            conditions.append(_condition(point, flag, on, value))
        if opts.on_true is not None:
            conditions.append(_condition(point, opts.on_true, truthy(value), value))
        return Evaluation(state={"value": value}, conditions=conditions)


def _condition(point: PointInfo, flag: Flag, on: bool, value: Any) -> Condition:
    return Condition(
        category=flag.category,
        severity=flag.severity,
        active=on,
        value=value,
        group=flag.name,
        message=f"{point.device_name or point.device_id}: {flag.message or flag.name}" if on else "",
    )


def _as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            return int(value, 0)
        except ValueError:
            return None
    return None
