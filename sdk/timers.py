"""One task, many timers: on-delays, heartbeat deadlines, escalation steps, digests.

Timers are keyed (setting a key again moves it) and fire in due order on the
engine's ``Clock``.  The queue itself keeps no files: the engine persists each
timer next to the state it belongs to and re-arms them all on start, so a timer
due while the engine was down fires as soon as it is back, once.
"""

from __future__ import annotations

import heapq
import itertools
import logging
from typing import Any, Awaitable, Callable

import anyio
import msgspec

log = logging.getLogger(__name__)


class Timer(msgspec.Struct, frozen=True):
    key: str
    kind: str
    due: float
    data: dict[str, Any] = {}


class TimerQueue:
    def __init__(self, clock: Any, name: str = "timers") -> None:
        self.clock = clock
        self.name = name
        self._timers: dict[str, tuple[int, Timer]] = {}
        self._heap: list[tuple[float, int, str]] = []
        self._seq = itertools.count()
        self._scope: anyio.CancelScope | None = None
        self._waiting_for: float | None = None
        self.fired = 0
        self.errors = 0

    def __contains__(self, key: str) -> bool:
        return key in self._timers

    def __len__(self) -> int:
        return len(self._timers)

    def get(self, key: str) -> Timer | None:
        entry = self._timers.get(key)
        return entry[1] if entry else None

    def set(self, timer: Timer) -> None:
        seq = next(self._seq)
        self._timers[timer.key] = (seq, timer)
        heapq.heappush(self._heap, (timer.due, seq, timer.key))
        if self._scope is not None and (self._waiting_for is None or timer.due < self._waiting_for):
            self._scope.cancel()  # wake the loop to sleep for the earlier deadline

    def cancel(self, key: str) -> bool:
        return self._timers.pop(key, None) is not None

    def _peek(self) -> tuple[float, str] | None:
        while self._heap:
            due, seq, key = self._heap[0]
            entry = self._timers.get(key)
            if entry is not None and entry[0] == seq:
                return due, key
            heapq.heappop(self._heap)  # superseded or cancelled
        return None

    def pop_due(self, now: float) -> list[Timer]:
        due: list[Timer] = []
        while (head := self._peek()) is not None and head[0] <= now:
            heapq.heappop(self._heap)
            due.append(self._timers.pop(head[1])[1])
        return due

    async def run(self, fire: Callable[[Timer], Awaitable[None]]) -> None:
        """Fire timers as they come due, forever (cancel the task to stop)."""
        while True:
            for timer in self.pop_due(self.clock.time()):
                try:
                    await fire(timer)
                    self.fired += 1
                except anyio.get_cancelled_exc_class():
                    raise
                except Exception:  # one bad timer must not stop the others
                    self.errors += 1
                    log.exception("%s: timer %s raised", self.name, timer.key)
            head = self._peek()
            if head is not None and head[0] <= self.clock.time():
                continue
            with anyio.CancelScope() as scope:
                self._scope = scope
                self._waiting_for = head[0] if head else None
                if head is None:
                    await anyio.sleep_forever()
                else:
                    await self.clock.sleep(head[0] - self.clock.time())
            self._scope = None
            self._waiting_for = None
