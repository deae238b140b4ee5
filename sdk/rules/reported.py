"""Offline detection for push devices that report their own heartbeat period.

NB-IoT smoke alarms and hydrant monitors say how often they will report
(fire-domain.md §3.2: "heartbeat period" in the periodic message), and the
period differs per device and changes when someone reconfigures one.  This rule
learns it from the device: a value of ``interval_key`` (seconds) sets the
period, any report of any point of the device proves it alive, and no report
within ``misses`` × period (+ ``grace``) raises one offline alarm per device.

It applies to every point of the drivers named in ``drivers`` (type-key
prefixes), so every message counts as a sign of life, whichever point it
carries.  Without a known period (polled devices) the driver's availability
(Modbus timeouts) raises and clears the same offline alarm.  Vendors subclass with their own ``type_key`` and ``drivers``; an
explicit ``interval`` (site file or a point's override) wins over the reported one.
"""

from __future__ import annotations

from typing import Any, ClassVar, Mapping

from ..core_api import PointInfo
from ..rule import (
    Evaluation,
    RuleInput,
    ValueInput,
    is_number,
)
from .heartbeat import HeartbeatOptions, HeartbeatRule


class ReportedHeartbeatRule(HeartbeatRule):
    type_key = "reported_heartbeat"
    Options = HeartbeatOptions
    #: driver type-key prefixes this rule watches (e.g. ``("smoke.",)``)
    drivers: ClassVar[tuple[str, ...]] = ()
    #: the point carrying the device's own reporting period, in seconds
    interval_key: ClassVar[str] = "heartbeat_interval"
    #: option values before the site's and the point's (practice, not a norm: one period
    #: plus half a period of grace before a detector counts as offline)
    base_options: ClassVar[Mapping[str, Any]] = {"misses": 1.5}

    def applies_to(self, point: PointInfo) -> bool:
        override = self.point_override(point)
        if override is not None and override.get("enabled") is False:
            return False
        if self.point_classes is not None and point.point_class not in self.point_classes:
            return False
        return any(point.driver.startswith(prefix) for prefix in self.drivers)

    def merge_options(self, point: PointInfo) -> dict[str, Any]:
        merged = dict(self.base_options)
        merged.update(super().merge_options(point))
        return merged

    def steady_ok(self, point: PointInfo) -> bool:
        return point.key != self.interval_key  # a new period must be heard at once

    def interval_of(self, point: PointInfo, opts: HeartbeatOptions, inp: RuleInput, state: Mapping[str, Any]) -> float | None:
        reported = state.get("reported")
        if isinstance(inp, ValueInput) and inp.key == self.interval_key and inp.fault is None:
            if is_number(inp.value) and inp.value > 0:
                reported = float(inp.value)
        fallback: Any = (point.overrides or {}).get("expected_interval")
        return opts.interval or reported or (float(fallback) if is_number(fallback) else None)

    def evaluate(self, point: PointInfo, opts: HeartbeatOptions, inp: RuleInput, state: Mapping[str, Any]) -> Evaluation:
        reported = state.get("reported")
        if isinstance(inp, ValueInput) and inp.key == self.interval_key and inp.fault is None:
            if is_number(inp.value) and inp.value > 0:
                reported = float(inp.value)
        ev = super().evaluate(point, opts, inp, state)
        if reported is not None and ev.state.get("reported") != reported:
            ev.state = {**ev.state, "reported": reported}
        return ev
