"""Inputs → rule runs: journal entries, repeated values, registry changes and fired timers.

Each kind of input is turned into the rule inputs (``ValueInput``, ``AvailabilityInput``,
``CommandInput``, ``ReportInput``, ``TickInput``) of the rules it concerns.  A batch
ends with a flush (``checkpoint.py``), so its transitions commit with the cursor.
"""

from __future__ import annotations

import anyio

from firebus.sdk import (
    Availability,
    AvailabilityChanged,
    CommandRequested,
    CommandResult,
    ConditionReported,
    Event,
    LinkChanged,
    PointInfo,
    StateChanged,
)
from firebus.sdk.rule import AvailabilityInput, CommandInput, ReportInput, TickInput, ValueInput

from .late import LateReadings
from .links import Links
from .state import Cause, log
from .timers import Timer

#: the journal entry types the engine's durable consumer reads
INPUT_TYPES = [StateChanged, AvailabilityChanged, LinkChanged, CommandRequested, CommandResult, ConditionReported]


class Dispatch(LateReadings, Links):
    """Route every input to the rules it concerns."""

    def _on_batch(self, events: list[Event]) -> None:
        for event in events:
            try:
                self._handle(event)
            except Exception:
                self.rule_errors += 1
                log.exception("alarms: handling %s failed", event.type)
        self._flush(upto=events[-1])

    def _handle(self, event: Event) -> None:
        data = event.data
        ts = event.time_fired
        if isinstance(data, StateChanged):
            device = self._devices.get(data.device_id)
            if device is not None and device.discovered:
                return  # not trusted to raise alarms until commissioned
            if data.late:  # older than the present: history, and maybe an alarm nobody heard of (补报)
                self._on_late(data, ts, event)
                return
            self._on_state(data, ts, event)
        elif isinstance(data, AvailabilityChanged):
            inp = AvailabilityInput(ts=ts, available=data.availability is Availability.AVAILABLE, reason=data.reason)
            self._device_input(data.device_id, inp, event, related_only=None)
        elif isinstance(data, LinkChanged):
            self._link_input(data, ts, event.ref)
        elif isinstance(data, (CommandRequested, CommandResult)):
            ok = data.ok if isinstance(data, CommandResult) else None
            inp = CommandInput(
                ts=ts,
                key=data.point_key,
                value=getattr(data, "value", None),
                command_id=data.command_id,
                ok=ok,
                error=getattr(data, "error", ""),
            )
            self._device_input(data.device_id, inp, event, related_only=data.point_key)
        elif isinstance(data, ConditionReported):
            self._on_condition(data, ts, event.ref)

    def _on_state(self, data: StateChanged, ts: float, cause: Cause) -> None:
        point = self.core.registry.point_info(data.point_id) or PointInfo(
            point_id=data.point_id, device_id=data.device_id, key=data.point_key, point_class=data.point_class
        )
        self.evaluated += 1
        self._heard[point.device_id] = ts
        value = data.new_value
        # Rules that promised steadiness (Evaluation.steady) for this value are skipped.
        numeric = (type(value) is float or type(value) is int) and data.fault is None
        guards = self._guards
        gates, others = self._plan(point)
        inp: ValueInput | None = None
        invalid = None
        mine = guards.get(point.point_id) if numeric else None
        for rule, scope in gates:
            if mine:
                bounds = mine.get(rule.key)
                if bounds is not None and bounds[0] < value < bounds[1]:
                    self.skipped += 1
                    continue
            if inp is None:
                inp = ValueInput(ts=ts, key=point.key, value=value, fault=data.fault, point_id=point.point_id,
                                 point_class=point.point_class, value_ts=data.ts)
            ev = self._run(rule, point, inp, cause, observation=True, scope=scope)
            if ev is not None and ev.invalid:
                invalid = ev.invalid
        if invalid is not None and data.fault is None:
            numeric = False
            inp = ValueInput(ts=ts, key=point.key, value=value, fault=invalid, point_id=point.point_id,
                             point_class=point.point_class, value_ts=data.ts)
        fault = invalid if invalid is not None else data.fault
        if fault is not None:  # identical re-reports of it are no measurement either
            self._invalid[point.point_id] = fault
        elif self._invalid:
            self._invalid.pop(point.point_id, None)
        if not numeric:
            mine = None
        for rule, scope in others:
            if mine:
                bounds = mine.get(rule.key)
                if bounds is not None and bounds[0] < value < bounds[1]:
                    self.skipped += 1
                    continue
            if inp is None:
                inp = ValueInput(ts=ts, key=point.key, value=value, fault=data.fault, point_id=point.point_id,
                                 point_class=point.point_class, value_ts=data.ts)
            self._run(rule, point, inp, cause, observation=True, scope=scope)
        if self._has_related:
            related = self._related_to(point)
            if related:
                if inp is None:
                    inp = ValueInput(ts=ts, key=point.key, value=value, fault=data.fault, point_id=point.point_id,
                                     point_class=point.point_class, value_ts=data.ts)
                for rule, sibling in related:
                    self._run(rule, sibling, inp, cause, observation=True)

    def _on_reports(self, events: list[Event]) -> None:
        """Repeated identical values, for the devices whose rules asked to hear them."""
        watch = self.report_watch
        if not watch:
            return
        for event in events:
            data = event.data
            point = self.core.registry.point_info(data.point_id)
            if point is None:
                continue
            keys = watch.get(point.device_id)
            if not keys:
                continue
            inp = ReportInput(ts=event.time_fired, key=point.key, point_id=point.point_id,
                              fault=self._invalid.get(point.point_id), value_ts=data.ts)
            every = "*" in keys
            for rule in self._rules_of(point)[1]:
                if every or rule.key in keys:
                    self._run(rule, point, inp, event, observation=True)
        self._flush()

    def _on_registry(self, event: Event) -> None:
        """Overrides and new points change which rules apply: forget what was worked out."""
        data = event.data
        if data.registry == "point":
            self.invalidate(data.entry_id)
        elif data.registry == "device":
            for point in self._siblings(data.entry_id):
                self.invalidate(point.point_id)
        else:
            self.invalidate()

    async def _fire_timer(self, timer: Timer) -> None:
        if self.timers.get(timer.key) is not None:
            return  # re-armed for later
        now = self.clock.time()
        if timer.kind == "rule":
            rule = self._by_key.get(timer.data.get("rule", ""))
            entry = self._states.get((timer.data.get("rule", ""), timer.data.get("scope", "")))
            if rule is None or entry is None:
                return  # the rule was removed from the configuration
            point = self.core.registry.point_info(entry.point_id)
            if point is None:
                return
            self._run(rule, point, TickInput(ts=now, last_report=self._last_report(rule, point)), None,
                      observation=False)
        elif timer.kind == "escalation":
            self._escalate(timer, now)
        elif timer.kind == "link":
            self._link_fault(timer.data.get("transport", ""), now)
        self._flush()

    async def _run_timers(self) -> None:
        try:
            with anyio.CancelScope() as scope:
                self._timer_scope = scope
                await self.timers.run(self._fire_timer)
        finally:
            self._timer_stopped.set()
