"""The alarm lifecycle as rules and plugins drive it: raise, update, clear.

A rule's ``Condition`` becomes one alarm per (subject, rule, category): a new alarm, an
update of the one on the board (count, value, peak, severity), or its clear.  Plugins'
own conditions (``ConditionReported``) and invalid rule options (a visible fault) take
the same way.  What operators do to an alarm is ``commands.py``.
"""

from __future__ import annotations

from typing import Any

from firebus.sdk import (
    ActorKind,
    AlarmCategory,
    AlarmTransition,
    ConditionReported,
    Context,
    Event,
    PointInfo,
    Severity,
    new_id,
)
from firebus.sdk.rule import AlarmRule, Condition, Subject, is_number

from .escalation import Escalation
from .model import Alarm
from .state import Cause, log, _ref


def _subject(point: PointInfo, cond: Condition) -> tuple[str, str | None, str | None, str | None]:
    """(subject id, point_id, device_id, location_id) of the alarm a condition belongs to."""
    if cond.subject is Subject.DEVICE:
        return f"device:{point.device_id}", None, point.device_id, point.location_id
    if cond.subject is Subject.LOCATION and point.location_id:
        return f"location:{point.location_id}", None, None, point.location_id
    return point.point_id, point.point_id, point.device_id, point.location_id


def _worse(cond: Condition, value: Any, peak: Any) -> bool:
    """Is ``value`` a new peak: higher, or lower for a low-side level (pressure)?"""
    if not is_number(value):
        return False
    if not is_number(peak):
        return True
    return value < peak if cond.lower_is_worse else value > peak


