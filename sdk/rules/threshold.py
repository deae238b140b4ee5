"""Threshold with levels (预警 pre-alarm / 报警 alarm), hysteresis, on- and off-delay.

Each level is tracked on its own: idle → pending-on → active → pending-off → idle.
*On-delay*: the value must stay past the level for ``on_delay`` seconds (a drop back
below restarts the wait).  *Hysteresis*: an active level clears only once the value
is ``hysteresis`` back on the safe side, so a value hovering on the line does not
flap.  *Off-delay*: it must stay there ``off_delay`` seconds.

Levels of the same category form one alarm whose severity follows the highest
active level (gas 25 %LEL → 50 %LEL updates one gas alarm).
"""

from __future__ import annotations

import math

from typing import Any, Literal, Mapping

import msgspec

from ..core_api import PointInfo
from ..rule import (
    AlarmRule,
    Condition,
    Evaluation,
    ReportInput,
    RuleConfigError,
    RuleInput,
    TickInput,
    ValueInput,
    is_number,
)
from ..vocab import AlarmCategory, PointClass, Severity


class Level(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    name: str
    value: float
    category: AlarmCategory
    severity: Severity
    direction: Literal["high", "low"] = "high"


class ThresholdOptions(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    levels: list[Level] = []
    hysteresis: float = 0.0  # absolute, in the point's unit
    on_delay: float = 0.0  # seconds the value must stay past a level
    off_delay: float = 0.0  # seconds it must stay back on the safe side


def _level(name: str, value: float, category: AlarmCategory, severity: Severity, direction: str = "high") -> dict:
    return {"name": name, "value": value, "category": category, "severity": severity, "direction": direction}


class ThresholdRule(AlarmRule):
    type_key = "threshold"
    Options = ThresholdOptions
    defaults = {
        # GB 50116-2013 9.2.3: residual-current alarm set at 300–500 mA; the clause's
        # explanation gives 100–200 mA as a circuit's natural leakage, so 200 mA is the
        # first value that is not "normal" (pre-alarm: a design choice on that basis).
        # Hysteresis 15 mA = the ±5 % alarm-value accuracy detectors claim [vendor].
        PointClass.RESIDUAL_CURRENT: {
            "levels": [
                _level("pre_alarm", 200, AlarmCategory.ELECTRICAL_PRE_ALARM, Severity.PRE_ALARM),
                _level("alarm", 300, AlarmCategory.ELECTRICAL_ALARM, Severity.ALARM),
            ],
            "hysteresis": 15,
        },
        # Cable temperature: 85 °C is the detectors' factory setting (range 55–140 °C,
        # GB 14287.3 devices, vendor datasheets [UNVERIFIED]).
        PointClass.TEMPERATURE: {
            "levels": [_level("alarm", 85, AlarmCategory.ELECTRICAL_ALARM, Severity.ALARM)],
            "hysteresis": 2,
        },
        # GB/T 50493-2019: combustible gas level 1 ≤ 25 %LEL, level 2 ≤ 50 %LEL.  Both are
        # gas alarms (GB 50116 §8.1: shown apart from fire); level 2 is the critical one.
        PointClass.GAS_LEL: {
            "levels": [
                _level("level_1", 25, AlarmCategory.GAS, Severity.ALARM),
                _level("level_2", 50, AlarmCategory.GAS, Severity.FIRE),
            ],
            "hysteresis": 1,
        },
        # GB 50974-2014 5.2.2: static pressure ≥ 0.10 MPa for class-1 high-rise public
        # buildings and sprinkler systems (0.07 / 0.15 MPa for other classes: override per
        # site).  1.0 MPa over-pressure is IoT-hydrant vendor practice, not a norm.
        PointClass.PRESSURE: {
            "levels": [
                _level("low", 0.10, AlarmCategory.SUPERVISORY, Severity.SUPERVISORY, "low"),
                _level("high", 1.0, AlarmCategory.SUPERVISORY, Severity.SUPERVISORY),
            ],
            "hysteresis": 0.01,
        },
    }

    def merge_options(self, point: PointInfo) -> dict[str, Any]:
        """Also accept the short form ``{"alarm": 400}`` to move one level's value."""
        raw = super().merge_options(point)
        levels = [dict(level) for level in raw.get("levels", [])]
        names = {level.get("name") for level in levels}
        for name in list(raw):
            if name in names:
                value = raw.pop(name)
                if not is_number(value):
                    raise RuleConfigError(f"rule {self.key!r}: level {name!r} must be a number, got {value!r}")
                for level in levels:
                    if level.get("name") == name:
                        level["value"] = value
        raw["levels"] = levels
        return raw

    def check_options(self, opts: ThresholdOptions) -> None:
        if opts.hysteresis < 0 or opts.on_delay < 0 or opts.off_delay < 0:
            raise RuleConfigError(f"rule {self.key!r}: hysteresis and delays must not be negative")
        names = [level.name for level in opts.levels]
        if len(set(names)) != len(names):
            raise RuleConfigError(f"rule {self.key!r}: level names repeat: {names}")

    def evaluate(self, point: PointInfo, opts: ThresholdOptions, inp: RuleInput, state: Mapping[str, Any]) -> Evaluation:
        value: Any = state.get("value")  # a number, checked below before it is used
        if isinstance(inp, ValueInput):
            if inp.fault is not None or not is_number(inp.value):
                # A faulty reading says nothing about the quantity: hold every level.
                return Evaluation(state=dict(state), wake_at=_next_wake(opts, state))
            value = inp.value
        elif not isinstance(inp, (ReportInput, TickInput)) or not is_number(value) or getattr(inp, "fault", None):
            return Evaluation(state=dict(state), wake_at=_next_wake(opts, state))

        ts = inp.ts
        old_levels: Mapping[str, Any] = state.get("levels", _IDLE)
        new_levels: dict[str, dict[str, Any]] = {}
        conditions: list[Condition] = []
        for level in opts.levels:
            phase, since = _step(level, opts, value, ts, old_levels.get(level.name))
            if phase != "idle":
                new_levels[level.name] = {"phase": phase, "since": since}
            active = phase in ("active", "off")
            if active:
                sign = "≥" if level.direction == "high" else "≤"
                name = point.name or point.key
                message = f"{name} {value:g}{point.unit} {sign} {level.name} {level.value:g}{point.unit}"
                message_zh = f"{name} {value:g}{point.unit} {sign} {_LEVEL_ZH.get(level.name, level.name)} " \
                             f"{level.value:g}{point.unit}"
            else:
                message = message_zh = ""
            conditions.append(
                Condition(
                    category=level.category,
                    severity=level.severity,
                    active=active,
                    value=value,
                    message=message,
                    message_zh=message_zh,
                    lower_is_worse=level.direction == "low",
                )
            )
        # Idle levels keep no state: a quantity far from its settings changes nothing here, so
        # nothing is checkpointed for it (most points, most of the time).  The value is kept
        # while a level is timing or active: a tick or a repeat needs it.
        new_state = {"value": value, "levels": new_levels} if new_levels else {}
        steady = None
        if not new_levels:  # every level idle: steady until a value crosses the nearest setting
            lo, hi = -math.inf, math.inf
            for level in opts.levels:
                if level.direction == "high":
                    hi = min(hi, level.value)
                else:
                    lo = max(lo, level.value)
            steady = (lo, hi)
        return Evaluation(state=new_state, conditions=conditions, wake_at=_next_wake(opts, new_state),
                          steady=steady)


_IDLE: Mapping[str, Any] = {}
_LEVEL_ZH = {"pre_alarm": "预警值", "alarm": "报警值", "level_1": "一级报警值", "level_2": "二级报警值",
             "low": "低限", "high": "高限"}


def _past(level: Level, value: float) -> bool:
    return value >= level.value if level.direction == "high" else value <= level.value


def _clear(level: Level, value: float, hysteresis: float) -> bool:
    return value < level.value - hysteresis if level.direction == "high" else value > level.value + hysteresis


def _step(level: Level, opts: ThresholdOptions, value: float, ts: float, old: Any) -> tuple[str, float]:
    phase, since = ("idle", ts) if not old else (old["phase"], old["since"])
    if phase == "idle":
        if _past(level, value):
            return ("active", ts) if opts.on_delay <= 0 else ("on", ts)
        return "idle", ts
    if phase == "on":
        if not _past(level, value):
            return "idle", ts
        return ("active", ts) if ts - since >= opts.on_delay else ("on", since)
    if phase == "active":
        if _clear(level, value, opts.hysteresis):
            return ("idle", ts) if opts.off_delay <= 0 else ("off", ts)
        return "active", since
    # phase == "off"
    if not _clear(level, value, opts.hysteresis):
        return "active", since
    return ("idle", ts) if ts - since >= opts.off_delay else ("off", since)


def _next_wake(opts: ThresholdOptions, state: Mapping[str, Any]) -> float | None:
    wakes = []
    for entry in state.get("levels", {}).values():
        if entry["phase"] == "on":
            wakes.append(entry["since"] + opts.on_delay)
        elif entry["phase"] == "off":
            wakes.append(entry["since"] + opts.off_delay)
    return min(wakes) if wakes else None
