"""Journal events in: each batch of ``AlarmEvent``s from the durable consumer, to escalation.

* Handling is idempotent (outbox dedup keys, stored escalation state), so a
  batch that comes again after a crash adds nothing, and a failure (storage
  briefly refusing writes) is retried rather than the alarm dropped.
* Catching up after a stop, an alarm acknowledged since needs no message of its
  own, only its follow-ups.
* An event that is not yet durable (the store refuses writes) is a new alarm that
  must still be told within seconds: step 0 goes straight to the channels, its
  rows are queued for when the disk accepts writes.
"""

from __future__ import annotations

import logging
from typing import Any, Callable

import anyio

from firebus.sdk import AlarmEvent, AlarmTransition, Event

from .composing import Composer
from .config import NotifyConfig
from .escalation import Escalation
from .escalation_state import EscalationStore, Tracked
from .outbox import Outbox
from .routing import matching_routes, recipients, step_due, step_of


class EventHandler:
    def __init__(self, core: Any, cfg: NotifyConfig, *, clock: Any, log: logging.Logger | Any,
                 escalation: Escalation, composer: Composer, store: EscalationStore, outbox: Outbox,
                 ready: anyio.Event, lock: anyio.Lock, catching_up: Callable[[], bool]) -> None:
        self.core = core
        self.cfg = cfg
        self.clock = clock
        self.log = log
        self.escalation = escalation
        self.composer = composer
        self.store = store
        self.outbox = outbox
        self._ready = ready  # set by NotifyService.run once state is loaded
        self._lock = lock  # shared with the timers: both mutate the same alarm state
        self._catching_up = catching_up

    async def on_batch(self, events: list[Event]) -> None:
        await self._ready.wait()
        taken: set[str] = set()
        if self._catching_up():
            # Catching up after a stop: an alarm someone has acknowledged since needs no
            # message of its own now (a person took charge), only its follow-ups.
            taken = {e.data.alarm_id for e in events if isinstance(e.data, AlarmEvent)
                     and e.data.transition is AlarmTransition.ACKNOWLEDGED}
        for event in events:
            if not isinstance(event.data, AlarmEvent):
                continue
            if event.data.alarm_id in taken and event.data.transition in (
                    AlarmTransition.NEW, AlarmTransition.UPDATE, AlarmTransition.ESCALATE):
                continue
            if not event.durable:
                await self.send_before_durable(event)
            else:
                await self.on_event(event)

    async def on_event(self, event: Event) -> None:
        alarm = event.data
        if not isinstance(alarm, AlarmEvent):
            return
        # Handling is idempotent (dedup keys, stored escalation state), so a failure
        # (storage briefly refusing writes) is retried rather than the alarm dropped.
        for attempt in range(6):
            try:
                async with self._lock:
                    await self.handle(alarm, event.context.id, event.context.actor_id)
                return
            except Exception:
                if attempt == 5:
                    raise  # the bus logs and counts it
                self.log.warning("notify: handling %s of alarm %s failed; retrying", alarm.transition,
                                 alarm.alarm_id, exc_info=True)
                await anyio.sleep(0.5 * 2**attempt)

    async def handle(self, alarm: AlarmEvent, context_id: str | None, actor: str | None = None) -> None:
        t = alarm.transition
        if t in (AlarmTransition.NEW, AlarmTransition.UPDATE):
            # An UPDATE can raise the severity into a route that the NEW did not match;
            # routes already started are skipped, so a repeated event adds nothing.
            if t is AlarmTransition.NEW or alarm.status in ("", "active_unack"):
                await self.escalation.start(alarm, context_id)
        elif t is AlarmTransition.ESCALATE:
            await self.escalation.escalate(alarm, context_id)
        elif t is AlarmTransition.ACKNOWLEDGED:
            await self.escalation.stop(alarm, "acknowledged", actor)
        elif t is AlarmTransition.CLEARED:
            await self.escalation.stop(alarm, "cleared", actor)

    async def send_before_durable(self, event: Event) -> None:
        """The store refuses writes, yet a new alarm must be told within seconds.

        Step 0 of every matching route is rendered and sent at once, straight to the
        channels; the outbox rows and escalation state are queued (written, deduplicated
        by their keys, once the store accepts writes).  Later steps and follow-ups go the
        usual way through the outbox.
        """
        alarm = event.data
        assert isinstance(alarm, AlarmEvent)
        if alarm.transition is not AlarmTransition.NEW:
            return  # the rest can wait for the disk
        context_id = event.context.id or None
        routes = matching_routes(self.cfg, alarm, self.composer.units(alarm)[0])
        started = min(alarm.ts or self.clock.time(), self.clock.time())
        tracked_now = self.escalation.tracked
        async with self._lock:
            for route in routes:
                key = (alarm.alarm_id, route.name)
                if key in tracked_now:
                    continue
                tracked = Tracked(alarm, route, 0, step_due(route, 1, started), started, context_id)
                tracked_now[key] = tracked
                people = recipients(self.cfg, step_of(route, 0), self.composer.units(alarm)[0])
                entries = await self.composer.entries(alarm, route.channels, people, "new", "s0", 0, context_id,
                                                      started, existing=set())
                for entry in entries:
                    self.core.start_task(self.outbox.send_now, entry, name=f"notify:now:{entry.message.channel}")
                self.store.queue_save(tracked)
                self.escalation.arm(tracked)
        self.log.error("notify: alarm %s sent before it is durable (the store refuses writes)", alarm.alarm_id)
