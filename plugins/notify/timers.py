"""Keyed timers on the core clock (escalation steps, digests).

Setting a key again moves it; a timer set while the loop sleeps for a later
one wakes the loop.  State lives in storage; these are re-armed on start.
"""

from __future__ import annotations

import heapq
import itertools
import logging
from typing import Any, Awaitable, Callable

import anyio

log = logging.getLogger(__name__)


class Timers:
    def __init__(self, clock: Any) -> None:
        self.clock = clock
        self._due: dict[str, tuple[float, int]] = {}
        self._heap: list[tuple[float, int, str]] = []
        self._seq = itertools.count()
        self._scope: anyio.CancelScope | None = None
        self._waiting_for: float | None = None

    def __contains__(self, key: str) -> bool:
        return key in self._due

    def set(self, key: str, due: float) -> None:
        seq = next(self._seq)
        self._due[key] = (due, seq)
        heapq.heappush(self._heap, (due, seq, key))
        if self._scope is not None and (self._waiting_for is None or due < self._waiting_for):
            self._scope.cancel()

    def cancel(self, key: str) -> None:
        self._due.pop(key, None)

    def _head(self) -> tuple[float, str] | None:
        while self._heap:
            due, seq, key = self._heap[0]
            if self._due.get(key) == (due, seq):
                return due, key
            heapq.heappop(self._heap)
        return None

    async def run(self, fire: Callable[[str], Awaitable[None]]) -> None:
        while True:
            head = self._head()
            now = self.clock.time()
            if head is not None and head[0] <= now:
                heapq.heappop(self._heap)
                del self._due[head[1]]
                try:
                    await fire(head[1])
                except anyio.get_cancelled_exc_class():
                    raise
                except Exception:
                    log.exception("notify: timer %s raised", head[1])
                continue
            with anyio.CancelScope() as scope:
                self._scope = scope
                self._waiting_for = head[0] if head else None
                if head is None:
                    await anyio.sleep_forever()
                else:
                    await self.clock.sleep(head[0] - now)
            self._scope = None
            self._waiting_for = None
