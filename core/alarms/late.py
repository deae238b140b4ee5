"""Late alarm-class readings: an alarm that came and went while nobody could hear it (补报).

A detector whose link was down uploads what it buffered after it reported its present
state, or a gateway hands readings over out of order.  Ingest keeps such a reading as
history (``StateChanged.late``): it never turns the present back.  But a fire alarm in
it did happen, and a person must hear of it.  So a late reading of an alarm-class point
is run through the point's rules on a fresh state, apart from the live one; an active
condition (not a fault) that no alarm on the board already covers becomes an alarm that
started at the reading's time (``Alarm.late``, ``AlarmEvent.occurred_ts``) and is
cleared at once, because the present does not show it.  It stays on the board until a
person acknowledges it, and notify and the uplink tell it like any new alarm.

Rules that need time (a level held for a minute) or several readings cannot raise
anything from one reading on a fresh state; a device's own alarm bit raises at once.
"""

from __future__ import annotations

from firebus.sdk import ActorKind, AlarmCategory, AlarmTransition, Context, Event, PointInfo, StateChanged, new_id
from firebus.sdk.rule import AlarmRule, Condition, Evaluation, RuleConfigError, ValueInput

from .lifecycle import _subject
from .model import Alarm
from .runs import RuleRuns, _merge
from .state import LATE_KEEP, log, _ref

#: late alarms worth no record: a fault or an offline that came and went while the link was down
_NOT_TOLD = frozenset({AlarmCategory.FAULT, AlarmCategory.OFFLINE})
#: readings of one episode up to this much before its first are still that episode
_FOLD_S = 300.0


class LateReadings(RuleRuns):
    """Alarms shown only by readings older than the present."""

    def _on_late(self, data: StateChanged, now: float, cause: Event) -> None:
        if data.fault is not None:
            return  # a fault that came and went while the link was down: history only
        point = self.core.registry.point_info(data.point_id) or PointInfo(
            point_id=data.point_id, device_id=data.device_id, key=data.point_key, point_class=data.point_class
        )
        inp = ValueInput(ts=data.ts, key=point.key, value=data.new_value, point_id=point.point_id,
                         point_class=point.point_class, value_ts=data.ts)
        gates, others = self._rules_of(point)
        for rule in gates:
            ev = self._evaluate_fresh(rule, point, inp)
            if ev is not None and ev.invalid:
                return  # not a measurement (out of range, a vendor sentinel)
        for rule in others:
            if rule.pause_while_down:
                continue  # liveness: a late reading says nothing about silence now
            ev = self._evaluate_fresh(rule, point, inp)
            if ev is None or not ev.conditions:
                continue
            for cond in _merge(ev.conditions):
                if cond.active and cond.category not in _NOT_TOLD:
                    self._late_alarm(rule, point, cond, data.ts, now, cause)

    def _evaluate_fresh(self, rule: AlarmRule, point: PointInfo, inp: ValueInput) -> Evaluation | None:
        """The rule's evaluation of this one reading on a fresh state; the live state is left alone."""
        try:
            return rule.evaluate(point, rule.options_for(point), inp, {})
        except RuleConfigError:
            return None  # the live path shows the bad options as a fault
        except Exception:
            self.rule_errors += 1
            log.exception("alarms: rule %r raised on a late reading of point %s", rule.key, point.point_id)
            return None

    def _late_alarm(self, rule: AlarmRule, point: PointInfo, cond: Condition, at: float, now: float,
                    cause: Event) -> None:
        subject, point_id, device_id, location_id = _subject(point, cond)
        name = f"{rule.key}:{cond.group}" if cond.group else rule.key
        dedup = f"{subject}|{name}|{cond.category}"
        if dedup in self._active:
            return  # the present shows it: the alarm on the board is this one
        seen = self._late_seen
        if (dedup, at) in seen:
            return  # a redelivered upload
        seen[(dedup, at)] = None
        while len(seen) > LATE_KEEP:
            seen.popitem(last=False)
        for alarm in self._open.values():
            if alarm.dedup_key == dedup and alarm.start_ts - (_FOLD_S if alarm.late else 0) <= at <= (
                alarm.clear_ts or now
            ):
                if alarm.late:  # more of one buffered upload (a detector repeats its alarm): counted
                    alarm.count += 1
                    alarm.start_ts = min(alarm.start_ts, at)
                    self._touch_alarm(alarm)
                return  # inside an alarm on the board (told, not yet acknowledged)
        window = self._late_windows.get(dedup)
        if window is not None and window[0] - _FOLD_S <= at <= window[1]:
            return  # of an episode already recorded and off the board (acknowledged, or before a restart)
        parent_id = _ref(cause)
        alarm = Alarm(
            id=new_id(), dedup_key=dedup, subject=subject, rule=name, rule_type=rule.type_key,
            category=cond.category, severity=cond.severity, peak_severity=cond.severity,
            point_id=point_id, device_id=device_id, location_id=location_id, unit_id=point.unit_id,
            message=cond.message, message_zh=cond.message_zh, first_value=cond.value, last_value=cond.value,
            peak_value=cond.value, start_ts=at, last_ts=at, late=True, context_id=new_id(),
            parent_context_id=parent_id,
        )
        self._open[alarm.id] = alarm
        self.late_alarms += 1
        log.warning("alarms: %s on %s happened at %.0f, recorded %.0f s late (补报)", cond.category, subject, at,
                    now - at)
        ctx = Context(id=alarm.context_id, parent_id=parent_id, actor=ActorKind.RULE, actor_id=name)
        self._transition(alarm, AlarmTransition.NEW, ctx, now, {"value": cond.value, "late": True, "at": at})
        # The present does not show it: cleared now, on the board until a person acknowledges it.
        alarm.active = False
        alarm.clear_ts = now
        alarm.cleared_by = "late"
        self._transition(alarm, AlarmTransition.CLEARED,
                         Context(parent_id=alarm.context_id, actor=ActorKind.RULE, actor_id=name), now, {"late": True})
