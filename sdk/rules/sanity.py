"""Sensor sanity: out-of-range, non-numeric or vendor sentinel values are a sensor fault.

A *gate* rule: it runs before the others on each value; when it finds the value
invalid the other rules receive it as a fault (thresholds hold, they neither
raise nor clear), so 0xFFFF mA is a "sensor fault", never a 65 535 mA leak.
A value the device itself flagged (``StateChanged.fault``) is a fault too.

Ranges are *physical plausibility* bounds, not alarm limits: a real leak above
the detector's range must still alarm, so upper bounds are left open where a
high value can be real (gas over range is dangerous, not a sensor fault).
"""

from __future__ import annotations

import math

from typing import Any, Mapping

import msgspec

from ..core_api import PointInfo
from ..rule import AlarmRule, Condition, Evaluation, RuleInput, ValueInput, is_number
from ..vocab import AlarmCategory, PointClass, Severity

# 0xFFFF "device fault" and 0xFFFE "open circuit" as an RD100 earth-resistance
# device returns them (builtin_device_templates.cpp, fire-domain.md §8.2).
MODBUS_SENTINELS: dict[str, str] = {"65535": "0xFFFF (device fault)", "65534": "0xFFFE (open circuit)"}


class SanityOptions(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    min: float | None = None
    max: float | None = None
    sentinels: dict[str, str] = {}  # value (as text) -> meaning
    numeric: bool = True  # a non-number is a fault


class SensorSanityRule(AlarmRule):
    type_key = "sensor_sanity"
    Options = SanityOptions
    gate = True
    defaults = {
        # Leakage cannot be negative; no upper bound (a 2 A leak is a leak).
        PointClass.RESIDUAL_CURRENT: {"min": 0, "sentinels": MODBUS_SENTINELS},
        # Design choice: beyond the 55–140 °C setting range of GB 14287.3 detectors and the
        # span of the NTC/PT100 probes they use; outside it the probe is broken or open.
        PointClass.TEMPERATURE: {"min": -40, "max": 250, "sentinels": MODBUS_SENTINELS},
        # Small negative drift is normal for catalytic sensors; over-range is NOT a fault.
        PointClass.GAS_LEL: {"min": -5, "sentinels": MODBUS_SENTINELS},
        PointClass.PRESSURE: {"min": -0.1, "max": 10, "sentinels": MODBUS_SENTINELS},
        PointClass.WATER_LEVEL: {"min": -0.5, "sentinels": MODBUS_SENTINELS},
    }

    def evaluate(self, point: PointInfo, opts: SanityOptions, inp: RuleInput, state: Mapping[str, Any]) -> Evaluation:
        if not isinstance(inp, ValueInput) or inp.key != point.key:
            return Evaluation(state=dict(state))
        why = _problem(inp.value, inp.fault, opts, point.unit)
        steady = _steady(opts) if why is None and not state.get("fault") else None
        condition = Condition(
            category=AlarmCategory.FAULT,
            severity=Severity.FAULT,
            active=why is not None,
            value=inp.value,
            group="sensor",
            message=f"{point.name or point.key}: sensor fault: {why}" if why else "",
            message_zh=f"{point.name or point.key}：传感器故障（{why}）" if why else "",
        )
        return Evaluation(state={"fault": why}, conditions=[condition], invalid=why, steady=steady)


def _steady(opts: SanityOptions) -> tuple[float, float]:
    """The plausible range with no sentinel inside it: values there are always valid."""
    lo = opts.min if opts.min is not None else -math.inf
    hi = opts.max if opts.max is not None else math.inf
    for raw in opts.sentinels:
        try:
            v = float(raw)
        except ValueError:
            continue
        if lo <= v <= hi:
            if v - lo < hi - v:
                lo = v
            else:
                hi = v
    return lo, hi


def _problem(value: Any, fault: str | None, opts: SanityOptions, unit: str) -> str | None:
    if fault is not None:
        return f"device flagged the value: {fault}"
    if opts.sentinels and (type(value) is not float or value.is_integer()):
        # Only whole numbers (or text) can be sentinels: a reading like 20.1 skips the lookup.
        key = str(int(value)) if is_number(value) and float(value).is_integer() else str(value)
        if key in opts.sentinels:
            return f"sentinel {opts.sentinels[key]}"
    if not is_number(value):
        return f"not a number: {value!r}" if opts.numeric else None
    if opts.min is not None and value < opts.min:
        return f"{value:g}{unit} below the plausible range (min {opts.min:g}{unit})"
    if opts.max is not None and value > opts.max:
        return f"{value:g}{unit} above the plausible range (max {opts.max:g}{unit})"
    return None
