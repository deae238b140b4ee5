"""Clocks: real time for the running core, a hand-driven one for tests.

Everything in firebus that waits (on-delays, heartbeats, escalation, demand
deadlines) goes through a ``Clock`` (``firebus.sdk.core_api.Clock``) so a test
can step time by an hour in a millisecond, and step it exactly: a sleeper due at
t wakes with ``clock.time() == t``, in deadline order, never early.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import random
import time
from typing import Callable

import anyio


class SystemClock:
    """Wall time (epoch seconds) and real sleeping."""

    def time(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        await anyio.sleep(max(0.0, seconds))


class ManualClock:
    """A clock that only moves when told to.

    ``advance(s)`` walks time forward deadline by deadline: for each sleeper due
    within the step it sets the time to that deadline, wakes it, and lets every
    task run until all are blocked again (so a woken task that schedules a new,
    earlier-than-target sleep is woken within the same step).  Deterministic as
    long as the tasks under test block on the clock or on I/O, not on real sleeps.

    "All tasks blocked" cannot tell a task waiting for a database thread from an
    idle one, so components that do I/O between clock sleeps register an idle
    check (``add_idle_check``); ``settle`` also waits until every check is true.
    """

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self._idle_checks: list[Callable[[], bool]] = []
        self._now = float(start)
        self._seq = itertools.count()
        # (deadline, seq, event); cancelled sleepers are removed lazily.
        self._heap: list[tuple[float, int, anyio.Event]] = []
        self._cancelled: set[int] = set()

    def time(self) -> float:
        return self._now

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await anyio.lowlevel.checkpoint()
            return
        seq = next(self._seq)
        event = anyio.Event()
        heapq.heappush(self._heap, (self._now + seconds, seq, event))
        try:
            await event.wait()
        finally:
            if not event.is_set():  # cancelled while sleeping
                self._cancelled.add(seq)

    @property
    def sleepers(self) -> int:
        """How many tasks are sleeping on this clock right now."""
        return sum(1 for _, seq, ev in self._heap if seq not in self._cancelled and not ev.is_set())

    def next_deadline(self) -> float | None:
        self._prune()
        return self._heap[0][0] if self._heap else None

    def _prune(self) -> None:
        while self._heap and (self._heap[0][1] in self._cancelled or self._heap[0][2].is_set()):
            _, seq, _ = heapq.heappop(self._heap)
            self._cancelled.discard(seq)

    def add_idle_check(self, check: Callable[[], bool]) -> Callable[[], None]:
        """Make ``settle`` also wait for ``check()``; returns a function that removes it."""
        self._idle_checks.append(check)
        return lambda: self._idle_checks.remove(check) if check in self._idle_checks else None

    async def settle(self, timeout: float = 30.0) -> None:
        """Let every task run until all of them wait on something and every idle check holds."""
        busy: list[str] = []  # the tasks the last look found running, for the timeout's message
        try:
            with anyio.fail_after(timeout):
                while True:
                    await _all_tasks_blocked(busy)
                    if all(check() for check in self._idle_checks):
                        return
                    await anyio.sleep(0.001)  # real time: let the I/O finish
        except TimeoutError:
            why = f"still running: {', '.join(busy)}" if busy else "every task waited; an idle check did not hold"
            raise TimeoutError(f"the clock did not settle within {timeout} s ({why})") from None

    async def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds``, waking sleepers in deadline order."""
        if seconds < 0:
            raise ValueError("a clock does not run backwards")
        await self.settle()
        target = self._now + seconds
        while True:
            due = self.next_deadline()
            if due is None or due > target:
                break
            self._now = max(self._now, due)
            while self._heap and self._heap[0][0] <= self._now:
                _, seq, event = heapq.heappop(self._heap)
                if seq in self._cancelled:
                    self._cancelled.discard(seq)
                    continue
                event.set()
            await self.settle()
        self._now = target
        await self.settle()

    async def advance_to(self, when: float) -> None:
        await self.advance(max(0.0, when - self._now))


def _running(task: asyncio.Task[object]) -> bool:
    waiter = getattr(task, "_fut_waiter", None)
    return waiter is None or waiter.done()


def _describe(task: asyncio.Task[object]) -> str:
    frames = task.get_stack(limit=1)
    return f"{task.get_name()} at {frames[-1].f_code.co_filename}:{frames[-1].f_lineno}" if frames else task.get_name()


async def _all_tasks_blocked(busy: list[str]) -> None:
    """Return once every other task waits on something (a future not yet done); ``busy``
    holds the tasks the last look found running.

    anyio's ``wait_all_tasks_blocked`` re-checks every 0.1 s, the same period as uvicorn's
    tick loop: once both timers fell due in the same loop turn with the check's first, the
    check saw the tick's finished sleep each time and never returned (a test's clock
    ``advance`` timed out after 30 s in CI).  Here the pause between looks is jittered
    (80-120 ms), so no periodic task stays in step with it.  It stays about 0.1 s: a task
    waiting for a database thread or a socket counts as blocked, and that pause is what lets
    such work finish before the next look (with 1-13 ms pauses, tests whose components
    read and write the database between clock sleeps saw the state before it)."""
    try:
        this = asyncio.current_task()
    except RuntimeError:  # another event loop (trio): its own check has no such timer
        await anyio.wait_all_tasks_blocked()
        return
    await anyio.lowlevel.checkpoint()
    while True:
        running = [task for task in asyncio.all_tasks() if task is not this and _running(task)]
        busy[:] = [_describe(task) for task in running[:10]]
        if not running:
            return
        await anyio.sleep(random.uniform(0.08, 0.12))
