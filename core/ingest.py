"""The ingest pipeline: readings in, current state + storage + bus events out.

Every reading goes through here, from polled and push drivers alike:

1. compare with the point's current state: a changed value (or fault) is a
   ``StateChanged`` event and a ``readings`` row; an identical value only moves
   ``last_reported`` (a ``StateReported`` event, a cheap UPDATE) — polled
   sensors repeating a value do not flood subscribers or storage;
2. queue the rows for the storage writer, with the caller's durable callback
   on the last one, so a transport acknowledges upstream only after commit.

Readings of *discovered* devices (seen on the wire, never configured by a
person) are stored but raise no state events: they are not trusted to raise
alarms until someone commissions them.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Callable

import msgspec

from firebus.sdk.context import Context
from firebus.sdk.driver import PointSpec, Reading
from firebus.sdk.events import StateChanged, StateReported
from firebus.sdk.vocab import ActorKind

from .bus import EventBus
from .registry import DeviceEntry, Registry
from .storage import SQL_READING, SQL_STATE, SQL_TOUCH, Storage, storable, to_ms

log = logging.getLogger(__name__)


class PointState(msgspec.Struct):
    value: Any = None
    fault: str | None = None
    last_changed: float = 0.0
    last_updated: float = 0.0
    last_reported: float = 0.0


class Ingest:
    def __init__(self, storage: Storage, registry: Registry, bus: EventBus, now: Callable[[], float] = time.time) -> None:
        self.storage = storage
        self.registry = registry
        self.bus = bus
        self.now = now
        self.states: dict[str, PointState] = {}
        self.readings_in = 0
        self.changes = 0
        self.redeliveries = 0

    async def load(self) -> None:
        for point_id, value, fault, changed, updated, reported in await self.storage.fetchall(
            "SELECT point_id, value, fault, last_changed, last_updated, last_reported FROM point_state"
        ):
            self.states[point_id] = PointState(value, fault, changed or 0.0, updated or 0.0, reported or 0.0)

    async def ingest(
        self,
        device: DeviceEntry,
        readings: list[Reading],
        *,
        context: Context | None = None,
        on_durable: Callable[[], None] | None = None,
    ) -> None:
        """Apply ``readings`` of ``device``; ``on_durable`` runs once they are committed."""
        received = self.now()
        parent = context or Context(actor=ActorKind.DEVICE, actor_id=device.id)
        state_rows: list[tuple[Any, ...]] = []
        reading_rows: list[tuple[Any, ...]] = []
        touch_rows: list[tuple[Any, ...]] = []
        trusted = not device.discovered
        for reading in readings:
            point = self.registry.point(device.id, reading.point_key)
            if point is None:
                # A key the driver did not declare: keep the data under a generic point.
                log.warning("ingest: %s reported undeclared point %r", device.id, reading.point_key)
                (point,) = await self.registry.ensure_points(
                    device.id, [PointSpec(key=reading.point_key, point_class=reading.point_key)]
                )
            self.readings_in += 1
            ts = reading.ts if reading.ts is not None else received
            value = storable(reading.value) if reading.fault is None else None
            state = self.states.get(point.id)
            if state is not None and ts <= state.last_reported and await self._stored(point.id, ts, value, reading.fault):
                # A redelivery (QoS 1 after a crash) of a reading we already hold: comparing it
                # with a state that has moved on would announce a change that never happened.
                self.redeliveries += 1
                continue
            if state is not None and state.value == value and state.fault == reading.fault and state.last_changed:
                if ts > state.last_reported:
                    state.last_reported = ts
                touch_rows.append((ts, point.id))
                if trusted:
                    self.bus.publish(StateReported(point_id=point.id, value=value, ts=ts), parent)
                continue
            old = state.value if state else None
            state = PointState(value=value, fault=reading.fault, last_changed=ts, last_updated=ts, last_reported=ts)
            self.states[point.id] = state
            self.changes += 1
            state_rows.append((point.id, value, reading.fault, ts, ts, ts))
            reading_rows.append((point.id, to_ms(ts), value, reading.fault))
            if trusted:
                self.bus.publish(
                    StateChanged(
                        point_id=point.id, device_id=device.id, point_key=point.key,
                        point_class=point.point_class, ts=ts, old_value=old, new_value=value,
                        fault=reading.fault,
                    ),
                    parent,
                )
        parts = [(SQL_STATE, state_rows), (SQL_READING, reading_rows), (SQL_TOUCH, touch_rows)]
        parts = [(statement, rows) for statement, rows in parts if rows]
        if not parts:
            if on_durable is not None:
                on_durable()
            return
        # One transaction: a state row committed without its reading row would make the
        # redelivered message look unchanged after a crash, and it would never be stored.
        await self.storage.put_many(parts, on_durable)

    async def _stored(self, point_id: str, ts: float, value: Any, fault: str | None) -> bool:
        """Is this exact reading (time, value, fault) already stored?  A primary-key lookup,
        only asked for readings not newer than the current state.

        Older readings that are *not* stored (a device whose clock jumped back), or a
        different value under the same timestamp (a device clock with coarse resolution),
        still count as changes, or such a device would never change state again.
        """
        row = await self.storage.fetchone(
            "SELECT value, fault FROM readings WHERE point_id = ? AND ts = ?", (point_id, to_ms(ts))
        )
        return row is not None and row[0] == value and row[1] == fault

    def state(self, point_id: str) -> PointState | None:
        return self.states.get(point_id)
