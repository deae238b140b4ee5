"""The event bus: the live tail of the journal, fanned out to in-process subscribers.

Why it is shaped this way:

* Journal entries (payloads with ``persist``) are not delivered when they are
  published: ``publish`` hands them to the journal, and the bus delivers them
  once they are committed, numbered (``Event.seq``).  What a subscriber hears of
  is on disk.  Live-only payloads (``StateReported``) are delivered at once.
* Each subscriber has its own queues and its own worker task, so a slow,
  blocked or raising subscriber only ever delays itself (Home Assistant's
  listener isolation, taken one step further: isolation in time as well).
* Two lanes per subscriber.  Alarm-lane events go into an unbounded queue that
  the worker always drains first: they are never dropped and never wait behind
  telemetry.  Telemetry goes into a bounded queue whose overflow policy the
  subscriber chooses; every drop is counted.  Durable consumers
  (``core/journal/consumer.py``) never lose an entry to overflow: they fall back
  to reading the journal from their cursor.
* ``publish`` never blocks and never awaits, so producers (transports, rules)
  cannot be stalled by consumers.
* Batch subscribers (``subscribe_batch``) receive lists: at tens of thousands of
  entries a second, one call per entry would cost more than the work.
* ``StateReported`` (an unchanged value reported again) is delivered only to
  subscribers that ask for it by type, as Home Assistant does with
  ``state_reported``: polled sensors repeating a value stay quiet.
"""

from __future__ import annotations

import inspect
import logging
import time
from collections import deque
from typing import Any, Awaitable, Callable, Iterable, Protocol

import anyio
from anyio.abc import TaskGroup

from firebus.sdk.context import Context
from firebus.sdk.core_api import OverflowPolicy
from firebus.sdk.events import Event, Lane, Payload, StateReported

log = logging.getLogger(__name__)

Handler = Callable[[Event], Awaitable[None] | None]
BatchHandler = Callable[[list[Event]], Awaitable[None] | None]


class JournalSink(Protocol):
    """Where ``publish`` sends journal entries (the core's ``Journal``)."""

    def append_event(self, event: Event) -> None: ...


class SubscriberStats:
    __slots__ = ("delivered", "dropped", "errors", "last_error", "max_lag_s", "overflows")

    def __init__(self) -> None:
        self.delivered = 0
        self.dropped = 0
        self.errors = 0
        self.last_error = ""
        self.max_lag_s = 0.0
        self.overflows = 0


