"""The notify service: alarm events in, outbox rows out, escalation in between.

This module wires the parts and runs them; each part has a module of its own:

* ``handling`` — journal batches of ``AlarmEvent``s in (retries, catching up,
  alarms not yet durable);
* ``escalation`` — each alarm through the steps of its routes (the rules are
  in that module's docstring); ``escalation_state`` — the row per alarm and
  route that survives a restart;
* ``composing`` — alarm → messages: recipients, templates, quiet hours, rate
  limits and digests;
* ``alarm_links`` — the signed link in every alarm message;
* ``media`` — the alarm's still in its messages (and the short wait for it);
* ``timers`` — the escalation, digest and purge timers;
* ``outbox`` — durable delivery, one task per channel.

Here: building the channels, the lifecycle (subscribe, ``run``, ``stop``) and the
timer dispatch.  At start, channel health, the outbox and the escalation state
are restored before the first journal batch is handled.
"""

from __future__ import annotations

import logging
from typing import Any

import anyio

from firebus.sdk import AlarmEvent
from firebus.sdk.timers import Timer

from .alarm_links import LINK_LABEL, AlarmLinks, with_link
from .channel_context import NotifyChannelContext
from .composing import Composer
from .config import NotifyConfig, Person, channel_options
from .escalation import Escalation
from .escalation_state import SQL_ESCALATION, EscalationStore, Tracked
from .handling import EventHandler
from .health import ChannelEntry, ChannelRegistry
from .policy import SendPacer
from .media import NotifyMedia
from .message import MqttPublish
from .ntfy import NtfyHub
from .outbox import Outbox
from .timers import PURGE, NotifyTimers

# Names this module had before it was split, kept importable.
__all__ = ["LINK_LABEL", "SQL_ESCALATION", "NotifyService", "Tracked", "with_link"]


