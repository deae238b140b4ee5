"""The notify service: alarm events in, outbox rows out, escalation in between.

Escalation, decided here:

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
* Escalation state is a row per (alarm, route) and timers are re-armed from
  it at start, so a step due while the core was down is sent once when it is
  back.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import anyio
import msgspec

from firebus.sdk import AlarmCategory, AlarmEvent, AlarmTransition, Event, Lane, links, new_id
from firebus.sdk.timers import Timer, TimerQueue

from .config import NotifyConfig, Person, Route, channel_options
from .health import ChannelEntry, ChannelRegistry
from .message import Message, MqttPublish
from .ntfy import NtfyHub
from .outbox import Entry, Outbox
from .policy import RateLimiter, admit_all, quiet_until
from .routing import describe, matching_routes, recipients, step_due, step_of, unit_names
from .templates import Renderer

_enc = msgspec.json.Encoder()
_alarm_dec = msgspec.json.Decoder(AlarmEvent)

SQL_ESCALATION = """
INSERT INTO notify_escalation (alarm_id, route, step, due, started_ts, context_id, alarm)
VALUES (?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (alarm_id, route) DO UPDATE SET step = excluded.step, due = excluded.due
"""


@dataclass
class Tracked:
    """One alarm on one route."""

    alarm: AlarmEvent
    route: Route
    step: int  # last step sent; -1 before the first
    due: float | None
    started: float
    context_id: str | None

    @property
    def timer_key(self) -> str:
        return f"esc|{self.alarm.alarm_id}|{self.route.name}"


class _ChannelCtx:
    def __init__(self, service: "NotifyService", key: str) -> None:
        self._service = service
        self.logger = logging.getLogger(f"firebus.plugin.notify.{key}")

    def time(self) -> float:
        return self._service.clock.time()

    @property
    def http(self) -> Any:
        return self._service.http

    @property
    def mqtt_publish(self) -> MqttPublish | None:
        return self._service.mqtt_publish

    @property
    def storage(self) -> Any:
        """The core's storage (channels that keep state: the ntfy stream, web push subscriptions)."""
        return self._service.core.storage

    @property
    def service(self) -> "NotifyService":
        return self._service

    @property
    def ntfy_hub(self) -> NtfyHub:
        return self._service.ntfy_hub


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
                notifier = cls(ch.key, options, _ChannelCtx(self, ch.key))
            except ValueError as exc:
                from .config import NotifyConfigError

                raise NotifyConfigError(f"notify.channels[{index}].options: {exc}") from None
            self.channels.add(ChannelEntry(ch.key, ch.type, notifier, ch.down_after,
                                           str(ch.language) if ch.language else None))
        self.outbox = Outbox(core, self.channels, cfg.outbox)
        self.renderer = Renderer(cfg)
        self.limiter = RateLimiter(cfg.rate_limit.burst, cfg.rate_limit.window_s)
        self.limiters: dict[str, list[RateLimiter]] = {}
        for ch in cfg.channels:
            own = [RateLimiter(ch.rate_limit.burst, ch.rate_limit.window_s)] if ch.rate_limit else [self.limiter]
            vendor = getattr(channel_types.get(ch.type), "vendor_limit", None)
            if vendor:
                own.append(RateLimiter(int(vendor[0]), float(vendor[1])))
            self.limiters[ch.key] = own
        self.timers = TimerQueue(core.clock, "notify")
        self.tracked: dict[tuple[str, str], Tracked] = {}
        self.routes = {r.name: r for r in cfg.routes}
        self._people = {p.name: p for p in cfg.people}
        self._ready = anyio.Event()
        self._unsubscribe: Any = None
        self._scope: anyio.CancelScope | None = None
        self._lock = anyio.Lock()  # event handling and timers mutate the same alarm state
        self._link_key: bytes | None = None  # core.secret("links"), read once at start
        self.stopped = anyio.Event()

    # -- lifecycle ---------------------------------------------------------------------------

    def subscribe(self) -> None:
        """Follow the journal's alarm events from the stored cursor; entries wait until ``run``
        has loaded state.  After a crash the events since the cursor come again, and
        handling is idempotent (dedup keys, stored escalation state)."""
        self._consumer = self.core.journal.subscribe("notify", self._on_batch, [AlarmEvent], provisional=True)
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
                await self._load_link_key()
                for entry in self.channels.entries.values():
                    start = getattr(entry.notifier, "start", None)
                    if start is not None:
                        await start()  # channels with state of their own (web push keys)
                await self.outbox.recover()
                await self._reload()
                await self._warn_orphans()
                async with anyio.create_task_group() as tg:
                    for key in self.channels.entries:
                        tg.start_soon(self.outbox.run_channel, key, name=f"notify:{key}")
                    tg.start_soon(self.timers.run, self._fire, name="notify:timers")
                    self._set_timer("purge|", self.clock.time() + 3600)
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

    async def _load_link_key(self) -> None:
        if not self.cfg.links.base_url:
            return
        secret = getattr(self.core, "secret", None)
        if secret is None:
            self.log.error("notify: links.base_url is set but this core offers no secret(); messages carry no link")
            return
        self._link_key = await secret("links")

    def link(self, alarm_id: str, recipient: str) -> str:
        """The signed link that opens ``alarm_id`` in the app for ``recipient`` (a firebus user name,
        or ``*`` for a group channel), or "" when the site has no ``links.base_url``."""
        if self._link_key is None or not alarm_id or not self.cfg.links.base_url:
            return ""
        expires = self.clock.time() + self.cfg.links.ttl_s
        token = links.sign(self._link_key, alarm_id, recipient, expires)
        return self.cfg.links.base_url.rstrip("/") + links.link_path(token)

    def user_of(self, person: Person) -> str:
        return person.user or person.name

    def person_of_user(self, user: str) -> Person | None:
        return next((p for p in self.cfg.people if self.user_of(p) == user), None)

    def stop(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        if self._scope is not None:
            self._scope.cancel()

    async def wait_ready(self) -> None:
        await self._ready.wait()

    async def _reload(self) -> None:
        rows = await self.core.storage.fetchall(
            "SELECT alarm_id, route, step, due, started_ts, context_id, alarm FROM notify_escalation "
            "WHERE due IS NOT NULL"
        )
        for alarm_id, route_name, step, due, started, context_id, alarm_json in rows:
            route = self.routes.get(route_name)
            if route is None:
                self.log.warning("notify: alarm %s was escalating on route %s, which no longer exists",
                                 alarm_id, route_name)
                continue
            tracked = Tracked(_alarm_dec.decode(alarm_json), route, step, due, started, context_id)
            self.tracked[(alarm_id, route_name)] = tracked
            if self._timer_driven(tracked):
                self._set_timer(tracked.timer_key, due)
        held = await self.core.storage.fetchall(
            "SELECT DISTINCT recipient, channel FROM notify_outbox WHERE status = 'held'"
        )
        for recipient, channel in held:
            # The window they were held in has passed (or will not be remembered): digest soon.
            self._set_timer(f"digest|{recipient}|{channel}", self.clock.time())

    async def _warn_orphans(self) -> None:
        rows = await self.core.storage.fetchall(
            "SELECT channel, count(*) FROM notify_outbox WHERE status IN ('pending', 'held') GROUP BY channel"
        )
        for channel, count in rows:
            if channel not in self.channels.entries:
                self.log.error("notify: %d notification(s) wait for channel %r, which is not configured now; "
                               "they are kept until it is", count, channel)

    # -- events ------------------------------------------------------------------------------

    async def _on_batch(self, events: list[Event]) -> None:
        await self._ready.wait()
        taken: set[str] = set()
        if self._consumer.catching_up:
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
                await self._send_before_durable(event)
            else:
                await self._on_event(event)

    async def _on_event(self, event: Event) -> None:
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

    async def _send_before_durable(self, event: Event) -> None:
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
        routes = matching_routes(self.cfg, alarm, self._units(alarm)[0])
        started = min(alarm.ts or self.clock.time(), self.clock.time())
        async with self._lock:
            for route in routes:
                key = (alarm.alarm_id, route.name)
                if key in self.tracked:
                    continue
                tracked = Tracked(alarm, route, 0, step_due(route, 1, started), started, context_id)
                self.tracked[key] = tracked
                people = recipients(self.cfg, step_of(route, 0), self._units(alarm)[0])
                entries = await self._entries(alarm, route.channels, people, "new", "s0", 0, context_id, started,
                                              existing=set())
                for entry in entries:
                    self.core.start_task(self.outbox.send_now, entry, name=f"notify:now:{entry.message.channel}")
                self._queue_save(tracked)
                if tracked.due is not None and self._timer_driven(tracked):
                    self._set_timer(tracked.timer_key, tracked.due)
        self.log.error("notify: alarm %s sent before it is durable (the store refuses writes)", alarm.alarm_id)

    async def handle(self, alarm: AlarmEvent, context_id: str | None, actor: str | None = None) -> None:
        t = alarm.transition
        if t in (AlarmTransition.NEW, AlarmTransition.UPDATE):
            # An UPDATE can raise the severity into a route that the NEW did not match;
            # routes already started are skipped, so a repeated event adds nothing.
            if t is AlarmTransition.NEW or alarm.status in ("", "active_unack"):
                await self._on_new(alarm, context_id)
        elif t is AlarmTransition.ESCALATE:
            await self._on_escalate(alarm, context_id)
        elif t is AlarmTransition.ACKNOWLEDGED:
            await self._stop(alarm, "acknowledged", actor)
        elif t is AlarmTransition.CLEARED:
            await self._stop(alarm, "cleared", actor)

    async def _on_new(self, alarm: AlarmEvent, context_id: str | None) -> None:
        routes = matching_routes(self.cfg, alarm, self._units(alarm)[0])
        if not routes:
            self.log.info("notify: alarm %s (%s) matches no route", alarm.alarm_id, alarm.category)
            return
        # Never in the future (a device clock ahead of ours must not delay step 0).
        started = min(alarm.ts or self.clock.time(), self.clock.time())
        for route in routes:
            key = (alarm.alarm_id, route.name)
            tracked = self.tracked.get(key)
            if tracked is None:
                existing = await self.core.storage.fetchone(
                    "SELECT step FROM notify_escalation WHERE alarm_id = ? AND route = ?", key
                )
                if existing is not None:
                    continue  # handled before (a replay) and since stopped
                tracked = Tracked(alarm, route, -1, step_due(route, 0, started), started, context_id)
                await self._save(tracked)
                self.tracked[key] = tracked
            elif alarm.transition is AlarmTransition.UPDATE:
                tracked.alarm = alarm  # later steps show the latest value and severity
            # Also for a repeated NEW: sends only what is due and not yet in the outbox.
            await self._advance(tracked)

    async def _on_escalate(self, alarm: AlarmEvent, context_id: str | None) -> None:
        if not any(key[0] == alarm.alarm_id for key in self.tracked):
            seen = await self.core.storage.fetchone(
                "SELECT 1 FROM notify_escalation WHERE alarm_id = ?", (alarm.alarm_id,)
            )
            if seen is None:
                # An alarm that began before notify was running (or configured): start it now,
                # from the first step, then move to where the engine says it is.
                await self._on_new(alarm, context_id)
        for (alarm_id, _), tracked in list(self.tracked.items()):
            if alarm_id != alarm.alarm_id or tracked.due is None:
                continue
            # escalation_step is the step the engine has reached; 0 (unnumbered) means "the next one".
            target = alarm.escalation_step if alarm.escalation_step > 0 else tracked.step + 1
            if target <= tracked.step:
                continue  # our own timer got there first
            tracked.alarm = alarm
            await self._send_step(tracked, target)
            tracked.step = target
            await self._schedule_next(tracked)

    async def _advance(self, tracked: Tracked) -> None:
        """Send every step that is due now (a restart may have skipped several), then re-arm."""
        now = self.clock.time()
        while tracked.due is not None and tracked.due <= now:
            step = tracked.step + 1
            if step > 0 and not tracked.route.escalation.own_timer:
                break  # later steps only on the engine's ESCALATE
            await self._send_step(tracked, step)
            tracked.step = step
            tracked.due = step_due(tracked.route, step + 1, tracked.started)
        await self._schedule_next(tracked, recompute=False)

    async def _schedule_next(self, tracked: Tracked, *, recompute: bool = True) -> None:
        if recompute:
            tracked.due = step_due(tracked.route, tracked.step + 1, tracked.started)
        await self._save(tracked)
        if tracked.due is None:
            self.timers.cancel(tracked.timer_key)
            self.tracked.pop((tracked.alarm.alarm_id, tracked.route.name), None)
        elif self._timer_driven(tracked):
            self._set_timer(tracked.timer_key, tracked.due)
        else:
            self.timers.cancel(tracked.timer_key)

    @staticmethod
    def _timer_driven(tracked: Tracked) -> bool:
        # Without own_timer only the first step runs on our clock; the rest wait for the engine.
        return tracked.route.escalation.own_timer or tracked.step < 0

    async def _stop(self, alarm: AlarmEvent, why: str, actor: str | None = None) -> None:
        for key, tracked in list(self.tracked.items()):
            if key[0] == alarm.alarm_id:
                self.timers.cancel(tracked.timer_key)
                del self.tracked[key]
        await self.core.storage.execute(
            "UPDATE notify_escalation SET due = NULL WHERE alarm_id = ? AND due IS NOT NULL", (alarm.alarm_id,),
            lane=Lane.ALARM,
        )
        rows = await self.core.storage.fetchall(
            "SELECT route FROM notify_escalation WHERE alarm_id = ?", (alarm.alarm_id,)
        )
        routes = [self.routes[r[0]] for r in rows if r[0] in self.routes]
        if why == "acknowledged":
            await self.outbox.cancel_escalations(alarm.alarm_id)
            wanted = {c for r in routes if r.notify_acknowledged for c in r.channels}
        else:
            wanted = {c for r in routes if r.notify_cleared for c in r.channels}
        if wanted:
            await self._send_followup(alarm, why, wanted, actor)

    def _set_timer(self, key: str, due: float) -> None:
        self.timers.set(Timer(key=key, kind="notify", due=due))

    async def _fire(self, timer: Timer) -> None:
        key = timer.key
        async with self._lock:
            kind, _, rest = key.partition("|")
            if kind == "esc":
                alarm_id, _, route = rest.partition("|")
                tracked = self.tracked.get((alarm_id, route))
                if tracked is not None:
                    await self._advance(tracked)
            elif kind == "digest":
                recipient, _, channel = rest.rpartition("|")
                await self._digest(recipient, channel)
            elif kind == "purge":
                self._set_timer("purge|", self.clock.time() + 86_400)  # re-armed first: a failure must not end it
                await self.outbox.purge(self.clock.time())
                for entry in self.channels.entries.values():
                    purge = getattr(entry.notifier, "purge", None)
                    if purge is not None:
                        await purge(self.clock.time())

    @staticmethod
    def _escalation_row(t: Tracked) -> tuple[Any, ...]:
        return (t.alarm.alarm_id, t.route.name, t.step, t.due, t.started, t.context_id, _enc.encode(t.alarm).decode())

    async def _save(self, t: Tracked) -> None:
        await self.core.storage.execute(SQL_ESCALATION, self._escalation_row(t), lane=Lane.ALARM)

    def _queue_save(self, t: Tracked) -> None:
        """Queued, not awaited (the store may be refusing writes right now)."""
        self.core.storage.put_nowait(SQL_ESCALATION, [self._escalation_row(t)], lane=Lane.ALARM)

    # -- building messages -------------------------------------------------------------------

    def _units(self, alarm: AlarmEvent) -> tuple[set[str], str]:
        return unit_names(getattr(self.core, "registry", None), alarm.unit_id)

    def _values(self, alarm: AlarmEvent, step: int, started: float) -> dict[str, Any]:
        return {
            "unit": self._units(alarm)[1],
            **msgspec.to_builtins(alarm),
            "category": str(alarm.category),
            "severity": int(alarm.severity),
            "step": step,
            "minutes": max(0, round((self.clock.time() - started) / 60)),
            **describe(alarm, getattr(self.core, "registry", None)),
        }

    async def _send_step(self, tracked: Tracked, step: int) -> None:
        alarm, route = tracked.alarm, tracked.route
        people = recipients(self.cfg, step_of(route, step), self._units(alarm)[0])
        kind = "new" if step == 0 else "escalate"
        entries = await self._entries(alarm, route.channels, people, kind, f"s{step}", step,
                                      tracked.context_id, tracked.started)
        if not entries:
            self.log.warning("notify: alarm %s step %d on route %s reaches nobody (roles %s, unit %s)",
                             alarm.alarm_id, step, route.name, [str(r) for r in step_of(route, step).roles],
                             alarm.unit_id)
        await self.outbox.add(entries)

    async def _send_followup(self, alarm: AlarmEvent, kind: str, channels: set[str], actor: str | None) -> None:
        """Tell everyone who was told about the alarm (and only them) that it cleared / was acknowledged."""
        rows = await self.core.storage.fetchall(
            "SELECT DISTINCT recipient, channel, context_id FROM notify_outbox WHERE alarm_id = ? "
            "AND kind IN ('new', 'escalate') AND status NOT IN ('cancelled', 'failed')",
            (alarm.alarm_id,),
        )
        if not rows:
            return
        started_row = await self.core.storage.fetchone(
            "SELECT min(started_ts) FROM notify_escalation WHERE alarm_id = ?", (alarm.alarm_id,)
        )
        started = started_row[0] if started_row and started_row[0] is not None else alarm.ts
        context_id = rows[0][2]
        by_channel: dict[str, list[Person]] = {}
        for recipient, channel, _ in rows:
            if channel not in channels:
                continue
            people = by_channel.setdefault(channel, [])
            if recipient in self._people:
                people.append(self._people[recipient])
        entries: list[Entry] = []
        for channel, people in by_channel.items():
            entries += await self._entries(alarm, [channel], people, kind, kind, 0, context_id, started,
                                           extra={"by": actor or ""})
        await self.outbox.add(entries)

    async def _entries(self, alarm: AlarmEvent, channel_keys: list[str], people: list[Person], kind: str,
                       tag: str, step: int, context_id: str | None, started: float,
                       extra: dict[str, Any] | None = None, existing: set[str] | None = None) -> list[Entry]:
        if existing is None:
            existing = await self.outbox.existing_keys(alarm.alarm_id)
        values = {**self._values(alarm, step, started), **(extra or {})}
        urgent = AlarmCategory(alarm.category) in self.cfg.urgent_categories
        exempt = kind == "new" and AlarmCategory(alarm.category) in self.cfg.rate_limit.exempt_categories
        now = self.clock.time()
        entries: list[Entry] = []
        for key in channel_keys:
            channel = self.channels.get(key)
            if channel is None:
                continue
            if channel.group:
                targets: list[tuple[str, str, list[str], str, Person | None]] = [(
                    "*", "", [p.contacts[key] for p in people if key in p.contacts],
                    channel.language or str(self.cfg.language), None,
                )]
            else:
                targets = [
                    (p.name, p.contacts[key], [], str(p.language or self.cfg.language), p)
                    for p in people if key in p.contacts
                ]
            for recipient, address, mentions, language, person in targets:
                dedup = f"{alarm.alarm_id}|{tag}|{recipient}|{key}"
                if dedup in existing:
                    continue
                url = self.link(alarm.alarm_id, self.user_of(person) if person is not None else "*")
                title, text = self.renderer.render(kind, key, language,
                                                   {**values, "recipient": recipient, "link": url})
                text = with_link(text, url, language)
                message = Message(
                    id=new_id(), kind=kind, channel=key, recipient=recipient, address=address,
                    mentions=mentions, title=title, text=text, language=language, alarm_id=alarm.alarm_id,
                    category=str(alarm.category), severity=int(alarm.severity), step=step, ts=now,
                    data={"unit_id": alarm.unit_id, "device_id": alarm.device_id, "point_id": alarm.point_id,
                          "location_id": alarm.location_id, "value": alarm.value},
                    url=url,
                )
                next_ts = now
                if person is not None and not urgent:
                    quiet_end = quiet_until(person, now, self.cfg.tz)
                    if quiet_end is not None:
                        next_ts = quiet_end
                status = "pending"
                limiters = self.limiters.get(key) or [self.limiter]
                if not exempt and not admit_all(limiters, recipient, key, now):
                    status = "held"
                    digest_key = f"digest|{recipient}|{key}"
                    if digest_key not in self.timers:
                        self._set_timer(digest_key, max(lim.window_end(recipient, key, now) for lim in limiters))
                entries.append(Entry(dedup, message, context_id, status, next_ts, int(alarm.severity)))
        return entries

    async def _digest(self, recipient: str, channel: str) -> None:
        rows = await self.core.storage.fetchall(
            "SELECT id, message, context_id FROM notify_outbox WHERE status = 'held' AND recipient = ? "
            "AND channel = ? ORDER BY created_ts, id",
            (recipient, channel),
        )
        if not rows:
            return
        entry = self.channels.get(channel)
        held = [msgspec.json.decode(r[1], type=Message) for r in rows]
        first = held[0]
        shown = [m.title for m in held[:20]]
        title, text = self.renderer.render("digest", channel, first.language, {
            "count": len(held), "items": shown, "more": max(0, len(held) - len(shown)),
            "recipient": recipient, "category": "", "ts": self.clock.time(),
        })
        digest = Message(
            id=new_id(), kind="digest", channel=channel, recipient=recipient, address=first.address,
            mentions=sorted({m for h in held for m in h.mentions}), title=title, text=text,
            language=first.language, severity=max(h.severity for h in held), ts=self.clock.time(),
            data={"held": [r[0] for r in rows], "alarms": sorted({h.alarm_id for h in held})},
        )
        person = self._people.get(recipient)
        next_ts = self.clock.time()
        if person is not None and entry is not None and not entry.group:
            urgent = any(AlarmCategory(h.category) in self.cfg.urgent_categories for h in held if h.category)
            quiet_end = None if urgent else quiet_until(person, next_ts, self.cfg.tz)
            next_ts = quiet_end or next_ts
        # Keyed by the first held row: a digest interrupted by a restart is rebuilt, not repeated.
        await self.outbox.add([Entry(f"digest|{recipient}|{channel}|{rows[0][0]}", digest, rows[0][2], "pending",
                                     next_ts, digest.severity)])
        await self.core.storage.executemany(
            "UPDATE notify_outbox SET status = 'digested', last_error = ? WHERE id = ? AND status = 'held'",
            [(f"in digest {digest.id}", r[0]) for r in rows], lane=Lane.ALARM,
        )


LINK_LABEL = {"zh": "查看告警：", "en": "Open the alarm: "}


def with_link(text: str, url: str, language: str) -> str:
    """Every alarm message carries its link, whatever a site's template says (unless it has it already)."""
    if not url or url in text:
        return text
    return f"{text}\n{LINK_LABEL.get(language, LINK_LABEL['en'])}{url}"
