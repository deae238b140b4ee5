"""``ntfy``: a push stream served by firebus itself, in ntfy's subscribe format.

The ntfy Android app (F-Droid build: no Firebase; Google Play build: no Firebase for
self-hosted servers) keeps one connection per server open in a foreground service, so
pushes reach phones in mainland China where FCM-based Web Push does not.  A person's
contact on this channel is a topic name; ``send`` stores the message (durable: a phone
that was offline replays it with ``since=``) and hands it to the open streams of that
topic.  The HTTP side is ``ntfy_web``.

Message ids are the outbox ids: a retried send stores nothing twice, and the app drops
an id it has already shown.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any, ClassVar

import anyio
import msgspec
from anyio.streams.memory import MemoryObjectSendStream

from firebus.sdk.durations import parse_duration
from firebus.sdk import Lane

from .channel import Channel
from .media import file_name, public_still
from .message import ChannelContext, DeliveryError, Message

#: ntfy's own topic rule (server/server.go: topicRegex).
TOPIC = re.compile(r"^[-_A-Za-z0-9]{1,64}$")


class NtfyOptions(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    retention: str | float = "7d"  # how long messages are kept for replay (since=…)
    keepalive: str | float = "45s"  # ntfy's default; the app reconnects after ~5 min of silence


class NtfyAttachment(msgspec.Struct, omit_defaults=True):
    """ntfy's ``attachment`` object: the app shows an image attachment in the notification."""

    name: str
    url: str
    type: str | None = None
    size: int | None = None


class NtfyEvent(msgspec.Struct, omit_defaults=True):
    """One line of the stream: ntfy's JSON message format, field names as ntfy documents them."""

    id: str
    time: int
    event: str  # open | keepalive | message
    topic: str
    expires: int | None = None
    title: str | None = None
    message: str | None = None
    priority: int | None = None
    tags: list[str] | None = None
    click: str | None = None
    attachment: NtfyAttachment | None = None


_enc = msgspec.json.Encoder()
_dec = msgspec.json.Decoder(NtfyEvent)

# Emoji tags the ntfy app shows in front of the title (its emoji short codes).
_TAGS = {
    "fire": ["rotating_light", "fire"],
    "gas": ["rotating_light", "warning"],
    "electrical_alarm": ["warning", "zap"],
    "electrical_pre_alarm": ["zap"],
    "supervisory": ["droplet"],
    "fault": ["wrench"],
    "offline": ["electric_plug"],
}
_KIND_TAGS = {"cleared": ["white_check_mark"], "acknowledged": ["ok_hand"], "digest": ["inbox_tray"]}


def priority_of(message: Message) -> int:
    """ntfy priority 1–5: a fire alarm is 5 (max: sound through Do Not Disturb if the user allows)."""
    if message.kind in ("cleared", "acknowledged", "test"):
        return 3
    if message.category == "fire" or message.severity >= 60:
        return 5
    if message.severity >= 50 or message.category == "gas":
        return 5 if message.category == "gas" else 4
    if message.severity >= 30:
        return 3
    return 2


def attachment_of(message: Message) -> NtfyAttachment | None:
    """The alarm's still, by its signed link (the app downloads it from there)."""
    still = public_still(message)
    if still is None:
        return None
    return NtfyAttachment(name=file_name(still), url=str(still["url"]), type=str(still["content_type"]),
                          size=int(still["bytes"]) if still.get("bytes") else None)


def tags_of(message: Message) -> list[str]:
    return list(_KIND_TAGS.get(message.kind) or _TAGS.get(message.category, []))


@dataclass(eq=False)  # identity: one per open stream
class _Subscriber:
    topics: frozenset[str]
    send: MemoryObjectSendStream[tuple[int, NtfyEvent]]


@dataclass
class NtfyHub:
    """Open streams per topic.  A slow reader loses live events, never the stored ones:
    its buffer is bounded and, when full, it is closed and the app reconnects with ``since=``."""

    subscribers: set[Any] = field(default_factory=set)
    closed: bool = False

    def open(self, topics: frozenset[str]) -> tuple[Any, Any]:
        send, receive = anyio.create_memory_object_stream[tuple[int, NtfyEvent]](256)
        sub = _Subscriber(topics, send)
        self.subscribers.add(sub)
        if self.closed:
            send.close()
        return sub, receive

    def close_one(self, sub: Any) -> None:
        self.subscribers.discard(sub)
        sub.send.close()

    def publish(self, seq: int, event: NtfyEvent) -> None:
        for sub in list(self.subscribers):
            if event.topic in sub.topics:
                try:
                    sub.send.send_nowait((seq, event))
                except (anyio.WouldBlock, anyio.BrokenResourceError, anyio.ClosedResourceError):
                    self.close_one(sub)

    def close(self) -> None:
        """The service stops: every stream ends (the app reconnects to the next core)."""
        self.closed = True
        for sub in list(self.subscribers):
            self.close_one(sub)


