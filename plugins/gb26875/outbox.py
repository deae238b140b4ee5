"""What a side of the link has to send: submissions in a priority queue, and their outcomes.

``Outbox`` orders submissions by ``Priority`` (fire alarms first, GB 26875.1 §4.1.2.3)
and, within a priority, by submission order; a submission taken back after a broken
connection returns to its place.  A session takes the next one when it has a free
slot; the ``Submission``'s future resolves with an ``Outcome`` once the exchange is
over.  A *persistent* outbox (the UITD client's) outlives sessions: what a dropped
connection did not get confirmed is sent again on the next one, so an entry is only
ever finished by the centre's answer.

``ConfirmedPrefix`` turns per-entry confirmations into the cursor a durable journal
consumer may save: the highest key below which everything was answered.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from enum import IntEnum, StrEnum
from typing import Callable, Hashable

import msgspec

from .model import (
    Adu,
    AnyAdu,
    ComponentState,
    Frame,
    SystemState,
    UitdState,
    fire_in,
)
from .tables import Command


class Priority(IntEnum):
    """Lower goes first.  Fire alarms jump every queue (checklist item 9)."""

    FIRE = 0  # state bit 1 in types 1, 2, 21
    ALARM = 1  # fault, supervisory, power and line faults
    STATE = 2  # other running state, analog values, operation records, duty-check answers
    ROUTINE = 3  # heartbeats, versions, configuration, clocks, patrol queries


_ALARM_BITS_SYSTEM = 0b11100010100  # fault, supervisory, main/backup power, bus
_ALARM_BITS_COMPONENT = 0b100010100  # fault, supervisory, power fault
_ALARM_BITS_UITD = 0b1111100  # fault, power faults, channel, line


def priority_of(adu: AnyAdu | None) -> Priority:
    """The default priority of an ADU from its content."""
    if adu is None:
        return Priority.ROUTINE
    if fire_in(adu):
        return Priority.FIRE
    if not isinstance(adu, Adu):
        return Priority.STATE
    for obj in adu.objects:
        if isinstance(obj, SystemState) and obj.state & _ALARM_BITS_SYSTEM:
            return Priority.ALARM
        if isinstance(obj, ComponentState) and obj.state & _ALARM_BITS_COMPONENT:
            return Priority.ALARM
        if isinstance(obj, UitdState) and obj.state & _ALARM_BITS_UITD:
            return Priority.ALARM
    if adu.type in (1, 2, 3, 4, 21, 24):
        return Priority.STATE
    return Priority.ROUTINE


class OutcomeStatus(StrEnum):
    CONFIRMED = "confirmed"  # cmd 3 to a control or upload
    RESPONDED = "responded"  # cmd 5 to a request
    DENIED = "denied"  # the last attempt was answered with cmd 6
    FAILED = "failed"  # no answer within timeout after every resend (link fault)
    CLOSED = "closed"  # the connection closed before an answer (non-persistent outbox)
    CANCELLED = "cancelled"


class Outcome(msgspec.Struct, frozen=True, kw_only=True):
    status: OutcomeStatus
    key: Hashable = None
    serial: int | None = None  # of the last exchange
    attempts: int = 0  # frames written for this submission, over every connection
    denies: int = 0
    latency: float | None = None  # seconds from submission to the answer
    reply: Frame | None = None  # the confirm or the response

    @property
    def ok(self) -> bool:
        return self.status in (OutcomeStatus.CONFIRMED, OutcomeStatus.RESPONDED)


_order = itertools.count()


class Submission:
    """One thing to send; resolved once with an ``Outcome``."""

    def __init__(self, adu: AnyAdu | None, *, command: int = Command.SEND_DATA, priority: Priority | None = None,
                 key: Hashable = None, transient: bool = False) -> None:
        self.adu = adu
        #: heartbeats and patrols: never carried over to another connection
        self.transient = transient
        self.command = int(command)
        self.priority = priority_of(adu) if priority is None else Priority(priority)
        self.key = key
        self.order = next(_order)
        self.submitted = time.monotonic()
        self.attempts = 0
        self.denies = 0
        self.exchanges = 0
        self._future: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()

    def __repr__(self) -> str:
        return f"<Submission key={self.key!r} cmd={self.command} prio={self.priority.name} attempts={self.attempts}>"

    @property
    def done(self) -> bool:
        return self._future.done()

    def resolve(self, outcome: Outcome) -> None:
        if not self._future.done():
            self._future.set_result(outcome)

    def cancel(self) -> None:
        self.resolve(Outcome(status=OutcomeStatus.CANCELLED, key=self.key, attempts=self.attempts))

    async def outcome(self) -> Outcome:
        return await asyncio.shield(self._future)

    def add_done_callback(self, fn: Callable[[Submission, Outcome], None]) -> None:
        self._future.add_done_callback(lambda f: fn(self, f.result()))


class Outbox:
    def __init__(self, *, persistent: bool = False, maxsize: int = 0) -> None:
        self.persistent = persistent
        self.maxsize = maxsize  # 0: unbounded; the journal is the bound for the uplink
        self._heap: list[tuple[int, int, Submission]] = []
        self._wakers: set[asyncio.Event] = set()

    def __len__(self) -> int:
        return sum(1 for *_, s in self._heap if not s.done)

    def put(self, sub: Submission) -> Submission:
        if self.maxsize and len(self) >= self.maxsize and sub.priority != Priority.FIRE:
            raise OutboxFull(f"outbox holds {self.maxsize} submissions")
        heapq.heappush(self._heap, (sub.priority, sub.order, sub))
        self._wake()
        return sub

    def requeue(self, sub: Submission) -> None:
        """Back in its original place (priority, submission order)."""
        if not sub.done:
            heapq.heappush(self._heap, (sub.priority, sub.order, sub))
            self._wake()

    def pop(self, max_priority: Priority = Priority.ROUTINE) -> Submission | None:
        while self._heap:
            prio, _, sub = self._heap[0]
            if sub.done:
                heapq.heappop(self._heap)
                continue
            if prio > max_priority:
                return None
            heapq.heappop(self._heap)
            return sub
        return None

    def pending(self) -> list[Submission]:
        return [s for *_, s in sorted(self._heap) if not s.done]

    def has(self, predicate: Callable[[Submission], bool]) -> bool:
        return any(not s.done and predicate(s) for *_, s in self._heap)

    def close(self, status: OutcomeStatus = OutcomeStatus.CANCELLED) -> None:
        for *_, sub in self._heap:
            sub.resolve(Outcome(status=status, key=sub.key, attempts=sub.attempts))
        self._heap.clear()

    def subscribe(self, event: asyncio.Event) -> None:
        self._wakers.add(event)

    def unsubscribe(self, event: asyncio.Event) -> None:
        self._wakers.discard(event)

    def _wake(self) -> None:
        for ev in self._wakers:
            ev.set()


class OutboxFull(Exception):
    pass


class ConfirmedPrefix:
    """Tracks keys (journal seqs, increasing) until each is answered; ``watermark`` is the
    highest key such that it and every earlier key are done — the cursor to save."""

    def __init__(self, start: int = 0) -> None:
        self.watermark = start
        self._open: list[int] = []  # heap of keys sent and not yet done
        self._done: set[int] = set()
        self._highest = start

    def add(self, key: int) -> None:
        if key <= self._highest:
            raise ValueError(f"key {key} not after {self._highest}")
        self._highest = key
        heapq.heappush(self._open, key)

    def done(self, key: int) -> int:
        self._done.add(key)
        while self._open and self._open[0] in self._done:
            k = heapq.heappop(self._open)
            self._done.discard(k)
            self.watermark = k
        if not self._open:
            self.watermark = self._highest
        return self.watermark
