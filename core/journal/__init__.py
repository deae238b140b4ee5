"""The journal: every durable entry of the site, numbered, append-only.

Producers append entries (state changes, alarm transitions, availability,
link changes, commands, notifications, registry changes); the storage writer
commits them and numbers them in commit order (``seq``); the event bus
delivers them to in-process subscribers once committed (the live tail).
Consumers that must not miss anything read it from a stored cursor
(``DurableConsumer``): the alarm engine, notify, linkage, rollups — and
outside the process the uplink and federation (``GET /api/journal``).

See docs/architecture.md, "The journal", for what a consumer implements.
"""

from __future__ import annotations

import logging
from typing import Any, Callable, Iterable, Sequence

import msgspec

from firebus.sdk.context import Context
from firebus.sdk.events import Event, Lane, Payload, StateChanged

from .rows import COLUMNS, PayloadTypes, decode_rows

log = logging.getLogger("firebus.core.journal")

_json = msgspec.json.Encoder()

SQL_CURSOR = """
INSERT INTO journal_cursors (name, seq, ahead, version, updated_ts) VALUES (?, ?, ?, ?, ?)
ON CONFLICT (name) DO UPDATE SET seq = excluded.seq, ahead = excluded.ahead, version = excluded.version,
  updated_ts = excluded.updated_ts
WHERE excluded.version > journal_cursors.version
"""

PointResolver = Callable[[str], tuple[str, str, str] | None]  # point id → (device id, key, class)


