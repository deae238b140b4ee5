"""Alarm → messages: who is told on which channel, in what words, and when.

For a step of a route, a follow-up (cleared, acknowledged) or a digest, this
renders one ``Message`` per recipient and channel (one per group channel, with
mentions), signs its alarm link, and decides when it may go: a person's quiet
hours delay it unless the category is urgent; a recipient over their rate limit
has it *held* until the window passes, then sent as one digest.  The entries go
to the outbox, whose dedup key (alarm, step, recipient, channel) keeps a step
reached twice from being sent twice.
"""

from __future__ import annotations

import logging
from typing import Any

import msgspec

from firebus.sdk import AlarmCategory, AlarmEvent, Lane, new_id

from .alarm_links import AlarmLinks, with_link
from .config import NotifyConfig, Person
from .escalation_state import EscalationStore, Tracked
from .health import ChannelRegistry
from .message import Message
from .outbox import Entry, Outbox
from .policy import RateLimiter, admit_all, quiet_until
from .routing import describe, recipients, step_of, unit_names
from .templates import Renderer
from .timers import NotifyTimers, digest_key


def rate_limiters(cfg: NotifyConfig, channel_types: dict[str, type],
                  shared: RateLimiter) -> dict[str, list[RateLimiter]]:
    """Per channel: its own limit (or the site's ``shared`` one) and the vendor's, if it has one."""
    limiters: dict[str, list[RateLimiter]] = {}
    for ch in cfg.channels:
        own = [RateLimiter(ch.rate_limit.burst, ch.rate_limit.window_s)] if ch.rate_limit else [shared]
        vendor = getattr(channel_types.get(ch.type), "vendor_limit", None)
        if vendor:
            own.append(RateLimiter(int(vendor[0]), float(vendor[1])))
        limiters[ch.key] = own
    return limiters


class Composer:
    def __init__(self, core: Any, cfg: NotifyConfig, channel_types: dict[str, type], *, clock: Any,
                 log: logging.Logger | Any, channels: ChannelRegistry, outbox: Outbox, links: AlarmLinks,
                 store: EscalationStore, timers: NotifyTimers, media: Any = None) -> None:
        self.core = core
        self.media = media  # media.NotifyMedia: a video alarm's first message may wait for its still
        self.cfg = cfg
        self.clock = clock
        self.log = log
        self.channels = channels
        self.outbox = outbox
        self.links = links
        self.store = store
        self.timers = timers
        self.renderer = Renderer(cfg)
        self.limiter = RateLimiter(cfg.rate_limit.burst, cfg.rate_limit.window_s)
        self.limiters = rate_limiters(cfg, channel_types, self.limiter)
        self.people = {p.name: p for p in cfg.people}

    def user_of(self, person: Person) -> str:
        return person.user or person.name

    def units(self, alarm: AlarmEvent) -> tuple[set[str], str]:
        return unit_names(getattr(self.core, "registry", None), alarm.unit_id)

    def values(self, alarm: AlarmEvent, step: int, started: float) -> dict[str, Any]:
        """What a template may name."""
        return {
            "unit": self.units(alarm)[1],
            **msgspec.to_builtins(alarm),
            "category": str(alarm.category),
            "severity": int(alarm.severity),
            "step": step,
            "minutes": max(0, round((self.clock.time() - started) / 60)),
            **describe(alarm, getattr(self.core, "registry", None)),
        }

    async def send_step(self, tracked: Tracked, step: int) -> None:
        """Step ``step`` of the alarm's route, to the people it names (0: "new", later: "escalate")."""
        alarm, route = tracked.alarm, tracked.route
        people = recipients(self.cfg, step_of(route, step), self.units(alarm)[0])
        kind = "new" if step == 0 else "escalate"
        entries = await self.entries(alarm, route.channels, people, kind, f"s{step}", step,
                                     tracked.context_id, tracked.started)
        if not entries:
            self.log.warning("notify: alarm %s step %d on route %s reaches nobody (roles %s, unit %s)",
                             alarm.alarm_id, step, route.name, [str(r) for r in step_of(route, step).roles],
                             alarm.unit_id)
        await self.outbox.add(entries)

    async def send_followup(self, alarm: AlarmEvent, kind: str, channels: set[str], actor: str | None) -> None:
        """Tell everyone who was told about the alarm (and only them) that it cleared / was acknowledged."""
        rows = await self.core.storage.fetchall(
            "SELECT DISTINCT recipient, channel, context_id FROM notify_outbox WHERE alarm_id = ? "
            "AND kind IN ('new', 'escalate') AND status NOT IN ('cancelled', 'failed')",
            (alarm.alarm_id,),
        )
        if not rows:
            return
        started = await self.store.started(alarm.alarm_id)
        if started is None:
            started = alarm.ts
        context_id = rows[0][2]
        by_channel: dict[str, list[Person]] = {}
        for recipient, channel, _ in rows:
            if channel not in channels:
                continue
            people = by_channel.setdefault(channel, [])
            if recipient in self.people:
                people.append(self.people[recipient])
        entries: list[Entry] = []
        for channel, people in by_channel.items():
            entries += await self.entries(alarm, [channel], people, kind, kind, 0, context_id, started,
                                          extra={"by": actor or ""})
        await self.outbox.add(entries)

    async def entries(self, alarm: AlarmEvent, channel_keys: list[str], people: list[Person], kind: str,
                      tag: str, step: int, context_id: str | None, started: float,
                      extra: dict[str, Any] | None = None, existing: set[str] | None = None) -> list[Entry]:
        """The outbox entries for ``people`` on ``channel_keys`` not already in the outbox (``existing``
        dedup keys; read from the outbox when not given)."""
        if existing is None:
            existing = await self.outbox.existing_keys(alarm.alarm_id)
        values = {**self.values(alarm, step, started), **(extra or {})}
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
                url = self.links.link(alarm.alarm_id, self.user_of(person) if person is not None else "*")
                title, text = self.renderer.render(kind, key, language,
                                                   {**values, "recipient": recipient, "link": url})
                text = with_link(text, url, language)
                message = Message(
                    id=new_id(), kind=kind, channel=key, recipient=recipient, address=address,
                    mentions=mentions, title=title, text=text, language=language, alarm_id=alarm.alarm_id,
                    category=str(alarm.category), severity=int(alarm.severity), step=step, ts=now,
                    data={"unit_id": alarm.unit_id, "device_id": alarm.device_id, "point_id": alarm.point_id,
                          "location_id": alarm.location_id, "value": alarm.value,
                          **({"occurred_ts": alarm.occurred_ts} if alarm.occurred_ts is not None else {})},
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
                    timer = digest_key(recipient, key)
                    if timer not in self.timers:
                        self.timers.arm(timer, max(lim.window_end(recipient, key, now) for lim in limiters))
                entries.append(Entry(dedup, message, context_id, status, next_ts, int(alarm.severity)))
        if kind == "new" and self.media is not None and entries:
            await self.media.hold(alarm, entries)
        return entries

    async def restore_digests(self) -> None:
        """At start: messages held in a window that has passed (or is not remembered) go as a digest soon."""
        held = await self.core.storage.fetchall(
            "SELECT DISTINCT recipient, channel FROM notify_outbox WHERE status = 'held'"
        )
        for recipient, channel in held:
            self.timers.arm(digest_key(recipient, channel), self.clock.time())

    async def digest(self, recipient: str, channel: str) -> None:
        """Everything held for ``recipient`` on ``channel`` as one message."""
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
        person = self.people.get(recipient)
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
