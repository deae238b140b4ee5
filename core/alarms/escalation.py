"""Escalation: reminders of an active, unacknowledged alarm at the configured gaps.

The gaps come from ``alarms.escalation`` (per category; ``config.py``).  An
acknowledgement or a clear stops them; a silence does not.
"""

from __future__ import annotations

from firebus.sdk import ActorKind, AlarmTransition, Context

from .checkpoint import Checkpoints
from .model import Alarm
from .timers import Timer, TimerArming


class Escalation(Checkpoints, TimerArming):
    """Arm, re-arm and fire escalation reminders."""

    def _gaps(self, alarm: Alarm) -> list[float]:
        return list(self.config.escalation.get(str(alarm.category), []))

    def _set_escalation(self, alarm: Alarm, due: float | None, step: int = 0) -> None:
        alarm.escalation_due = due
        self._touch_alarm(alarm)
        self._arm(f"esc:{alarm.id}", "escalation", due, {"alarm_id": alarm.id, "step": step})

    def _schedule_escalation(self, alarm: Alarm, after: float, step: int, first_gap: bool = False) -> None:
        """Arm reminder ``step``; ``first_gap`` (a severity rise) uses the schedule's first gap."""
        gaps = self._gaps(alarm)
        if not gaps or alarm.acknowledged or not alarm.active:
            return
        gap = gaps[0] if first_gap else gaps[min(step - 1, len(gaps) - 1)]
        due = after + gap
        now = self.clock.time()
        if due <= now:  # back after an outage: one reminder now-ish, not a burst
            due = now + gap
        self._set_escalation(alarm, due, step)

    def _escalate(self, timer: Timer, now: float) -> None:
        alarm = self._open.get(timer.data.get("alarm_id", ""))
        if alarm is None or not alarm.active or alarm.acknowledged:
            return
        step = int(timer.data.get("step", 1))
        alarm.escalation_step = step
        ctx = Context(parent_id=alarm.context_id, actor=ActorKind.SYSTEM, actor_id="escalation")
        # The next reminder counts from when this one was due, so the schedule does not drift.
        alarm.escalation_due = None
        self._schedule_escalation(alarm, timer.due, step + 1)
        self._transition(alarm, AlarmTransition.ESCALATE, ctx, now, {"step": step, "due": timer.due})
