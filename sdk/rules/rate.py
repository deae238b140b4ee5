"""Rate of rise / sudden jump: the value rose by ``rise`` or more within ``window`` seconds.

Catches a leak that grows fast while still under the absolute threshold (an
insulation failure in progress) and rate-of-rise heat behaviour.  The condition
holds while the rise is inside the window and clears ``hold`` seconds after the
last sample that showed it (so a single jump produces one alarm, not a flicker).
"""

from __future__ import annotations

from typing import Any, Mapping

import msgspec

from ..core_api import PointInfo
from ..rule import AlarmRule, Condition, Evaluation, RuleConfigError, RuleInput, TickInput, ValueInput, is_number
from ..vocab import AlarmCategory, PointClass, Severity


class RateOptions(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    rise: float  # in the point's unit
    window: float  # seconds
    hold: float = 60.0  # seconds the alarm stays after the last rising sample
    category: AlarmCategory = AlarmCategory.ELECTRICAL_PRE_ALARM
    severity: Severity = Severity.PRE_ALARM
    max_samples: int = 256  # bound on kept samples per point


class RateOfRiseRule(AlarmRule):
    type_key = "rate_of_rise"
    Options = RateOptions
    defaults = {
        # Design choice, not a norm: GB 50116 9.2.3's explanation puts a circuit's natural
        # leakage at 100–200 mA, so a 100 mA rise within a minute is more than the whole
        # natural band arriving at once.
        PointClass.RESIDUAL_CURRENT: {"rise": 100, "window": 60},
    }

    def check_options(self, opts: RateOptions) -> None:
        if opts.rise <= 0 or opts.window <= 0 or opts.hold < 0 or opts.max_samples < 2:
            raise RuleConfigError(f"rule {self.key!r}: rise and window must be > 0, hold ≥ 0, max_samples ≥ 2")

    def evaluate(self, point: PointInfo, opts: RateOptions, inp: RuleInput, state: Mapping[str, Any]) -> Evaluation:
        samples: list[list[float]] = [s for s in state.get("samples", []) if s[0] >= inp.ts - opts.window]
        until = state.get("until")
        jump: Any = state.get("jump")  # [from, to] while a jump holds
        if isinstance(inp, ValueInput) and inp.fault is None and is_number(inp.value):
            lowest = min((s[1] for s in samples), default=None)
            samples.append([inp.ts, float(inp.value)])
            samples = samples[-opts.max_samples :]
            if lowest is not None and inp.value - lowest >= opts.rise:
                until = inp.ts + opts.hold
                jump = [lowest, float(inp.value)]
        elif not isinstance(inp, TickInput):
            return Evaluation(state=dict(state), wake_at=until)
        active = until is not None and jump is not None and inp.ts < until
        new_state: dict[str, Any] = {"samples": samples}
        conditions: list[Condition] = []
        if active:
            new_state.update(until=until, jump=jump)
            conditions.append(
                Condition(
                    category=opts.category,
                    severity=opts.severity,
                    active=True,
                    value=jump[1],
                    message=f"{point.name or point.key} rose {jump[1] - jump[0]:g}{point.unit} "
                    f"({jump[0]:g} → {jump[1]:g}) within {opts.window:g} s",
                    message_zh=f"{point.name or point.key} {opts.window:g} 秒内上升 {jump[1] - jump[0]:g}{point.unit}"
                    f"（{jump[0]:g} → {jump[1]:g}）",
                )
            )
        else:
            conditions.append(Condition(category=opts.category, severity=opts.severity, active=False))
        return Evaluation(state=new_state, conditions=conditions, wake_at=until if active else None)