class Journal:
    """Appending, reading and cursors; the bus's sink for journal entries."""

    def __init__(self, storage: Any, bus: Any, points: PointResolver | None = None, clock: Any = None) -> None:
        self.storage = storage
        self.bus = bus
        self.points: PointResolver = points or (lambda point_id: None)
        self.clock = clock
        self.types = PayloadTypes()
        self.appended = 0
        #: where consumers without a stored cursor start ("start"): set when the store opens
        self.start_seq = 0
        #: how subscriptions are run (the core's task group); set by the core
        self.start_task: Callable[..., Any] | None = None
        self.consumers: dict[str, Any] = {}
        self._unknown: set[str] = set()
        storage.on_entries = self._committed
        storage.on_released = self._released
        bus.attach_journal(self)

    # -- writing -----------------------------------------------------------------------------

    def append_event(self, event: Event, on_durable: Callable[[], None] | None = None) -> None:
        if self.clock is not None:
            event.time_fired = self.clock.time()
        self.appended += 1
        self.storage.append([event], None, on_durable, event.lane)

    def append(
        self,
        payload: Payload,
        context: Context | None = None,
        *,
        lane: Lane | None = None,
        parts: list[tuple[str, Sequence[Sequence[Any]]]] | None = None,
        on_durable: Callable[[], None] | None = None,
    ) -> Event:
        """Journal one entry, committing ``parts`` (rows of other tables) in the same transaction."""
        ts = self.clock.time() if self.clock is not None else None
        event = Event(data=payload, context=context or Context(), lane=lane) if ts is None else Event(
            data=payload, context=context or Context(), lane=lane, time_fired=ts)
        self.appended += 1
        self.storage.append([event], parts, on_durable, event.lane)
        return event

    def append_many(
        self,
        events: list[Event],
        *,
        parts: list[tuple[str, Sequence[Sequence[Any]]]] | None = None,
        on_durable: Callable[[], None] | None = None,
        lane: Lane | None = None,
    ) -> None:
        self.appended += len(events)
        self.storage.append(events, parts, on_durable, lane)

    def _committed(self, events: list[Event]) -> None:
        self.bus.deliver(events)

    def _released(self, events: list[Event]) -> None:
        self.bus.deliver(events)

    @property
    def last_seq(self) -> int:
        return int(self.storage.last_seq)

    # -- reading -----------------------------------------------------------------------------

    async def read(
        self,
        after: int,
        limit: int = 1000,
        *,
        types: Iterable[str] | None = None,
        lanes: Iterable[Lane] | None = None,
        until: int | None = None,
    ) -> list[Event]:
        """Committed entries with ``seq > after`` (and ``≤ until``), oldest first."""
        where = ["seq > ?"]
        params: list[Any] = [after]
        if until is not None:
            where.append("seq <= ?")
            params.append(until)
        if types is not None:
            names = sorted(set(types))
            where.append(f"type IN ({', '.join('?' * len(names))})")
            params += names
        if lanes is not None:
            lane_names = sorted({str(lane) for lane in lanes})
            where.append(f"lane IN ({', '.join('?' * len(lane_names))})")
            params += lane_names
        fetch = getattr(self.storage, "fetchall_bulk", None) or self.storage.fetchall
        rows = await fetch(
            f"SELECT {COLUMNS} FROM journal WHERE {' AND '.join(where)} ORDER BY seq LIMIT ?", (*params, limit)
        )
        return decode_rows(rows, self.types, self.points, on_unknown=self._warn_unknown)

    def subscribe(
        self,
        name: str,
        handler: Callable[[list[Event]], Any],
        types: Iterable[type[Payload]],
        *,
        provisional: bool = False,
        initial: str | int = "start",
        batch_max: int = 1000,
        ack: str = "auto",
        max_unacked: int = 0,
        **options: Any,
    ) -> Any:
        """A durable consumer run in the core's task group (``firebus.sdk.JournalAPI.subscribe``)."""
        from .consumer import DurableConsumer

        if name in self.consumers:
            raise ValueError(f"journal: a consumer named {name!r} already exists")
        consumer = DurableConsumer(self, name, handler, types, provisional=provisional, initial=initial,
                                   batch_max=batch_max, ack=ack, max_unacked=max_unacked, **options)
        self.consumers[name] = consumer
        if self.start_task is None:
            raise RuntimeError("journal: subscriptions need a running core")
        self.start_task(consumer.run, name=f"journal:{name}")
        return consumer

    def metrics(self) -> dict[str, Any]:
        return {
            "last_seq": self.last_seq,
            "appended": self.appended,
            "consumers": {name: c.metrics() for name, c in self.consumers.items()},
        }

    def _warn_unknown(self, type_name: str) -> None:
        if type_name not in self._unknown:
            self._unknown.add(type_name)
            log.warning("journal: entries of type %r are not known to any loaded plugin; skipped", type_name)

    async def cursor(self, name: str) -> tuple[int, set[int], int] | None:
        """(seq, ahead, version) of consumer ``name``, or None if it never saved one."""
        row = await self.storage.fetchone("SELECT seq, ahead, version FROM journal_cursors WHERE name = ?", (name,))
        if row is None:
            return None
        return int(row[0]), set(msgspec.json.decode(row[1] or "[]")), int(row[2])

    async def cursors(self) -> dict[str, int]:
        return {name: seq for name, seq in await self.storage.fetchall("SELECT name, seq FROM journal_cursors")}

    def cursor_row(self, name: str, seq: int, ahead: Iterable[int], version: int, now: float) -> tuple[Any, ...]:
        return (name, seq, _json.encode(sorted(ahead)).decode(), version, now)


def state_resolver(registry: Any) -> PointResolver:
    """Point id → (device id, key, class) from the core's registry (for decoding state rows)."""

    def resolve(point_id: str) -> tuple[str, str, str] | None:
        point = registry.points.get(point_id)
        if point is None:
            return None
        return point.device_id, point.key, point.point_class

    return resolve


__all__ = ["Journal", "SQL_CURSOR", "StateChanged", "quiesce", "state_resolver"]


async def quiesce(bus: Any, storage: Any, timeout: float = 20.0) -> None:
    """Wait until nothing is in flight: every entry committed, delivered and handled, and
    whatever the handlers wrote committed and delivered in turn (tests, orderly stops)."""
    import anyio

    with anyio.fail_after(timeout):
        while True:
            before = (bus.published, storage.commits)
            await bus.drain(timeout=timeout)
            await storage.barrier()
            await bus.drain(timeout=timeout)
            if (bus.published, storage.commits) == (before[0], before[1] + 1) or (
                    bus.published == before[0] and storage.commits == before[1]):
                return