class NotifyService:
    def __init__(self, core: Any, cfg: NotifyConfig, channel_types: dict[str, type], *,
                 mqtt_publish: MqttPublish | None = None, http: Any = None) -> None:
        self.core = core
        self.cfg = cfg
        self.clock = core.clock
        self.log = core.logger("notify") if hasattr(core, "logger") else logging.getLogger("firebus.plugin.notify")
        self.mqtt_publish = mqtt_publish
        self.http = http
        self._own_http = http is None
        self.channels = ChannelRegistry(core, self.log)
        self.ntfy_hub = NtfyHub()  # open ntfy streams, shared by the ntfy channels
        for index, ch in enumerate(cfg.channels):
            if not ch.enabled:
                continue
            cls = channel_types[ch.type]
            options = channel_options(ch, index, cls)
            try:
                notifier = cls(ch.key, options, NotifyChannelContext(self, ch.key))
            except ValueError as exc:
                from .config import NotifyConfigError

                raise NotifyConfigError(f"notify.channels[{index}].options: {exc}") from None
            limits = ([(lim.count, lim.window_s) for lim in ch.send_limit] if ch.send_limit is not None
                      else list(getattr(cls, "send_limit", None) or []))
            self.channels.add(ChannelEntry(ch.key, ch.type, notifier, ch.down_after,
                                           str(ch.language) if ch.language else None,
                                           pacer=SendPacer(limits) if limits else None))
        self.outbox = Outbox(core, self.channels, cfg.outbox)
        self.timers = NotifyTimers(core.clock)
        self.links = AlarmLinks(core, cfg, self.clock, self.log)
        self.media = NotifyMedia(core, cfg, self.clock, self.log, self.outbox)
        self.outbox.prepare = self.media.prepare
        self.escalation_store = EscalationStore(core.storage, self.log)
        self.composer = Composer(core, cfg, channel_types, clock=self.clock, log=self.log, channels=self.channels,
                                 outbox=self.outbox, links=self.links, store=self.escalation_store,
                                 timers=self.timers, media=self.media)
        self.escalation = Escalation(cfg, clock=self.clock, log=self.log, store=self.escalation_store,
                                     timers=self.timers, composer=self.composer, outbox=self.outbox)
        self._ready = anyio.Event()
        self._lock = anyio.Lock()  # event handling and timers mutate the same alarm state
        self.handler = EventHandler(core, cfg, clock=self.clock, log=self.log, escalation=self.escalation,
                                    composer=self.composer, store=self.escalation_store, outbox=self.outbox,
                                    ready=self._ready, lock=self._lock,
                                    catching_up=lambda: self._consumer.catching_up)
        # The parts' state under the names it had on the service.
        self.renderer = self.composer.renderer
        self.limiter = self.composer.limiter
        self.limiters = self.composer.limiters
        self.tracked = self.escalation.tracked
        self.routes = self.escalation.routes
        self._unsubscribe: Any = None
        self._scope: anyio.CancelScope | None = None
        self.stopped = anyio.Event()

    # -- lifecycle ---------------------------------------------------------------------------

    def subscribe(self) -> None:
        """Follow the journal's alarm events from the stored cursor; entries wait until ``run``
        has loaded state.  After a crash the events since the cursor come again, and
        handling is idempotent (dedup keys, stored escalation state)."""
        self._consumer = self.core.journal.subscribe("notify", self.handler.on_batch, [AlarmEvent],
                                                     provisional=True)
        self._unsubscribe = self._consumer.stop

    async def run(self) -> None:
        if self._unsubscribe is None:
            self.subscribe()
        try:
            with anyio.CancelScope() as scope:
                self._scope = scope
                if self.http is None:
                    import httpx

                    self.http = httpx.AsyncClient(follow_redirects=False)
                await self.channels.restore()
                await self.links.load_key()
                await self.media.load_key()
                for entry in self.channels.entries.values():
                    start = getattr(entry.notifier, "start", None)
                    if start is not None:
                        await start()  # channels with state of their own (web push keys)
                await self.outbox.recover()
                await self.escalation.restore()
                await self.composer.restore_digests()
                await self._warn_orphans()
                async with anyio.create_task_group() as tg:
                    for key in self.channels.entries:
                        tg.start_soon(self.outbox.run_channel, key, name=f"notify:{key}")
                    tg.start_soon(self.timers.run, self._fire, name="notify:timers")
                    self.timers.arm(PURGE, self.clock.time() + 3600)
                    self._ready.set()
        finally:
            self.ntfy_hub.close()
            with anyio.CancelScope(shield=True):
                for entry in self.channels.entries.values():
                    try:
                        await entry.notifier.aclose()
                    except Exception:
                        self.log.exception("notify: closing channel %s failed", entry.key)
                if self._own_http and self.http is not None:
                    await self.http.aclose()
                    self.http = None
            self.stopped.set()

    def stop(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        if self._scope is not None:
            self._scope.cancel()

    async def wait_ready(self) -> None:
        await self._ready.wait()

    async def _warn_orphans(self) -> None:
        rows = await self.core.storage.fetchall(
            "SELECT channel, count(*) FROM notify_outbox WHERE status IN ('pending', 'held') GROUP BY channel"
        )
        for channel, count in rows:
            if channel not in self.channels.entries:
                self.log.error("notify: %d notification(s) wait for channel %r, which is not configured now; "
                               "they are kept until it is", count, channel)

    # -- timers ------------------------------------------------------------------------------

    async def _fire(self, timer: Timer) -> None:
        key = timer.key
        async with self._lock:
            kind, _, rest = key.partition("|")
            if kind == "esc":
                alarm_id, _, route = rest.partition("|")
                await self.escalation.on_timer(alarm_id, route)
            elif kind == "digest":
                recipient, _, channel = rest.rpartition("|")
                await self.composer.digest(recipient, channel)
            elif kind == "purge":
                self.timers.arm(PURGE, self.clock.time() + 86_400)  # re-armed first: a failure must not end it
                await self.outbox.purge(self.clock.time())
                for entry in self.channels.entries.values():
                    purge = getattr(entry.notifier, "purge", None)
                    if purge is not None:
                        await purge(self.clock.time())

    # -- what the plugin's pages and channels ask of the service ------------------------------

    async def handle(self, alarm: AlarmEvent, context_id: str | None, actor: str | None = None) -> None:
        """Handle one alarm transition (the caller holds no lock; the journal path takes it)."""
        await self.handler.handle(alarm, context_id, actor)

    def link(self, alarm_id: str, recipient: str) -> str:
        """The signed link that opens ``alarm_id`` in the app for ``recipient`` (a firebus user name,
        or ``*`` for a group channel), or "" when the site has no ``links.base_url``."""
        return self.links.link(alarm_id, recipient)

    def user_of(self, person: Person) -> str:
        return person.user or person.name

    def person_of_user(self, user: str) -> Person | None:
        return next((p for p in self.cfg.people if self.user_of(p) == user), None)