class NtfyChannel(Channel):
    type_key: ClassVar[str] = "ntfy"
    Options: ClassVar[type[msgspec.Struct]] = NtfyOptions

    def __init__(self, key: str, options: NtfyOptions, ctx: ChannelContext) -> None:
        super().__init__(key, options, ctx)
        try:
            self.retention_s = parse_duration(options.retention)
            self.keepalive_s = parse_duration(options.keepalive)
        except ValueError as exc:
            raise ValueError(str(exc)) from None
        # One hub for every ntfy channel of the service: topics are unique across them (config).
        self.hub: NtfyHub = getattr(ctx, "ntfy_hub", None) or NtfyHub()

    @property
    def storage(self) -> Any:
        return self.ctx.storage

    def event_of(self, message: Message, now: float) -> NtfyEvent:
        return NtfyEvent(
            id=message.id, time=int(now), event="message", topic=message.address,
            expires=int(math.ceil(now + self.retention_s)), title=message.title or None, message=message.text,
            priority=priority_of(message), tags=tags_of(message) or None, click=message.url or None,
            attachment=attachment_of(message),
        )

    async def send(self, message: Message) -> None:
        if not message.address or not TOPIC.match(message.address):
            raise DeliveryError(f"{message.recipient} has no valid ntfy topic on {self.key} "
                                f"({message.address!r}; letters, digits, - and _, at most 64)", permanent=True)
        event = self.event_of(message, self.ctx.time())
        await self.storage.execute(
            "INSERT INTO notify_ntfy (id, channel, topic, time, expires, event) VALUES (?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (id) DO NOTHING",
            (event.id, self.key, event.topic, event.time, event.expires, _enc.encode(event).decode()),
            lane=Lane.ALARM,
        )
        row = await self.storage.fetchone("SELECT seq, event FROM notify_ntfy WHERE id = ?", (event.id,))
        if row is None:
            raise DeliveryError("ntfy: the stored message vanished (purged at once?)")
        # A retry of a message stored before goes out again: the app drops an id it has shown.
        self.hub.publish(int(row[0]), _dec.decode(row[1]))

    async def purge(self, now: float) -> None:
        await self.storage.execute("DELETE FROM notify_ntfy WHERE channel = ? AND expires <= ?", (self.key, now),
                                   lane=Lane.ALARM)



_AGO = re.compile(r"^\d+(?:\.\d+)?[smhdw]$")


async def replay(storage: Any, topics: frozenset[str], since: str | None, now: float) -> list[tuple[int, NtfyEvent]]:
    """Stored messages of ``topics`` after ``since`` (ntfy's forms: ``all``, ``latest``, a message id,
    a unix time, a duration such as ``10m``), oldest first; expired ones never come back."""
    if not since or not topics:
        return []
    marks = ",".join("?" for _ in topics)
    base = f"SELECT seq, event FROM notify_ntfy WHERE topic IN ({marks}) AND expires > ?"
    params: list[Any] = [*sorted(topics), now]
    if since == "all":
        rows = await storage.fetchall(base + " ORDER BY seq", params)
    elif since == "latest":
        rows = await storage.fetchall(base + " ORDER BY seq DESC LIMIT 1", params)
    elif since.isdigit():
        rows = await storage.fetchall(base + " AND time >= ? ORDER BY seq", [*params, int(since)])
    elif _AGO.match(since):
        rows = await storage.fetchall(base + " AND time >= ? ORDER BY seq",
                                      [*params, int(now - parse_duration(since))])
    else:
        found = await storage.fetchone("SELECT seq FROM notify_ntfy WHERE id = ?", (since,))
        # An id no longer kept (purged, another server's): everything kept.  The app drops ids it
        # has shown, and a missed fire alarm is worse than one shown twice.
        after = int(found[0]) if found else 0
        rows = await storage.fetchall(base + " AND seq > ? ORDER BY seq", [*params, after])
    return [(int(r[0]), _dec.decode(r[1])) for r in rows]
