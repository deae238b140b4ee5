"""What the engine writes, and when: transitions and the checkpoint that goes with them.

A transition's history row and its ``AlarmEvent`` wait in memory until the next flush,
which commits them in one alarm-lane transaction with every rule state and alarm row
changed since the last confirmed checkpoint, and the consumer's cursor.  Rows carry the
checkpoint's number (``_version``) so an older checkpoint committing later never
overwrites a newer one.
"""

from __future__ import annotations

from typing import Any, Callable

import anyio

from firebus.sdk import AlarmEvent, AlarmTransition, Context, Event, Lane

from ..media import SQL_MEDIA_LINK
from ..storage import Op
from .model import Alarm, Transition
from .state import EngineState
from .store import SQL_ALARM, SQL_HISTORY, SQL_RULE_STATE, alarm_row, history_row, rule_state_row


class Checkpoints(EngineState):
    """Record transitions; commit them with the checkpoint of what changed."""

    def _touch_rule(self, skey: tuple[str, str]) -> None:
        self._version += 1
        self._dirty_rules[skey] = self._version

    def _touch_alarm(self, alarm: Alarm) -> None:
        self._version += 1
        self._dirty_alarms[alarm.id] = self._version

    def _transition(
        self, alarm: Alarm, transition: AlarmTransition, ctx: Context, now: float,
        detail: dict[str, Any] | None = None,
    ) -> None:
        """Record the transition: its history row and ``AlarmEvent`` commit with the next flush.

        Nothing outside the engine (notify, linkage, the panel) hears of a transition
        before it is on disk: the ``AlarmEvent`` is a journal entry, delivered once
        committed, in the same transaction as the alarm's row and the checkpoint.
        """
        alarm.refresh_status()
        self._touch_alarm(alarm)
        if not alarm.open:
            self._open.pop(alarm.id, None)
            self._closed[alarm.id] = alarm
            self._last_update_pub.pop(alarm.id, None)
        self._history.append(history_row(Transition(
            alarm_id=alarm.id,
            ts=now,
            transition=str(transition),
            actor_kind=str(ctx.actor),
            actor=ctx.actor_id or "",
            detail=detail or {},
            context_id=ctx.id,
            parent_id=ctx.parent_id,
        )))
        self._outbox.append(Event(data=self._payload(alarm, transition, now), context=ctx, time_fired=now))

    def _payload(self, alarm: Alarm, transition: AlarmTransition, now: float) -> AlarmEvent:
        return AlarmEvent(
            alarm_id=alarm.id,
            transition=transition,
            category=alarm.category,
            severity=alarm.severity,
            rule=alarm.rule,
            device_id=alarm.device_id,
            point_id=alarm.point_id,
            unit_id=alarm.unit_id,
            location_id=alarm.location_id,
            value=alarm.last_value,
            message=alarm.message,
            message_zh=alarm.message_zh,
            status=str(alarm.status),
            count=alarm.count,
            escalation_step=alarm.escalation_step,
            ts=now,
            occurred_ts=alarm.start_ts if alarm.late else None,
        )

    def _checkpoint_parts(self) -> tuple[list[tuple[str, list[tuple[Any, ...]]]], Callable[[], None] | None]:
        """Rows of every change not yet confirmed on disk, stamped with this checkpoint's number."""
        version = self._version
        parts: list[tuple[str, list[tuple[Any, ...]]]] = []
        rules: dict[tuple[str, str], int] = {}
        alarms: dict[str, int] = {}
        sent_rules, sent_alarms = self._sent_rules, self._sent_alarms
        if self._dirty_rules:
            rows = []
            for skey, v in self._dirty_rules.items():
                if sent_rules.get(skey) == v:
                    continue
                sent_rules[skey] = rules[skey] = v
                entry = self._states.get(skey)
                if entry is not None:
                    rows.append(rule_state_row(skey[0], skey[1], entry.point_id, entry.context_id, entry.state,
                                               entry.wake_at, version))
            if rows:
                parts.append((SQL_RULE_STATE, rows))
        if self._dirty_alarms:
            rows = []
            for alarm_id, v in self._dirty_alarms.items():
                if sent_alarms.get(alarm_id) == v:
                    continue
                sent_alarms[alarm_id] = alarms[alarm_id] = v
                alarm = self._open.get(alarm_id) or self._closed.get(alarm_id)
                if alarm is not None:
                    rows.append(alarm_row(alarm, version))
            if rows:
                parts.append((SQL_ALARM, rows))
        if not rules and not alarms:
            return parts, None

        def confirmed() -> None:
            for skey, v in rules.items():
                if self._dirty_rules.get(skey) == v:
                    del self._dirty_rules[skey]
                    sent_rules.pop(skey, None)
            for alarm_id, v in alarms.items():
                if self._dirty_alarms.get(alarm_id) == v:
                    del self._dirty_alarms[alarm_id]
                    sent_alarms.pop(alarm_id, None)
                    if alarm_id in self._closed and alarm_id not in self._open:
                        del self._closed[alarm_id]

        return parts, confirmed

    def _flush(self, upto: Event | None = None) -> anyio.Event | None:
        """Commit the transitions made so far, with a checkpoint, in the alarm lane."""
        if not self._outbox and not self._history:
            return None
        assert self.consumer is not None
        parts, confirmed = self._checkpoint_parts()
        if self._history:
            parts.insert(0, (SQL_HISTORY, self._history))
        if self._media_links:
            parts.append((SQL_MEDIA_LINK, self._media_links))
            self._media_links = []
        cursor, ahead = self.consumer.position(upto=upto)
        parts.append(self.consumer.cursor_part(cursor, ahead))
        events, self._outbox, self._history = self._outbox, [], []
        done = anyio.Event()
        self._inflight.add(done)

        def durable() -> None:
            if confirmed is not None:
                confirmed()
            self._inflight.discard(done)
            done.set()

        self.core.storage.submit(Op(parts, events, durable, Lane.ALARM))
        return done

    async def _commit(self) -> None:
        """Commit the action's transition; return once it is durable (and announced)."""
        done = self._flush()
        if done is not None:
            await done.wait()
