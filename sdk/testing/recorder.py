"""Record bus events and wait for the one a test expects.

``await recorder.wait_for(AlarmEvent, transition="new")`` returns the first
recorded event (past or future) whose payload matches every keyword: a value
is compared with ``==``, a callable is used as a predicate.  Waiting on past
events too means a test cannot race the core: the recorder is subscribed
before the core starts, and an event that already happened still counts.
"""

from __future__ import annotations

from typing import Any, Callable

import anyio

from firebus.sdk.events import Event, Payload


def _matches(payload: Payload, match: dict[str, Any]) -> bool:
    for name, want in match.items():
        have = getattr(payload, name, _MISSING)
        if have is _MISSING:
            return False
        if callable(want) and not isinstance(want, type):
            if not want(have):
                return False
        elif have != want:
            return False
    return True


_MISSING = object()


class EventRecorder:
    """Keeps every event of the core it is attached to (``StateReported`` too)."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self._changed = anyio.Event()
        self._unsubscribe: Callable[[], None] | None = None

    def attach(self, bus: Any, name: str = "firebus-test-recorder") -> None:
        """Subscribe to every payload type on ``bus`` (call before the core starts)."""
        from firebus.sdk.events import StateReported

        # types=None is "everything but StateReported" (the bus' default); ask for those too.
        off_all = bus.subscribe(name, self._record, maxsize=1_000_000)
        off_reported = bus.subscribe(f"{name}:reported", self._record, types=[StateReported], maxsize=1_000_000)
        def unsubscribe() -> None:
            off_all()
            off_reported()

        self._unsubscribe = unsubscribe

    def detach(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None

    def _record(self, event: Event) -> None:
        self.events.append(event)
        self._changed.set()
        self._changed = anyio.Event()

    def of(self, payload_type: type[Payload] | None = None, **match: Any) -> list[Payload]:
        """Recorded payloads of ``payload_type`` (any if None) matching ``match``."""
        return [
            e.data for e in self.events
            if (payload_type is None or isinstance(e.data, payload_type)) and _matches(e.data, match)
        ]

    async def wait_for(self, payload_type: type[Payload], *, timeout: float = 20.0, **match: Any) -> Any:
        """The first matching payload; ``TimeoutError`` naming what was seen instead."""
        try:
            with anyio.fail_after(timeout):
                while True:
                    found = self.of(payload_type, **match)
                    if found:
                        return found[0]
                    await self._changed.wait()
        except TimeoutError:
            seen = [type(e.data).__name__ for e in self.events[-10:]]
            raise TimeoutError(
                f"no {payload_type.__name__} matching {match} within {timeout}s "
                f"({len(self.of(payload_type))} of that type seen; last events: {seen})"
            ) from None

    async def wait_for_count(self, payload_type: type[Payload], count: int, *, timeout: float = 20.0,
                             **match: Any) -> list[Any]:
        """At least ``count`` matching payloads."""
        with anyio.fail_after(timeout):
            while True:
                found = self.of(payload_type, **match)
                if len(found) >= count:
                    return found
                await self._changed.wait()
