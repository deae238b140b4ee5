"""Operator actions (panel / API): acknowledge, silence, clear, verdict.

Each names who did it, records its transition and returns only once that is durable
(and announced), with a copy of the alarm as it then was.  A refused action raises
``AlarmError`` (``AlarmNotFound`` for an unknown id) saying why.
"""

from __future__ import annotations

import msgspec

from firebus.sdk import ActorKind, AlarmCategory, AlarmTransition, Context
from firebus.sdk.core_api import AlarmAction, AlarmActionOutcome, AlarmActionResult

from .lifecycle import Lifecycle
from .model import Alarm, AlarmError, AlarmNotFound, Verdict


class OperatorActions(Lifecycle):
    """What people do to alarms."""

    def _user_ctx(self, alarm: Alarm, actor: str, context: Context | None) -> Context:
        if not actor:
            raise AlarmError("an operator action needs an actor (who did it)")
        if context is not None:
            return context
        return Context(parent_id=alarm.context_id, actor=ActorKind.USER, actor_id=actor)

    async def acknowledge(self, alarm_id: str, actor: str, *, note: str = "", context: Context | None = None) -> Alarm:
        """Acknowledge: stops escalation; a cleared alarm then leaves the board."""
        alarm = await self._get_open(alarm_id)
        if alarm.acknowledged:
            raise AlarmError(f"alarm {alarm_id} was already acknowledged by {alarm.ack_by} at {alarm.ack_ts}")
        ctx = self._user_ctx(alarm, actor, context)
        now = self.clock.time()
        alarm.acknowledged = True
        alarm.ack_ts = now
        alarm.ack_by = actor
        self._set_escalation(alarm, None)
        self._transition(alarm, AlarmTransition.ACKNOWLEDGED, ctx, now, {"note": note} if note else {})
        snapshot = msgspec.structs.replace(alarm)
        await self._commit()
        return snapshot

    async def silence(self, alarm_id: str, actor: str, *, note: str = "", context: Context | None = None) -> Alarm:
        """Mute sounders without clearing or acknowledging.

        Reminders go on: muting a buzzer is not taking charge; only an
        acknowledgement is (the notify plugin reads SILENCED the same way).
        """
        alarm = await self._get_open(alarm_id)
        if not alarm.active:
            raise AlarmError(f"alarm {alarm_id} is cleared; there is nothing to silence")
        if alarm.silenced:
            raise AlarmError(f"alarm {alarm_id} was already silenced by {alarm.silenced_by}")
        ctx = self._user_ctx(alarm, actor, context)
        now = self.clock.time()
        alarm.silenced = True
        alarm.silence_ts = now
        alarm.silenced_by = actor
        self._transition(alarm, AlarmTransition.SILENCED, ctx, now, {"note": note} if note else {})
        snapshot = msgspec.structs.replace(alarm)
        await self._commit()
        return snapshot

    async def clear(self, alarm_id: str, actor: str, *, note: str = "", context: Context | None = None) -> Alarm:
        """Operator reset.  If the condition still holds, the next reading raises a new alarm."""
        alarm = await self._get_open(alarm_id)
        if not alarm.active:
            raise AlarmError(f"alarm {alarm_id} is already cleared")
        ctx = self._user_ctx(alarm, actor, context)
        self._clear(alarm, ctx, self.clock.time(), by=f"user:{actor}", detail={"note": note} if note else {})
        snapshot = msgspec.structs.replace(alarm)
        await self._commit()
        return snapshot

    async def set_verdict(
        self, alarm_id: str, verdict: Verdict | str, actor: str, *, note: str = "", context: Context | None = None
    ) -> Alarm:
        """Record what a fire alarm was: real fire, false alarm (误报) or test.  May be revised."""
        try:
            verdict = Verdict(verdict)
        except ValueError:
            raise AlarmError(f"unknown verdict {verdict!r} (one of {[v.value for v in Verdict]})") from None
        alarm = self._open.get(alarm_id) or self._closed.get(alarm_id) or await self.store.get_alarm(alarm_id)
        if alarm is None:
            raise AlarmNotFound(f"no alarm {alarm_id}")
        if alarm.category is not AlarmCategory.FIRE:
            raise AlarmError(f"a verdict applies to fire alarms; alarm {alarm_id} is {alarm.category}")
        ctx = self._user_ctx(alarm, actor, context)
        now = self.clock.time()
        before = alarm.verdict
        alarm.verdict = verdict
        alarm.verdict_ts = now
        alarm.verdict_by = actor
        alarm.verdict_note = note
        detail = {"verdict": str(verdict), "note": note}
        if before is not None:
            detail["previous"] = str(before)
        if alarm.id not in self._open:
            self._closed[alarm.id] = alarm
        self._transition(alarm, AlarmTransition.VERDICT, ctx, now, detail)
        snapshot = msgspec.structs.replace(alarm)
        await self._commit()
        return snapshot

    async def act(self, alarm_id: str, action: AlarmAction | str, actor: str, *, note: str = "",
                  context: Context | None = None) -> AlarmActionResult:
        """``firebus.sdk.CoreAPI.alarm_action``: one of the actions above, its refusal as an outcome.

        A refusal is classified from the alarm's state after it (the engine's message is prose).
        """
        Outcome = AlarmActionOutcome
        try:
            action = AlarmAction(action)
        except ValueError:
            return AlarmActionResult(Outcome.REFUSED, f"unknown action {action!r}")
        found = await self.get(alarm_id)  # Queries (AlarmEngine is both)
        if found is None:
            return AlarmActionResult(Outcome.UNKNOWN_ALARM, f"no alarm {alarm_id}")
        if context is not None and any(t.context_id == context.id
                                       for t in await self.history(alarm_id)):
            return AlarmActionResult(Outcome.APPLIED, "applied before (same context id)", str(found.status))
        run = {AlarmAction.ACKNOWLEDGE: self.acknowledge, AlarmAction.SILENCE: self.silence,
               AlarmAction.CLEAR: self.clear}[action]
        try:
            done = await run(alarm_id, actor, note=note, context=context)
        except AlarmNotFound as exc:
            return AlarmActionResult(Outcome.UNKNOWN_ALARM, str(exc))
        except AlarmError as exc:
            now = await self.get(alarm_id)
            if now is None:
                outcome = Outcome.UNKNOWN_ALARM
            elif not now.active and action is not AlarmAction.ACKNOWLEDGE:
                outcome = Outcome.ALREADY_CLEARED
            elif (action is AlarmAction.ACKNOWLEDGE and now.acknowledged) or \
                    (action is AlarmAction.SILENCE and now.silenced):
                outcome = Outcome.ALREADY_DONE
            else:
                outcome = Outcome.REFUSED
            return AlarmActionResult(outcome, str(exc), str(now.status) if now else "")
        return AlarmActionResult(Outcome.APPLIED, "", str(done.status))

    async def _get_open(self, alarm_id: str) -> Alarm:
        alarm = self._open.get(alarm_id)
        if alarm is not None:
            return alarm
        closed = self._closed.get(alarm_id) or await self.store.get_alarm(alarm_id)
        if closed is None:
            raise AlarmNotFound(f"no alarm {alarm_id}")
        raise AlarmError(f"alarm {alarm_id} is closed (cleared and acknowledged)")
