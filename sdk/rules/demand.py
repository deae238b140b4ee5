"""Demand / feedback: a command without the expected feedback in time is a fault.

Attached to the *feedback* point (pump running, valve closed).  A demand is either
a value of a sibling point of the same device (the pump panel's own "start
signal") or a command firebus itself sent to that key (a linkage action, an
operator).  No matching feedback within ``timeout`` seconds → "failed to start /
failed to close"; a command the driver reports as failed → the same fault at once.
"""

from __future__ import annotations

from typing import Any, Mapping

import msgspec

from ..core_api import PointInfo
from ..rule import (
    AlarmRule,
    CommandInput,
    Condition,
    Evaluation,
    RuleConfigError,
    RuleInput,
    TickInput,
    ValueInput,
    truthy,
)
from ..vocab import AlarmCategory, PointClass, Severity


class DemandOptions(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    demand_key: str  # sibling point / command target whose truthy value is a demand
    timeout: float  # seconds until feedback must be seen
    expect: list[str] = msgspec.field(default_factory=lambda: ["true", "1", "on", "running", "run"])  # case-insensitive
    message: str = "no feedback"
    severity: Severity = Severity.ALARM


class DemandFeedbackRule(AlarmRule):
    type_key = "demand_feedback"
    Options = DemandOptions
    defaults = {
        # GB 50974-2014 11.0.3 (pump control): a fire pump must be running within the
        # start time; firebus raises "failed to start" when a start signal gets no running
        # feedback within 120 s (fire-domain.md §4, §10).
        PointClass.PUMP_STATE: {"demand_key": "start", "timeout": 120, "message": "fire pump failed to start"},
        # Design choice, not a norm: motorised gas shut-off valves close in seconds; 60 s
        # leaves room for slow ball valves.  Configure per site.
        PointClass.VALVE_STATE: {
            "demand_key": "close",
            "timeout": 60,
            "expect": ["closed", "close", "true", "1"],
            "message": "valve failed to close",
        },
    }

    def check_options(self, opts: DemandOptions) -> None:
        if opts.timeout <= 0 or not opts.expect:
            raise RuleConfigError(f"rule {self.key!r}: timeout must be > 0 and expect not empty")

    def related_keys(self, point: PointInfo, opts: DemandOptions) -> tuple[str, ...]:
        return (opts.demand_key,)

    def evaluate(self, point: PointInfo, opts: DemandOptions, inp: RuleInput, state: Mapping[str, Any]) -> Evaluation:
        demanded_at = state.get("demanded_at")
        failed = bool(state.get("failed"))
        why = state.get("why", "")
        feedback_ok = bool(state.get("feedback_ok"))
        before = failed
        expect = {e.lower() for e in opts.expect}

        if isinstance(inp, ValueInput) and inp.fault is None:
            if inp.key == point.key:
                feedback_ok = _matches(inp.value, expect)
                if feedback_ok:
                    demanded_at, failed, why = None, False, ""
            elif inp.key == opts.demand_key:
                if truthy(inp.value):
                    if demanded_at is None and not feedback_ok:
                        demanded_at = inp.ts
                elif demanded_at is None or inp.ts > demanded_at:  # withdrawn: nothing is owed any more
                    # Only a reading received after the demand withdraws it.  Commands travel in
                    # the alarm lane, so the engine can see a linkage's start before a poll of
                    # the start signal taken earlier and still queued behind telemetry.
                    demanded_at, failed, why = None, False, ""
        elif isinstance(inp, CommandInput) and inp.key == opts.demand_key:
            if inp.ok is False:
                failed, why = True, f"command to {inp.key} failed: {inp.error or 'no reason given'}"
                demanded_at = None
            elif inp.ok is None and not feedback_ok and demanded_at is None:
                demanded_at = inp.ts
        elif isinstance(inp, TickInput):
            if demanded_at is not None and not feedback_ok and inp.ts >= demanded_at + opts.timeout:
                failed = True
                why = f"no {point.name or point.key} feedback {opts.timeout:g} s after {opts.demand_key}"
                demanded_at = None

        new_state = {"demanded_at": demanded_at, "failed": failed, "why": why, "feedback_ok": feedback_ok}
        conditions = []
        if failed or before:
            conditions.append(
                Condition(
                    category=AlarmCategory.FAULT,
                    severity=opts.severity,
                    active=failed,
                    group="no_feedback",
                    message=f"{point.device_name or point.device_id}: {opts.message} ({why})" if failed else "",
                )
            )
        wake = demanded_at + opts.timeout if demanded_at is not None else None
        return Evaluation(state=new_state, conditions=conditions, wake_at=wake)


def _matches(value: Any, expect: set[str]) -> bool:
    if isinstance(value, bool):
        return ("true" if value else "false") in expect
    return str(value).strip().lower() in expect
