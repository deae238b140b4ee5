"""The event bus: in-process pub/sub of typed events over anyio.

Why it is shaped this way:

* Each subscriber has its own queues and its own worker task, so a slow,
  blocked or raising subscriber only ever delays itself (Home Assistant's
  listener isolation, taken one step further: isolation in time as well).
* Two lanes per subscriber.  Alarm-class payloads (``Lane.ALARM``) go into an
  unbounded queue that the worker always drains first: they are never dropped
  and never wait behind telemetry.  Telemetry goes into a bounded queue whose
  overflow policy the subscriber chooses; every drop is counted.
* ``publish`` never blocks and never awaits, so producers (transports, rules)
  cannot be stalled by consumers.
* ``StateReported`` (an unchanged value reported again) is delivered only to
  subscribers that ask for it by type, as Home Assistant does with
  ``state_reported``: polled sensors repeating a value stay quiet.
"""

from __future__ import annotations

import inspect
import logging
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Iterable

import anyio
from anyio.abc import TaskGroup

from firebus.sdk.context import Context
from firebus.sdk.core_api import OverflowPolicy
from firebus.sdk.events import Event, Lane, Payload, StateReported

log = logging.getLogger(__name__)

Handler = Callable[[Event], Awaitable[None] | None]


@dataclass
class SubscriberStats:
    delivered: int = 0
    dropped: int = 0
    errors: int = 0
    last_error: str = ""
    max_lag_s: float = 0.0


@dataclass
class Subscription:
    name: str
    handler: Handler
    types: frozenset[type[Payload]] | None
    maxsize: int
    overflow: OverflowPolicy
    alarm_queue: deque[Event] = field(default_factory=deque)
    telemetry_queue: deque[Event] = field(default_factory=deque)
    stats: SubscriberStats = field(default_factory=SubscriberStats)
    is_async: bool = False
    active: bool = True
    busy: bool = False

    def __post_init__(self) -> None:
        self.is_async = inspect.iscoroutinefunction(self.handler) or inspect.iscoroutinefunction(
            getattr(self.handler, "__call__", None)
        )
        self._wake_send, self._wake_recv = anyio.create_memory_object_stream[None](1)

    def wants(self, payload: Payload) -> bool:
        if self.types is None:
            return not isinstance(payload, StateReported)
        return isinstance(payload, tuple(self.types))

    def offer(self, event: Event) -> None:
        if event.lane is Lane.ALARM:
            self.alarm_queue.append(event)
        else:
            queue = self.telemetry_queue
            if self.overflow is not OverflowPolicy.UNBOUNDED and len(queue) >= self.maxsize:
                self.stats.dropped += 1
                if self.stats.dropped == 1 or self.stats.dropped % 1000 == 0:
                    log.warning(
                        "bus: subscriber %r is behind; %d telemetry events dropped (%s)",
                        self.name,
                        self.stats.dropped,
                        self.overflow,
                    )
                if self.overflow is OverflowPolicy.DROP_NEWEST:
                    return
                queue.popleft()
            queue.append(event)
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

    async def run(self) -> None:
        while self.active:
            if self.alarm_queue:
                event = self.alarm_queue.popleft()
            elif self.telemetry_queue:
                event = self.telemetry_queue.popleft()
            else:
                await self._wake_recv.receive()
                continue
            lag = time.time() - event.time_fired
            if lag > self.stats.max_lag_s:
                self.stats.max_lag_s = lag
            self.busy = True
            try:
                result = self.handler(event)
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
                self.stats.delivered += 1
            finally:
                self.busy = False
            # Let other tasks run between events even if the handler never awaited.
            await anyio.lowlevel.checkpoint()


class EventBus:
    """Publish typed payloads; subscribers receive ``Event`` envelopes."""

    def __init__(self) -> None:
        self._subs: list[Subscription] = []
        self._task_group: TaskGroup | None = None
        self.published = 0

    def attach(self, task_group: TaskGroup) -> None:
        """Start subscriber workers in ``task_group`` (the core's)."""
        self._task_group = task_group
        for sub in self._subs:
            task_group.start_soon(sub.run, name=f"bus:{sub.name}")

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
        if any(s.name == name for s in self._subs):
            raise ValueError(f"bus: a subscriber named {name!r} already exists")
        sub = Subscription(
            name=name,
            handler=handler,
            types=frozenset(types) if types is not None else None,
            maxsize=maxsize,
            overflow=overflow,
        )
        self._subs.append(sub)
        if self._task_group is not None:
            self._task_group.start_soon(sub.run, name=f"bus:{name}")

        def unsubscribe() -> None:
            sub.active = False
            if sub in self._subs:
                self._subs.remove(sub)
            try:
                sub._wake_send.send_nowait(None)
            except anyio.WouldBlock:
                pass

        return unsubscribe

    def publish(self, payload: Payload, context: Context | None = None) -> Event:
        """Fan ``payload`` out to every interested subscriber.  Never blocks."""
        event = Event(data=payload, context=context or Context())
        self.publish_event(event)
        return event

    def publish_event(self, event: Event) -> None:
        self.published += 1
        for sub in self._subs:
            if sub.wants(event.data):
                sub.offer(event)

    def metrics(self) -> dict[str, Any]:
        """Queue depths, drops and handler errors per subscriber (for code and the panel)."""
        return {
            "published": self.published,
            "subscribers": {
                s.name: {
                    "depth": s.depth,
                    "alarm_depth": len(s.alarm_queue),
                    "maxsize": s.maxsize,
                    "overflow": str(s.overflow),
                    "delivered": s.stats.delivered,
                    "dropped": s.stats.dropped,
                    "errors": s.stats.errors,
                    "last_error": s.stats.last_error,
                    "max_lag_s": round(s.stats.max_lag_s, 6),
                }
                for s in self._subs
            },
        }

    async def drain(self, timeout: float = 5.0) -> None:
        """Wait until every subscriber's queues are empty (tests, orderly shutdown)."""
        with anyio.fail_after(timeout):
            while not all(s.idle for s in self._subs):
                await anyio.sleep(0.005)
