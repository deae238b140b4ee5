"""Running one rule on one point for one input, and acting on its ``Evaluation``.

The engine's hot path: the rule's new state is kept (and marked for the checkpoint),
its wake-up armed, its steadiness promise and report wishes noted, its conditions
handed to the lifecycle.  A rule that raises is logged and counted, never fatal.
"""

from __future__ import annotations

from typing import Any, Iterable

from firebus.sdk import PointInfo
from firebus.sdk.rule import (
    AlarmRule,
    Condition,
    Evaluation,
    RuleConfigError,
    ReportInput,
    RuleInput,
    Scope,
    TickInput,
    ValueInput,
)

from .lifecycle import Lifecycle
from .selection import RuleSelection
from .state import Cause, log, _ref, _RuleState

_NO_STATE: dict[str, Any] = {}


def _merge(conditions: Iterable[Condition]) -> list[Condition]:
    """Conditions of one (subject, group, category) make one alarm: any active → active."""
    merged: dict[tuple[str, str, str], Condition] = {}
    for cond in conditions:
        key = (str(cond.subject), cond.group, str(cond.category))
        have = merged.get(key)
        if have is None:
            merged[key] = cond
        elif cond.active and (not have.active or cond.severity > have.severity):
            merged[key] = cond
        elif not cond.active and not have.active and cond.severity > have.severity:
            merged[key] = cond
    return list(merged.values())


class RuleRuns(Lifecycle, RuleSelection):
    """Evaluate rules and act on what they say."""

    def _run(
        self, rule: AlarmRule, point: PointInfo, inp: RuleInput, cause: Cause, *, observation: bool,
        scope: str | None = None,
    ) -> Evaluation | None:
        """Evaluate ``rule`` on ``point`` for ``inp`` and act on what it says.

        The hot path of the engine (every state change, every rule that applies): nothing
        is built that is not needed — the cause's id only when something is recorded, the
        rule state only when it changed, timers only when the wake-up moved.
        """
        try:
            opts = rule.options_for(point)
        except RuleConfigError as exc:
            self._config_fault(rule, point, str(exc), cause, inp.ts)
            return None
        if self._config_errors and (rule.key, point.point_id) in self._config_errors:
            self._config_fault(rule, point, None, cause, inp.ts)
        if scope is None:
            scope = rule.scope_of(point)
        skey = (rule.key, scope)
        entry = self._states.get(skey)
        old = entry.state if entry is not None else _NO_STATE
        try:
            ev = rule.evaluate(point, opts, inp, old)
        except Exception:
            self.rule_errors += 1
            log.exception("alarms: rule %r raised on point %s", rule.key, point.point_id)
            return None
        tick = type(inp) is TickInput
        # Steadiness is promised per point; a device- or place-scoped rule that stops being
        # steady (the device went offline) takes the promise back for every point it covers.
        guards = self._guards.get(point.point_id)
        if ev.steady is not None:
            if type(inp) is ValueInput and inp.point_id == point.point_id:
                if guards is None:
                    self._guards[point.point_id] = {rule.key: ev.steady}
                else:
                    guards[rule.key] = ev.steady
        elif rule.scope is Scope.POINT:
            if guards is not None and rule.key in guards:
                del guards[rule.key]
        elif self._guards:
            covered = (self._siblings(point.device_id) if rule.scope is Scope.DEVICE
                       else self.core.registry.points_at_location(point.location_id or ""))
            for other in covered:
                g = self._guards.get(other.point_id)
                if g is not None:
                    g.pop(rule.key, None)
        wake = ev.wake_at
        state = ev.state
        before = entry.wake_at if entry is not None else None
        if rule.pause_while_down and wake is not None:
            if wake != before:
                state = {**state, "armed_at": inp.ts}
            elif entry is not None and "armed_at" in entry.state and "armed_at" not in state:
                state = {**state, "armed_at": entry.state["armed_at"]}
        if entry is None or wake != before or state != entry.state:
            # The input that changed the state is the parent of an alarm a timer raises later.
            parent = (entry.context_id if entry is not None else None) if tick else _ref(cause)
            self._states[skey] = _RuleState(state=state, point_id=point.point_id, context_id=parent, wake_at=wake)
            self._touch_rule(skey)
        if wake != before or (wake is not None and tick):
            self._arm_rule(rule.key, scope, wake)
        watching = self.report_watch.get(point.device_id)
        if ev.wants_reports:
            if watching is None:
                self.report_watch[point.device_id] = {rule.key}
            else:
                watching.add(rule.key)
        elif watching is not None and rule.key in watching:
            watching.discard(rule.key)
            if not watching:
                del self.report_watch[point.device_id]
        conditions = ev.conditions
        if conditions:
            if tick:
                cause = entry.context_id if entry is not None else None
            reading_ts = inp.value_ts if isinstance(inp, (ValueInput, ReportInput)) else None
            for cond in _merge(conditions) if len(conditions) > 1 else conditions:
                self._apply(rule, point, cond, cause, inp.ts, observation=observation and not tick,
                            reading_ts=reading_ts)
        return ev

    def _device_input(self, device_id: str, inp: RuleInput, cause: Cause, related_only: str | None) -> None:
        done: set[tuple[str, str]] = set()
        for point in self._siblings(device_id):
            for rule in self._rules_of(point)[1]:
                if related_only is not None and related_only not in self._related(rule, point):
                    continue
                key = (rule.key, rule.scope_of(point))
                if key in done:  # a device-scoped rule hears about its device once
                    continue
                done.add(key)
                self._run(rule, point, inp, cause, observation=True)
