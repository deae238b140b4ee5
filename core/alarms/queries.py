"""Queries: open alarms, stored alarms with the engine's fresher copies, lookups, metrics.

Nothing here changes an alarm.  Stored alarms are read through the readers, never
through the writer's queue.
"""

from __future__ import annotations

from typing import Any, Iterable

import anyio
import msgspec

from firebus.sdk import AlarmCategory

from .checkpoint import Checkpoints
from .model import Alarm, AlarmStatus, Transition


class Queries(Checkpoints):
    """Read what the engine holds and what it has committed."""

    async def list_alarms(
        self,
        status: AlarmStatus | str | Iterable[AlarmStatus | str] | None = None,
        *,
        unit_id: str | None = None,
        category: AlarmCategory | str | None = None,
        device_id: str | None = None,
        limit: int = 500,
        offset: int = 0,
    ) -> list[Alarm]:
        """Alarms, most urgent first (active, then severity, then newest).

        Reads what is committed (every operator action returns only once its
        transition is), through the readers: never through the writer's queue.
        """
        statuses = None
        if status is not None:
            statuses = [AlarmStatus(status)] if isinstance(status, str) else [AlarmStatus(s) for s in status]
        stored = await self.store.query_alarms(
            statuses, unit_id=unit_id, category=category, device_id=device_id, limit=limit, offset=offset
        )
        return self.freshest(stored)

    def freshest(self, stored: list[Alarm]) -> list[Alarm]:
        """Stored alarms with the engine's own copies where it has one: counts and last values
        of open alarms are checkpointed, not written per reading (transitions always are)."""
        live = self._open
        return [msgspec.structs.replace(live[a.id]) if a.id in live else a for a in stored]

    async def get(self, alarm_id: str) -> Alarm | None:
        return self._open.get(alarm_id) or self._closed.get(alarm_id) or await self.store.get_alarm(alarm_id)

    async def history(self, alarm_id: str) -> list[Transition]:
        if self._history or self._outbox:
            self._flush()
        with anyio.move_on_after(5):  # alarm-lane commits; a refusing disk must not hang a reader
            for done in list(self._inflight):
                await done.wait()
        return await self.store.history(alarm_id)

    async def linkage_log(self, alarm_id: str | None = None) -> list[Any]:
        return await self.store.linkage(alarm_id)

    @property
    def busy(self) -> bool:
        """Work queued or in hand: journal entries not yet handled, transitions not yet committed."""
        sub = getattr(self.consumer, "_sub", None)
        return bool(self._outbox or self._history or (sub is not None and not sub.idle))

    def open_alarms(self) -> list[Alarm]:
        return sorted(self._open.values(), key=lambda a: (not a.active, -a.severity, -a.start_ts))

    def metrics(self) -> dict[str, Any]:
        return {
            "open": len(self._open),
            "active": len(self._active),
            "timers": len(self.timers),
            "timers_fired": self.timers.fired,
            "timer_errors": self.timers.errors,
            "rule_errors": self.rule_errors,
            "config_errors": len(self._config_errors),
            "evaluated": self.evaluated,
            "late_alarms": self.late_alarms,
            "skipped_steady": self.skipped,
            "unconfirmed_rule_states": len(self._dirty_rules),
            "journal": self.consumer.metrics() if self.consumer else {},
            "linkage": self.linkage.metrics(),
        }