class Subscription:
    def __init__(
        self,
        name: str,
        handler: Handler | BatchHandler,
        types: frozenset[type[Payload]] | None,
        maxsize: int,
        overflow: OverflowPolicy,
        *,
        batch: bool = False,
        batch_max: int = 1000,
        provisional: bool = False,
        on_overflow: Callable[[], None] | None = None,
    ) -> None:
        self.name = name
        self.handler = handler
        self.types = types
        self.maxsize = maxsize
        self.overflow = overflow
        self.batch = batch
        self.batch_max = batch_max
        self.provisional = provisional
        self.on_overflow = on_overflow  # durable consumers: told instead of dropping
        self.alarm_queue: deque[Event] = deque()
        self.telemetry_queue: deque[Event] = deque()
        self.stats = SubscriberStats()
        self.active = True
        self.busy = False
        self.current: list[Event] = []  # what the handler holds now (durable consumers' cursors)
        self.is_async = inspect.iscoroutinefunction(handler) or inspect.iscoroutinefunction(
            handler.__call__  # a callable object with an async __call__
        )
        self._wake_send, self._wake_recv = anyio.create_memory_object_stream[None](1)

    def wants(self, cls: type[Payload]) -> bool:
        if self.types is None:
            return not issubclass(cls, StateReported)
        return issubclass(cls, tuple(self.types))

    def offer(self, event: Event) -> None:
        if event.lane is Lane.ALARM:
            self.alarm_queue.append(event)
            self.wake()
            return
        else:
            queue = self.telemetry_queue
            if self.overflow is not OverflowPolicy.UNBOUNDED and len(queue) >= self.maxsize:
                if self.on_overflow is not None:
                    self.stats.overflows += 1
                    self.on_overflow()
                    return
                self.stats.dropped += 1
                if self.stats.dropped == 1 or self.stats.dropped % 1000 == 0:
                    log.warning(
                        "bus: subscriber %r is behind; %d telemetry events dropped (%s)",
                        self.name, self.stats.dropped, self.overflow,
                    )
                if self.overflow is OverflowPolicy.DROP_NEWEST:
                    return
                queue.popleft()
            queue.append(event)
        # The worker looks at its queues again after each handler call: only an idle one
        # waiting on an empty queue needs waking (one wake-up per burst, not per event).
        if not self.busy and len(self.telemetry_queue) == 1:
            self.wake()

    def wake(self) -> None:
        try:
            self._wake_send.send_nowait(None)
        except anyio.WouldBlock:
            pass  # a wake-up is already pending

    @property
    def depth(self) -> int:
        return len(self.alarm_queue) + len(self.telemetry_queue)

    @property
    def idle(self) -> bool:
        return not self.busy and not self.depth

    def _take(self) -> list[Event]:
        if not self.batch:
            if self.alarm_queue:
                return [self.alarm_queue.popleft()]
            return [self.telemetry_queue.popleft()]
        out: list[Event] = []
        n = self.batch_max
        # Alarm entries first, alone in their batch: they never wait for telemetry work.
        queue = self.alarm_queue if self.alarm_queue else self.telemetry_queue
        while queue and len(out) < n:
            out.append(queue.popleft())
        return out

    async def run(self) -> None:
        while self.active:
            if not self.alarm_queue and not self.telemetry_queue:
                await self._wake_recv.receive()
                continue
            events = self._take()
            lag = time.time() - events[0].time_fired
            if lag > self.stats.max_lag_s:
                self.stats.max_lag_s = lag
            self.busy = True
            self.current = events
            try:
                result = self.handler(events if self.batch else events[0])  # type: ignore[arg-type]
                if self.is_async or inspect.isawaitable(result):
                    await result  # type: ignore[misc]
            except anyio.get_cancelled_exc_class():
                raise
            except Exception as exc:  # isolation: log, count, carry on
                self.stats.errors += 1
                self.stats.last_error = f"{type(exc).__name__}: {exc}"
                if self.stats.errors == 1 or self.stats.errors % 100 == 0:
                    log.exception("bus: subscriber %r raised (%d errors so far)", self.name, self.stats.errors)
            else:
                self.stats.delivered += len(events)
            finally:
                self.busy = False
                self.current = []
            # Let other tasks run between events even if the handler never awaited.
            await anyio.lowlevel.checkpoint()


