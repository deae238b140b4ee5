"""Offline / heartbeat: no report within ``misses`` × the expected interval (+ grace).

One alarm per *device* (not per point): a dead NB smoke detector is one offline
device.  Any report counts, changed or not, valid or faulty: it proves the device
is alive.  The driver's own ``AvailabilityChanged`` (Modbus timeouts, MQTT last
will) raises and clears the same alarm immediately.

The expected interval comes from the options, else the point's
``expected_interval`` (``PointSpec.expected_interval``; NB detectors report their
heartbeat period), else ``point.overrides["expected_interval"]``.
"""

from __future__ import annotations

from typing import Any, Mapping

import msgspec

from ..core_api import PointInfo
from ..rule import (
    AlarmRule,
    AvailabilityInput,
    Condition,
    Evaluation,
    ReportInput,
    RuleConfigError,
    RuleInput,
    Scope,
    Subject,
    TickInput,
    ValueInput,
)
from ..vocab import AlarmCategory, Severity


class HeartbeatOptions(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    interval: float | None = None  # expected seconds between reports
    # Design choice, not a norm: three missed reports (as Modbus masters declare a slave
    # dead); GB 16808 commissioning expects a detector line fault within 100 s, so keep
    # interval × misses + grace ≤ 100 s for gas detector lines.
    misses: float = 3.0
    grace: float = 0.0
    severity: Severity = Severity.FAULT


def expected_interval(point: PointInfo, opts: HeartbeatOptions) -> float | None:
    if opts.interval:
        return opts.interval
    found = getattr(point, "expected_interval", None) or (point.overrides or {}).get("expected_interval")
    return float(found) if found else None


class HeartbeatRule(AlarmRule):
    type_key = "heartbeat"
    Options = HeartbeatOptions
    scope = Scope.DEVICE
    pause_while_down = True

    def applies_to(self, point: PointInfo) -> bool:
        override = self.point_override(point)
        if override is not None and override.get("enabled") is False:
            return False
        if self.point_classes is not None and point.point_class not in self.point_classes:
            return False
        try:
            return expected_interval(point, self.options_for(point)) is not None
        except RuleConfigError:
            return True  # let evaluation report the bad options

    def check_options(self, opts: HeartbeatOptions) -> None:
        if (opts.interval is not None and opts.interval <= 0) or opts.misses <= 0 or opts.grace < 0:
            raise RuleConfigError(f"rule {self.key!r}: interval and misses must be > 0, grace ≥ 0")

    def evaluate(self, point: PointInfo, opts: HeartbeatOptions, inp: RuleInput, state: Mapping[str, Any]) -> Evaluation:
        interval = expected_interval(point, opts) or 0.0
        span = interval * opts.misses + opts.grace
        deadline = state.get("deadline")
        offline = bool(state.get("offline"))
        reason = state.get("reason", "")
        last = state.get("last")
        changed = False
        if isinstance(inp, (ValueInput, ReportInput)):
            last = inp.ts
            deadline = max(deadline or 0.0, inp.ts + span) if not offline else inp.ts + span
            changed = offline
            offline, reason = False, ""
        elif isinstance(inp, AvailabilityInput):
            changed = offline != (not inp.available)
            offline = not inp.available
            reason = inp.reason or ("driver reports the device unreachable" if offline else "")
            if not offline:
                deadline = inp.ts + span
        elif isinstance(inp, TickInput):
            if not offline and deadline is not None and inp.ts >= deadline:
                offline, changed = True, True
                since = f"{inp.ts - last:.0f} s" if last is not None else "ever"
                reason = f"no report for {since} (expected every {interval:g} s)"
        new_state = {"deadline": deadline, "offline": offline, "reason": reason, "last": last}
        conditions = []
        if changed or isinstance(inp, AvailabilityInput):
            conditions.append(
                Condition(
                    category=AlarmCategory.OFFLINE,
                    severity=opts.severity,
                    active=offline,
                    message=f"{point.device_name or point.device_id} offline: {reason}" if offline else "",
                    subject=Subject.DEVICE,
                    value=last,
                )
            )
        return Evaluation(state=new_state, conditions=conditions, wake_at=None if offline else deadline)
