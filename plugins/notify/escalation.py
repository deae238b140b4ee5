"""Escalation: moving each alarm through the steps of every route it matches.

* NEW starts the alarm on every matching route at step 0 (usually at once:
  the duty officer).  Step *k* is due ``steps[k].after_minutes`` after the
  alarm started; past the last step, the last one repeats every
  ``repeat_minutes`` (at most ``max_repeats`` times).
* The alarm engine emits ESCALATE events with ``escalation_step``; one that
  arrives moves the alarm to that step at once.  Our own timer covers the
  same steps so escalation also happens when the engine has no escalation
  configured (``own_timer: false`` leaves it to the engine alone).  Both
  paths write the same outbox dedup key (alarm, step, recipient, channel), so
  a step reached by both is sent once.
* ACKNOWLEDGED stops escalation and cancels escalation messages not yet
  sent.  CLEARED stops it too and sends a "cleared" message to everyone who
  was told about the alarm.  SILENCED (a sounder muted at the panel) does not
  stop escalation: only an acknowledgement says a person took charge.
* State is kept in ``escalation_state`` (a row per alarm and route); the
  messages of a step are made by ``composing``.
"""

from __future__ import annotations

import logging
from typing import Any

from firebus.sdk import AlarmEvent, AlarmTransition

from .composing import Composer
from .config import NotifyConfig, Route
from .escalation_state import EscalationStore, Tracked
from .outbox import Outbox
from .routing import matching_routes, step_due
from .timers import NotifyTimers


class Escalation:
    def __init__(self, cfg: NotifyConfig, *, clock: Any, log: logging.Logger | Any, store: EscalationStore,
                 timers: NotifyTimers, composer: Composer, outbox: Outbox) -> None:
        self.cfg = cfg
        self.clock = clock
        self.log = log
        self.store = store
        self.timers = timers
        self.composer = composer
        self.outbox = outbox
        self.tracked: dict[tuple[str, str], Tracked] = {}
        self.routes: dict[str, Route] = {r.name: r for r in cfg.routes}

    async def restore(self) -> None:
        """At start: the alarms still escalating, with their timers re-armed."""
        for tracked in await self.store.load_escalating(self.routes):
            self.tracked[(tracked.alarm.alarm_id, tracked.route.name)] = tracked
            self.arm(tracked)

    async def start(self, alarm: AlarmEvent, context_id: str | None) -> None:
        """NEW (or an UPDATE into a route the NEW did not match): start every matching route."""
        routes = matching_routes(self.cfg, alarm, self.composer.units(alarm)[0])
        if not routes:
            self.log.info("notify: alarm %s (%s) matches no route", alarm.alarm_id, alarm.category)
            return
        # Never in the future (a device clock ahead of ours must not delay step 0).
        started = min(alarm.ts or self.clock.time(), self.clock.time())
        for route in routes:
            key = (alarm.alarm_id, route.name)
            tracked = self.tracked.get(key)
            if tracked is None:
                if await self.store.has_route(*key):
                    continue  # handled before (a replay) and since stopped
                tracked = Tracked(alarm, route, -1, step_due(route, 0, started), started, context_id)
                await self.store.save(tracked)
                self.tracked[key] = tracked
            elif alarm.transition is AlarmTransition.UPDATE:
                tracked.alarm = alarm  # later steps show the latest value and severity
            # Also for a repeated NEW: sends only what is due and not yet in the outbox.
            await self.advance(tracked)

    async def escalate(self, alarm: AlarmEvent, context_id: str | None) -> None:
        """The engine's ESCALATE: move the alarm to the step it names."""
        if not any(key[0] == alarm.alarm_id for key in self.tracked):
            if not await self.store.has_alarm(alarm.alarm_id):
                # An alarm that began before notify was running (or configured): start it now,
                # from the first step, then move to where the engine says it is.
                await self.start(alarm, context_id)
        for (alarm_id, _), tracked in list(self.tracked.items()):
            if alarm_id != alarm.alarm_id or tracked.due is None:
                continue
            # escalation_step is the step the engine has reached; 0 (unnumbered) means "the next one".
            target = alarm.escalation_step if alarm.escalation_step > 0 else tracked.step + 1
            if target <= tracked.step:
                continue  # our own timer got there first
            tracked.alarm = alarm
            await self.composer.send_step(tracked, target)
            tracked.step = target
            await self._schedule_next(tracked)

    async def on_timer(self, alarm_id: str, route: str) -> None:
        tracked = self.tracked.get((alarm_id, route))
        if tracked is not None:
            await self.advance(tracked)

    async def advance(self, tracked: Tracked) -> None:
        """Send every step that is due now (a restart may have skipped several), then re-arm."""
        now = self.clock.time()
        while tracked.due is not None and tracked.due <= now:
            step = tracked.step + 1
            if step > 0 and not tracked.route.escalation.own_timer:
                break  # later steps only on the engine's ESCALATE
            await self.composer.send_step(tracked, step)
            tracked.step = step
            tracked.due = step_due(tracked.route, step + 1, tracked.started)
        await self._schedule_next(tracked, recompute=False)

    async def _schedule_next(self, tracked: Tracked, *, recompute: bool = True) -> None:
        if recompute:
            tracked.due = step_due(tracked.route, tracked.step + 1, tracked.started)
        await self.store.save(tracked)
        if tracked.due is None:
            self.timers.cancel(tracked.timer_key)
            self.tracked.pop((tracked.alarm.alarm_id, tracked.route.name), None)
        elif self.timer_driven(tracked):
            self.timers.arm(tracked.timer_key, tracked.due)
        else:
            self.timers.cancel(tracked.timer_key)

    def arm(self, tracked: Tracked) -> None:
        """Arm the timer of a tracked alarm whose next step runs on our clock."""
        if tracked.due is not None and self.timer_driven(tracked):
            self.timers.arm(tracked.timer_key, tracked.due)

    @staticmethod
    def timer_driven(tracked: Tracked) -> bool:
        # Without own_timer only the first step runs on our clock; the rest wait for the engine.
        return tracked.route.escalation.own_timer or tracked.step < 0

    async def stop(self, alarm: AlarmEvent, why: str, actor: str | None = None) -> None:
        """ACKNOWLEDGED or CLEARED (``why``): no more steps; tell those told, per the routes' settings."""
        for key, tracked in list(self.tracked.items()):
            if key[0] == alarm.alarm_id:
                self.timers.cancel(tracked.timer_key)
                del self.tracked[key]
        route_names = await self.store.end(alarm.alarm_id)
        routes = [self.routes[name] for name in route_names if name in self.routes]
        if why == "acknowledged":
            await self.outbox.cancel_escalations(alarm.alarm_id)
            wanted = {c for r in routes if r.notify_acknowledged for c in r.channels}
        else:
            wanted = {c for r in routes if r.notify_cleared for c in r.channels}
        if wanted:
            await self.composer.send_followup(alarm, why, wanted, actor)
