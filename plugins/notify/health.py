"""Channels as registry objects with availability.

A channel is ``up`` after a delivery succeeds and ``down`` after
``down_after`` consecutive failures; every change is published on the bus
(``NotifyChannelChanged``) and kept in ``notify_channels`` for the panel.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any, ClassVar

from firebus.sdk import ActorKind, Context, Lane, Payload

from .channel import Channel
from .policy import SendPacer


class ChannelState(StrEnum):
    UNKNOWN = "unknown"
    UP = "up"
    DOWN = "down"


class NotifyChannelChanged(Payload):
    """A notification channel went down or came back (alarm lane: nobody hears an alarm otherwise)."""

    lane: ClassVar[Lane] = Lane.ALARM
    persist: ClassVar[bool] = True
    channel: str
    channel_type: str
    state: str
    reason: str = ""


SQL_CHANNEL = """
INSERT INTO notify_channels (key, type, state, failures, last_error, last_ok_ts, last_fail_ts, sent, failed)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (key) DO UPDATE SET type = excluded.type, state = excluded.state, failures = excluded.failures,
  last_error = excluded.last_error, last_ok_ts = excluded.last_ok_ts, last_fail_ts = excluded.last_fail_ts,
  sent = excluded.sent, failed = excluded.failed
"""


@dataclass
class ChannelEntry:
    key: str
    type_key: str
    notifier: Channel
    down_after: int = 3
    language: str | None = None
    state: ChannelState = ChannelState.UNKNOWN
    failures: int = 0  # consecutive
    last_error: str = ""
    last_ok_ts: float | None = None
    last_fail_ts: float | None = None
    sent: int = 0
    failed: int = 0
    #: the channel's request limit (``send_limit``), None: unpaced
    pacer: SendPacer | None = None

    @property
    def group(self) -> bool:
        return self.notifier.group

    def as_dict(self) -> dict[str, Any]:
        return {
            "key": self.key, "type": self.type_key, "state": str(self.state), "failures": self.failures,
            "last_error": self.last_error, "last_ok_ts": self.last_ok_ts, "last_fail_ts": self.last_fail_ts,
            "sent": self.sent, "failed": self.failed,
            "send_limit": [{"count": c, "window_s": w} for c, w in self.pacer.limits] if self.pacer else None,
            "paced": self.pacer.waits if self.pacer else 0,
        }

    def row(self) -> tuple[Any, ...]:
        return (self.key, self.type_key, str(self.state), self.failures, self.last_error,
                self.last_ok_ts, self.last_fail_ts, self.sent, self.failed)


class ChannelRegistry:
    def __init__(self, core: Any, logger: Any) -> None:
        self.core = core
        self.log = logger
        self.entries: dict[str, ChannelEntry] = {}

    def add(self, entry: ChannelEntry) -> None:
        self.entries[entry.key] = entry

    def get(self, key: str) -> ChannelEntry | None:
        return self.entries.get(key)

    def snapshot(self) -> list[dict[str, Any]]:
        return [e.as_dict() for e in self.entries.values()]

    async def restore(self) -> None:
        """Carry the last known state over a restart (a channel down before is still suspect)."""
        for row in await self.core.storage.fetchall(
            "SELECT key, state, failures, last_error, last_ok_ts, last_fail_ts, sent, failed FROM notify_channels"
        ):
            entry = self.entries.get(row[0])
            if entry is not None:
                entry.state = ChannelState(row[1])
                entry.failures, entry.last_error, entry.last_ok_ts, entry.last_fail_ts, entry.sent, entry.failed = row[2:]

    async def succeeded(self, entry: ChannelEntry, now: float) -> None:
        entry.failures = 0
        entry.sent += 1
        entry.last_ok_ts = now
        entry.last_error = ""
        await self._set(entry, ChannelState.UP, "")

    async def failed(self, entry: ChannelEntry, now: float, error: str) -> None:
        entry.failures += 1
        entry.failed += 1
        entry.last_fail_ts = now
        entry.last_error = error
        if entry.failures >= entry.down_after:
            await self._set(entry, ChannelState.DOWN, error)
        else:
            await self._save(entry)

    async def _set(self, entry: ChannelEntry, state: ChannelState, reason: str) -> None:
        changed = entry.state is not state
        entry.state = state
        await self._save(entry)
        if changed:
            log = self.log.warning if state is ChannelState.DOWN else self.log.info
            log("notify: channel %s is %s%s", entry.key, state, f" ({reason})" if reason else "")
            self.core.bus.publish(
                NotifyChannelChanged(channel=entry.key, channel_type=entry.type_key, state=str(state), reason=reason),
                Context(actor=ActorKind.PLUGIN, actor_id="notify"),
            )

    async def _save(self, entry: ChannelEntry) -> None:
        await self.core.storage.execute(SQL_CHANNEL, entry.row(), lane=Lane.ALARM)
