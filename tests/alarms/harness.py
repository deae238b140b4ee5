"""A small real core for alarm tests: real EventBus, real Storage on a temp file,
a dict-backed registry stand-in, a ManualClock, and an AlarmEngine on top."""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, AsyncIterator, Awaitable, Callable, Iterable

import anyio

from firebus.core.alarms import ALARM_MIGRATIONS, AlarmConfig, AlarmEngine
from firebus.core.bus import EventBus
from firebus.core.journal import Journal, quiesce
from firebus.core.storage import Storage
from firebus.sdk import (
    ActorKind,
    AlarmEvent,
    Availability,
    AvailabilityChanged,
    Context,
    Event,
    PointInfo,
    StateChanged,
    StateReported,
)
from firebus.sdk.clock import ManualClock
from firebus.sdk.rules import GENERIC_RULES


class Registry:
    """Stand-in for the core registry: just the RegistryAPI reads."""

    def __init__(self, points: Iterable[PointInfo]) -> None:
        self.points = {p.point_id: p for p in points}

    def point_info(self, point_id: str) -> PointInfo | None:
        return self.points.get(point_id)

    def points_of_device(self, device_id: str) -> list[PointInfo]:
        return [p for p in self.points.values() if p.device_id == device_id]

    def points_at_location(self, location_id: str) -> list[PointInfo]:
        return [p for p in self.points.values() if p.location_id == location_id]


class TestCore:
    """What the engine uses of the core (firebus.sdk.CoreAPI)."""

    __test__ = False

    def __init__(self, bus: EventBus, storage: Storage, registry: Registry, clock: Any, tg: Any) -> None:
        self.bus = bus
        self.storage = storage
        self.registry = registry
        self.clock = clock
        self._tg = tg
        self.journal = Journal(storage, bus, clock=clock)
        self.journal.start_seq = storage.last_seq
        self.journal.start_task = self.start_task
        self.writes: list[tuple[str, str, Any, Context | None]] = []
        self.write_impl: Callable[[str, str, Any, Context | None], Awaitable[None]] | None = None

    def logger(self, name: str) -> logging.Logger:
        return logging.getLogger(name)

    def start_task(self, func: Callable[..., Awaitable[Any]], *args: Any, name: str = "") -> None:
        self._tg.start_soon(func, *args, name=name or None)

    async def write_point(self, device_id: str, point_key: str, value: Any, context: Context | None = None) -> None:
        self.writes.append((device_id, point_key, value, context))
        if self.write_impl is None:
            raise RuntimeError("no device driver in this test")
        await self.write_impl(device_id, point_key, value, context)


class Harness:
    def __init__(self, core: TestCore, engine: AlarmEngine) -> None:
        self.core = core
        self.engine = engine
        self.bus = core.bus
        self.clock: ManualClock = core.clock
        self.events: list[Event] = []
        self.crash_on_exit = False  # leave without stopping anything (a killed process)
        self._seen = anyio.Event()

    def record(self, event: Event) -> None:
        self.events.append(event)
        self._seen.set()
        self._seen = anyio.Event()

    def alarm_events(self, transition: str | None = None, **fields: Any) -> list[AlarmEvent]:
        out = []
        for ev in self.events:
            data = ev.data
            if transition is not None and data.transition != transition:
                continue
            if all(getattr(data, k) == v for k, v in fields.items()):
                out.append(data)
        return out

    def point(self, point_id: str) -> PointInfo:
        return self.core.registry.points[point_id]

    def _state(self, point_id: str, value: Any, fault: str | None = None, old: Any = None) -> Event:
        """A state change as the core's ingest makes it: a journal entry (committed, then delivered)."""
        p = self.point(point_id)
        return self.core.journal.append(
            StateChanged(
                point_id=p.point_id, device_id=p.device_id, point_key=p.key, point_class=p.point_class,
                ts=self.clock.time(), old_value=old, new_value=value, fault=fault,
            ),
            Context(id="", actor=ActorKind.DEVICE, actor_id=p.device_id),
        )

    async def value(self, point_id: str, value: Any, *, fault: str | None = None, old: Any = None) -> Event:
        event = self._state(point_id, value, fault, old)
        await self.settle()
        return event

    async def value_nowait(self, point_id: str, value: Any) -> Event:
        """Journal without waiting for the engine (load tests)."""
        return self._state(point_id, value)

    async def report(self, point_id: str, value: Any) -> Event:
        event = Event(data=StateReported(point_id=point_id, ts=self.clock.time(), value=value),
                      time_fired=self.clock.time())
        self.bus.deliver([event])  # live only, like ingest's repeats
        await self.settle()
        return event

    async def availability(self, device_id: str, available: bool, reason: str = "") -> Event:
        event = self.bus.publish(
            AvailabilityChanged(
                device_id=device_id,
                availability=Availability.AVAILABLE if available else Availability.UNAVAILABLE,
                reason=reason,
            )
        )
        await self.settle()
        return event

    async def settle(self) -> None:
        """Every journal entry committed and handled, and what that wrote committed and delivered."""
        await quiesce(self.bus, self.core.storage)

    async def advance(self, seconds: float) -> None:
        await self.clock.advance(seconds)
        await self.settle()

    async def wait_for(self, predicate: Callable[[], Any], timeout: float = 20.0) -> Any:
        with anyio.fail_after(timeout):
            while not (result := predicate()):
                await anyio.sleep(0.01)
        return result


@asynccontextmanager
async def running(
    path: Path,
    points: Iterable[PointInfo],
    *,
    clock: Any = None,
    config: AlarmConfig | None = None,
    rule_types: Iterable[type] = GENERIC_RULES,
    handlers: dict | None = None,
    graceful: bool = True,
    write_impl: Any = None,
) -> AsyncIterator[Harness]:
    """A started engine; on exit stop it (``graceful``) or just drop everything (a crash)."""
    clock = clock or ManualClock()
    storage = Storage(path, synchronous="NORMAL")
    await storage.open(migrations=ALARM_MIGRATIONS)
    try:
        async with anyio.create_task_group() as tg:
            await tg.start(storage.run_writer)
            bus = EventBus()
            core = TestCore(bus, storage, Registry(points), clock, tg)
            core.write_impl = write_impl
            engine = AlarmEngine(core, rule_types, config, handlers)
            harness = Harness(core, engine)
            bus.subscribe("test-recorder", harness.record, types=[AlarmEvent])
            bus.attach(tg)
            add_check = getattr(clock, "add_idle_check", None)
            remove_check = add_check(lambda: not engine.busy) if add_check else (lambda: None)
            await engine.start()
            await harness.settle()
            try:
                yield harness
            finally:
                if graceful and not harness.crash_on_exit:
                    await harness.settle()
                    await engine.stop()
                remove_check()
                tg.cancel_scope.cancel()
    finally:
        await storage.close()