class Lifecycle(Escalation):
    """Conditions → alarms: raise, update, clear; which devices' repeats matter meanwhile."""

    def _apply(
        self, rule: AlarmRule, point: PointInfo, cond: Condition, cause: Cause, now: float, *,
        observation: bool, reading_ts: float | None = None,
    ) -> None:
        """``reading_ts``: the device's own time of the reading evaluated (None for a tick)."""
        subject, point_id, device_id, location_id = _subject(point, cond)
        if not cond.active and subject not in self._active_subjects:
            return  # nothing to clear (most readings of most points)
        parent_id = _ref(cause)
        name = f"{rule.key}:{cond.group}" if cond.group else rule.key
        dedup = f"{subject}|{name}|{cond.category}"
        alarm = self._active.get(dedup)
        if cond.active and alarm is None:
            alarm = Alarm(
                id=new_id(),
                dedup_key=dedup,
                subject=subject,
                rule=name,
                rule_type=rule.type_key,
                category=cond.category,
                severity=cond.severity,
                peak_severity=cond.severity,
                point_id=point_id,
                device_id=device_id,
                location_id=location_id,
                unit_id=point.unit_id,
                message=cond.message,
                message_zh=cond.message_zh,
                first_value=cond.value,
                last_value=cond.value,
                peak_value=cond.value,
                start_ts=now,
                last_ts=now,
                first_reading_ts=reading_ts,
                last_reading_ts=reading_ts,
                context_id=new_id(),
                parent_context_id=parent_id,
            )
            self._open[alarm.id] = alarm
            self._activate(alarm)
            ctx = Context(id=alarm.context_id, parent_id=parent_id, actor=ActorKind.RULE, actor_id=name)
            self._schedule_escalation(alarm, now, step=1)
            self._attach_media(alarm, point.point_id, now)
            self._transition(alarm, AlarmTransition.NEW, ctx, now, {"value": cond.value})
        elif cond.active and alarm is not None:
            rose = cond.severity > alarm.severity
            changed = cond.severity != alarm.severity
            if observation:
                alarm.count += 1
            alarm.last_value = cond.value
            alarm.last_ts = now
            if reading_ts is not None:
                alarm.saw_reading(reading_ts)
            if _worse(cond, cond.value, alarm.peak_value):
                alarm.peak_value = cond.value
            if cond.message:
                alarm.message = cond.message
                alarm.message_zh = cond.message_zh
            if changed:
                before = alarm.severity
                alarm.severity = cond.severity
                alarm.peak_severity = max(alarm.peak_severity, cond.severity)
                if rose and alarm.silenced:  # a worse alarm sounds again (sounder linkage)
                    alarm.silenced = False
                if rose and not alarm.acknowledged:
                    self._schedule_escalation(alarm, now, step=alarm.escalation_step + 1, first_gap=True)
                ctx = Context(parent_id=parent_id, actor=ActorKind.RULE, actor_id=name)
                self._transition(
                    alarm, AlarmTransition.UPDATE, ctx, now, {"severity": int(cond.severity), "from": int(before)}
                )
            elif now - self._last_update_pub.get(alarm.id, alarm.start_ts) >= self.config.update_interval:
                ctx = Context(parent_id=parent_id, actor=ActorKind.RULE, actor_id=name)
                self._last_update_pub[alarm.id] = now
                self._touch_alarm(alarm)
                self._outbox.append(Event(data=self._payload(alarm, AlarmTransition.UPDATE, now), context=ctx,
                                          time_fired=now))
            else:
                self._touch_alarm(alarm)
        elif not cond.active and alarm is not None:
            ctx = Context(parent_id=parent_id, actor=ActorKind.RULE, actor_id=name)
            if reading_ts is not None and alarm.first_reading_ts is not None:
                alarm.saw_reading(reading_ts)  # the window ends at the reading that cleared it
                alarm.ended_by_reading = True
            self._clear(alarm, ctx, now, by=f"rule:{name}", detail={"value": cond.value})

    def _clear(self, alarm: Alarm, ctx: Context, now: float, by: str, detail: dict[str, Any]) -> None:
        alarm.active = False
        alarm.clear_ts = now
        alarm.cleared_by = by
        if self._active.pop(alarm.dedup_key, None) is not None:
            self._watch_alarming(alarm, False)
            left = self._active_subjects.get(alarm.subject, 0) - 1
            if left > 0:
                self._active_subjects[alarm.subject] = left
            else:
                self._active_subjects.pop(alarm.subject, None)
        self._set_escalation(alarm, None)
        self._remember_episode(alarm, now)
        self._transition(alarm, AlarmTransition.CLEARED, ctx, now, detail)

    def _activate(self, alarm: Alarm) -> None:
        self._active[alarm.dedup_key] = alarm
        self._active_subjects[alarm.subject] = self._active_subjects.get(alarm.subject, 0) + 1
        self._watch_alarming(alarm, True)

    def _watch_alarming(self, alarm: Alarm, active: bool) -> None:
        """While a device has an active alarm, its repeated values reach its rules (counts,
        peaks); otherwise repeats cost nothing here."""
        device_id = alarm.device_id
        if device_id is None and alarm.point_id is not None:
            point = self.core.registry.point_info(alarm.point_id)
            device_id = point.device_id if point is not None else None
        if device_id is None:
            return
        keys = self.report_watch.setdefault(device_id, set())
        count = self._alarming.get(device_id, 0) + (1 if active else -1)
        if count > 0:
            self._alarming[device_id] = count
            keys.add("*")
        else:
            self._alarming.pop(device_id, None)
            keys.discard("*")
            if not keys:
                self.report_watch.pop(device_id, None)

    def _attach_media(self, alarm: Alarm, point_id: str, now: float) -> None:
        """Stills offered with this point's reading (``Reading.media``) go with the new alarm.

        One reading can raise two alarms at once (the single-detector alarm on the point
        and the confirmed fire on its place): both show the same still.
        """
        media = getattr(self.core, "media", None)
        if media is None:
            return
        last_point, last_now, last_ids = self._last_claim
        if last_point == point_id and last_now == now:
            ids = last_ids
        else:
            ids = media.claim(point_id, now)
            self._last_claim = (point_id, now, ids)
        for mid in ids:
            self._media_links.append((alarm.id, mid, now))
        if ids:
            media.note_link(alarm.id)

    def _config_fault(self, rule: AlarmRule, point: PointInfo, error: str | None, cause: Cause,
                      now: float) -> None:
        """Bad options on a point: a fault alarm people can see, cleared once they are fixed."""
        key = (rule.key, point.point_id)
        if error is not None and key not in self._config_errors:
            log.error("alarms: %s", error)
            self._config_errors.add(key)
        elif error is None:
            self._config_errors.discard(key)
        cond = Condition(
            category=AlarmCategory.FAULT,
            severity=Severity.FAULT,
            active=error is not None,
            group="config",
            message=f"rule configuration invalid: {error}" if error else "",
            message_zh=f"报警规则配置无效：{error}" if error else "",
        )
        self._apply(rule, point, cond, cause, now, observation=False)

    def _on_condition(self, data: ConditionReported, now: float, cause: str) -> None:
        """A plugin's own condition (``firebus.sdk.ConditionReported``): raise or clear its alarm."""
        subject = f"{data.source}:{data.subject}"
        dedup = f"{subject}|{data.key}|{data.category}"
        alarm = self._active.get(dedup)
        name = f"{data.source}.{data.key}"
        if not data.active:
            if alarm is not None:
                ctx = Context(parent_id=cause, actor=ActorKind.PLUGIN, actor_id=data.source)
                self._clear(alarm, ctx, now, by=f"plugin:{data.source}", detail={"value": data.value})
            return
        if alarm is not None:
            return  # already on the board
        alarm = Alarm(
            id=new_id(), dedup_key=dedup, subject=subject, rule=name, rule_type=name,
            category=data.category, severity=data.severity, peak_severity=data.severity,
            location_id=data.location_id, unit_id=data.unit_id, message=data.message, message_zh=data.message_zh,
            first_value=data.value, last_value=data.value, peak_value=data.value, start_ts=now, last_ts=now,
            context_id=new_id(), parent_context_id=cause,
        )
        self._open[alarm.id] = alarm
        self._activate(alarm)
        ctx = Context(id=alarm.context_id, parent_id=cause, actor=ActorKind.PLUGIN, actor_id=data.source)
        self._schedule_escalation(alarm, now, step=1)
        self._transition(alarm, AlarmTransition.NEW, ctx, now, {"value": data.value})