class EventBus:
    """Publish typed payloads; subscribers receive ``Event`` envelopes."""

    def __init__(self) -> None:
        self._subs: list[Subscription] = []
        self._task_group: TaskGroup | None = None
        self._journal: JournalSink | None = None
        self._routes: dict[type[Payload], list[Subscription]] = {}
        self.published = 0
        self.last_seq = 0  # the newest journal entry delivered (durable consumers' cursors)
        self.version = 0  # bumped on every (un)subscribe: callers may cache what depends on who listens

    def attach(self, task_group: TaskGroup) -> None:
        """Start subscriber workers in ``task_group`` (the core's)."""
        self._task_group = task_group
        for sub in self._subs:
            task_group.start_soon(sub.run, name=f"bus:{sub.name}")

    def attach_journal(self, journal: JournalSink | None) -> None:
        """From now on journal entries are committed before they are delivered."""
        self._journal = journal

    def _add(self, sub: Subscription) -> Callable[[], None]:
        if any(s.name == sub.name for s in self._subs):
            raise ValueError(f"bus: a subscriber named {sub.name!r} already exists")
        self._subs.append(sub)
        self._routes.clear()
        self.version += 1
        if self._task_group is not None:
            self._task_group.start_soon(sub.run, name=f"bus:{sub.name}")

        def unsubscribe() -> None:
            sub.active = False
            if sub in self._subs:
                self._subs.remove(sub)
                self._routes.clear()
                self.version += 1
            sub.wake()

        return unsubscribe

    def subscribe(
        self,
        name: str,
        handler: Handler,
        types: Iterable[type[Payload]] | None = None,
        *,
        maxsize: int = 10_000,
        overflow: OverflowPolicy = OverflowPolicy.DROP_OLDEST,
    ) -> Callable[[], None]:
        """Subscribe ``handler`` to payload ``types`` (all but ``StateReported`` if None).

        Returns a function that unsubscribes.
        """
        return self._add(Subscription(
            name, handler, frozenset(types) if types is not None else None, maxsize, overflow,
        ))

    def subscribe_batch(
        self,
        name: str,
        handler: BatchHandler,
        types: Iterable[type[Payload]] | None = None,
        *,
        maxsize: int = 10_000,
        overflow: OverflowPolicy = OverflowPolicy.DROP_OLDEST,
        batch_max: int = 1000,
        provisional: bool = False,
        on_overflow: Callable[[], None] | None = None,
    ) -> tuple[Subscription, Callable[[], None]]:
        """Like ``subscribe``, but ``handler`` gets lists of events (alarm-lane ones alone, first).

        ``provisional``: also deliver entries released before they are durable
        (``Event.durable`` False, while the store refuses writes).  ``on_overflow``: called instead of
        dropping when the telemetry queue is full (durable consumers catch up from
        the journal).
        """
        sub = Subscription(
            name, handler, frozenset(types) if types is not None else None, maxsize, overflow,
            batch=True, batch_max=batch_max, provisional=provisional, on_overflow=on_overflow,
        )
        return sub, self._add(sub)

    def has_subscribers(self, cls: type[Payload], ignore: str = "") -> bool:
        """Does anyone (but ``ignore``) listen to ``cls``?  ``StateReported`` is built only if so."""
        return any(s.name != ignore for s in self._subs_for(cls))

    def _subs_for(self, cls: type[Payload]) -> list[Subscription]:
        subs = self._routes.get(cls)
        if subs is None:
            subs = [s for s in self._subs if s.wants(cls)]
            self._routes[cls] = subs
        return subs

    def publish(self, payload: Payload, context: Context | None = None, *, lane: Lane | None = None) -> Event:
        """Deliver ``payload`` (journal entries: once committed).  Never blocks."""
        event = Event(data=payload, context=context or Context(), lane=lane)
        if payload.persist and self._journal is not None:
            self._journal.append_event(event)
        else:
            self.deliver([event])
        return event

    def publish_event(self, event: Event) -> None:
        if event.data.persist and self._journal is not None:
            self._journal.append_event(event)
        else:
            self.deliver([event])

    def deliver(self, events: list[Event]) -> None:
        """Fan events out now (the journal calls this with committed or released entries)."""
        routes = self._routes
        for event in events:
            data = event.data
            cls = type(data)
            subs = routes.get(cls)
            if subs is None:
                subs = self._subs_for(cls)
            self.published += 1
            if event.seq > self.last_seq:
                self.last_seq = event.seq
            if not event.durable:
                for sub in subs:
                    if sub.provisional:
                        sub.offer(event)
                continue
            for sub in subs:
                sub.offer(event)

    def metrics(self) -> dict[str, Any]:
        """Queue depths, drops and handler errors per subscriber (for code and the panel)."""
        return {
            "published": self.published,
            "last_seq": self.last_seq,
            "subscribers": {
                s.name: {
                    "depth": s.depth,
                    "alarm_depth": len(s.alarm_queue),
                    "maxsize": s.maxsize,
                    "overflow": str(s.overflow),
                    "delivered": s.stats.delivered,
                    "dropped": s.stats.dropped,
                    "overflows": s.stats.overflows,
                    "errors": s.stats.errors,
                    "last_error": s.stats.last_error,
                    "max_lag_s": round(s.stats.max_lag_s, 6),
                }
                for s in self._subs
            },
        }

    def subscriber(self, name: str) -> Subscription | None:
        return next((s for s in self._subs if s.name == name), None)

    async def drain(self, timeout: float = 5.0) -> None:
        """Wait until every subscriber's queues are empty (tests, orderly shutdown)."""
        with anyio.fail_after(timeout):
            while not all(s.idle for s in self._subs):
                await anyio.sleep(0.005)
