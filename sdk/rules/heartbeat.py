"""Offline / heartbeat (通讯故障): silence is a fault.

One alarm per *device* (not per point): a dead NB smoke detector is one offline
device.  Any report counts, changed or not, valid or faulty: it proves the device
is alive.  The driver's own ``AvailabilityChanged`` (Modbus timeouts, a gateway
that stopped answering) raises and clears the same alarm (after ``offline_delay``
seconds, default at once), so every device has communication-fault detection,
with or without a known reporting period.

With a known period (options' ``interval``, else the point's ``expected_interval``
— ``PointSpec.expected_interval``; NB detectors report theirs — else
``point.overrides["expected_interval"]``) no report within ``misses`` × period
(+ ``grace``) raises the alarm.  Each report is a new promise that *replaces* the
previous one: a detector that shortens its period is judged by the new one at
once (a longer promise made before must not hide an hour of silence).  A device
configured with a period that never reports at all is offline ("never reported")
one span after the engine started watching it.

While the device's transport link is down (broker, gateway TCP link) silence
says nothing about the device: the deadline is paused, and a full span starts
again when the link is back (the link itself raises its own fault).
"""

from __future__ import annotations

import math

from typing import Any, Mapping

import msgspec

from ..core_api import PointInfo
from ..rule import (
    AlarmRule,
    AvailabilityInput,
    Condition,
    Evaluation,
    LinkInput,
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
    #: seconds a driver-reported unavailability must last before the alarm (0: at once)
    offline_delay: float = 0.0


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
        return True  # every device: without a period, availability alone says it is gone

    def check_options(self, opts: HeartbeatOptions) -> None:
        if (opts.interval is not None and opts.interval <= 0) or opts.misses <= 0 or opts.grace < 0:
            raise RuleConfigError(f"rule {self.key!r}: interval and misses must be > 0, grace ≥ 0")
        if opts.offline_delay < 0:
            raise RuleConfigError(f"rule {self.key!r}: offline_delay must be ≥ 0")

    def interval_of(self, point: PointInfo, opts: HeartbeatOptions, inp: RuleInput, state: Mapping[str, Any]) -> float | None:
        return expected_interval(point, opts)

    def evaluate(self, point: PointInfo, opts: HeartbeatOptions, inp: RuleInput, state: Mapping[str, Any]) -> Evaluation:
        interval = self.interval_of(point, opts, inp, state)
        span = interval * opts.misses + opts.grace if interval else None
        s = dict(state)
        offline = bool(s.get("offline"))
        was = offline
        name = point.device_name or point.device_id
        if isinstance(inp, (ValueInput, ReportInput)):
            if span is None and not offline and "deadline" not in s:
                # Nothing to time; stay quiet (and cheap).
                return Evaluation(state=s, steady=(-math.inf, math.inf) if self.steady_ok(point) else None)
            s["last"] = inp.ts
            s["deadline"] = inp.ts + span if span is not None and not s.get("link_down") else None
            s.pop("unavailable_since", None)
            s["offline"] = offline = False
            s["reason"] = ""
            s.pop("never", None)
        elif isinstance(inp, AvailabilityInput):
            if inp.available:
                s.pop("unavailable_since", None)
                if offline:
                    s["offline"] = offline = False
                    s["reason"] = ""
                s["deadline"] = inp.ts + span if span is not None else None
            else:
                s["reason"] = inp.reason or "driver reports the device unreachable"
                if opts.offline_delay <= 0:
                    s["offline"] = offline = True
                    s.pop("unavailable_since", None)
                else:
                    s.setdefault("unavailable_since", inp.ts)
        elif isinstance(inp, LinkInput):
            if not inp.up:
                s["link_down"] = True
                s["deadline"] = None
            else:
                s.pop("link_down", None)
                s["deadline"] = inp.ts + span if span is not None else None
        elif isinstance(inp, TickInput):
            since = s.get("unavailable_since")
            if since is not None and not offline and inp.ts >= since + opts.offline_delay:
                s["offline"] = offline = True
                s.pop("unavailable_since", None)
            deadline = s.get("deadline")
            if "deadline" not in s and "last" not in s and span is not None and not s.get("link_down"):
                # Watched for the first time and never heard from: one span from now.
                s["deadline"] = inp.ts + span
                s["never"] = True
            elif not offline and deadline is not None and inp.ts >= deadline:
                heard = inp.last_report
                if heard is not None and span is not None and heard + span > inp.ts:
                    s["last"] = heard  # reported (unchanged values) since: alive
                    s["deadline"] = heard + span
                    s.pop("never", None)
                else:
                    s["offline"] = offline = True
                    if s.get("never") and heard is None:
                        s["reason"] = f"never reported (expected every {interval:g} s)"
                    else:
                        last = heard if heard is not None else s.get("last")
                        ago = f"{inp.ts - last:.0f} s" if last is not None else "ever"
                        s["reason"] = f"no report for {ago} (expected every {interval:g} s)"
        wake = None
        if not offline:
            wake = s.get("deadline")
            since = s.get("unavailable_since")
            if since is not None:
                due = since + opts.offline_delay
                wake = due if wake is None else min(wake, due)
        conditions = []
        if offline != was or (isinstance(inp, AvailabilityInput) and offline):
            reason = s.get("reason", "")
            conditions.append(
                Condition(
                    category=AlarmCategory.OFFLINE,
                    severity=opts.severity,
                    active=offline,
                    message=f"{name} offline (communication fault): {reason}" if offline else "",
                    message_zh=f"{name} 通讯故障：{_reason_zh(reason)}" if offline else "",
                    subject=Subject.DEVICE,
                    value=s.get("last"),
                )
            )
        # While all is well, a new value needs no evaluation: the deadline is checked against
        # the newest report when it comes (TickInput.last_report), not moved per value.
        steady = None
        if not offline and "unavailable_since" not in s and not s.get("link_down") and self.steady_ok(point):
            steady = (-math.inf, math.inf)
        return Evaluation(state=s, conditions=conditions, wake_at=wake, wants_reports=offline, steady=steady)

    def steady_ok(self, point: PointInfo) -> bool:
        """Whether values of ``point`` may skip this rule while the device is alive."""
        return True


def _reason_zh(reason: str) -> str:
    """The reasons this rule writes, in Chinese (a driver's own reason is kept as it is)."""
    if reason.startswith("never reported"):
        return "从未上报（" + reason[len("never reported"):].strip(" ()").replace("expected every", "应每") + "）"
    if reason.startswith("no report for"):
        return "超时未上报（" + reason[len("no report for"):].strip().replace("(expected every", "，应每").rstrip(")") + "）"
    if reason == "driver reports the device unreachable":
        return "设备无应答"
    return reason
