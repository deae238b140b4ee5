"""Escalation state: where each alarm is on each route, in memory and in ``notify_escalation``.

A row per (alarm, route) holds the last step sent and when the next is due
(``due`` NULL once escalation stopped: acknowledged, cleared, or past the last
repeat).  The timers are re-armed from the rows at start, so a step due while the
core was down is sent once when it is back; a row with ``due`` NULL tells a
replayed NEW that the alarm was handled before.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import msgspec

from firebus.sdk import AlarmEvent, Lane

from .config import Route
from .timers import escalation_key

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
        return escalation_key(self.alarm.alarm_id, self.route.name)


class EscalationStore:
    """The ``notify_escalation`` rows (alarm lane: escalation state is alarm handling)."""

    def __init__(self, storage: Any, log: logging.Logger | Any) -> None:
        self.storage = storage
        self.log = log

    @staticmethod
    def row(t: Tracked) -> tuple[Any, ...]:
        return (t.alarm.alarm_id, t.route.name, t.step, t.due, t.started, t.context_id, _enc.encode(t.alarm).decode())

    async def save(self, t: Tracked) -> None:
        await self.storage.execute(SQL_ESCALATION, self.row(t), lane=Lane.ALARM)

    def queue_save(self, t: Tracked) -> None:
        """Queued, not awaited (the store may be refusing writes right now)."""
        self.storage.put_nowait(SQL_ESCALATION, [self.row(t)], lane=Lane.ALARM)

    async def load_escalating(self, routes: dict[str, Route]) -> list[Tracked]:
        """Every alarm still escalating, on a route that still exists."""
        rows = await self.storage.fetchall(
            "SELECT alarm_id, route, step, due, started_ts, context_id, alarm FROM notify_escalation "
            "WHERE due IS NOT NULL"
        )
        found: list[Tracked] = []
        for alarm_id, route_name, step, due, started, context_id, alarm_json in rows:
            route = routes.get(route_name)
            if route is None:
                self.log.warning("notify: alarm %s was escalating on route %s, which no longer exists",
                                 alarm_id, route_name)
                continue
            found.append(Tracked(_alarm_dec.decode(alarm_json), route, step, due, started, context_id))
        return found

    async def has_route(self, alarm_id: str, route: str) -> bool:
        """Whether the alarm was ever started on the route (a replayed NEW adds nothing then)."""
        row = await self.storage.fetchone(
            "SELECT step FROM notify_escalation WHERE alarm_id = ? AND route = ?", (alarm_id, route)
        )
        return row is not None

    async def has_alarm(self, alarm_id: str) -> bool:
        row = await self.storage.fetchone("SELECT 1 FROM notify_escalation WHERE alarm_id = ?", (alarm_id,))
        return row is not None

    async def end(self, alarm_id: str) -> list[str]:
        """Stop every route of the alarm; the names of the routes it was on."""
        await self.storage.execute(
            "UPDATE notify_escalation SET due = NULL WHERE alarm_id = ? AND due IS NOT NULL", (alarm_id,),
            lane=Lane.ALARM,
        )
        rows = await self.storage.fetchall("SELECT route FROM notify_escalation WHERE alarm_id = ?", (alarm_id,))
        return [r[0] for r in rows]

    async def started(self, alarm_id: str) -> float | None:
        """When the alarm's first route started, if it was ever tracked."""
        row = await self.storage.fetchone(
            "SELECT min(started_ts) FROM notify_escalation WHERE alarm_id = ?", (alarm_id,)
        )
        return row[0] if row and row[0] is not None else None
