"""Durable consumers: read the journal from a stored cursor, then follow the live tail.

A consumer that must not miss anything (alarm engine, notify, linkage,
rollups, uplink) is one of these.  What it implements is a handler that takes
a list of entries and is idempotent for an entry it has seen before (after a
crash the entries since the last saved cursor come again); what it gets:

* **catch-up**: entries after its cursor are read from the journal in batches,
  oldest first, before it follows the live tail; entries committed meanwhile
  are buffered and none is skipped;
* **live**: committed entries from the bus, alarm-lane entries first (so a
  consumer busy with telemetry still handles a fire alarm next);
* **bounded memory**: if its live queue overflows it does not drop anything; it
  falls back to catch-up from the journal;
* **a cursor** = every matching entry up to ``seq`` is handled, plus ``ahead``,
  the few entries past it handled early (alarm lane first).  It is saved with
  a version number, every ``checkpoint_s`` and at stop, in an operation queued
  after the handler's own writes, so it never claims more than is durable;
  a consumer with state of its own (the alarm engine) adds its rows to the
  same operation through ``checkpoint_parts``;
* **not yet durable** entries (``provisional``): alarm-lane entries released
  while the store refuses writes are handled once; their durable copy later
  only moves the cursor.
* **manual acknowledgement** (``ack="manual"``, the uplink): an entry counts as
  handled only once the consumer calls ``ack(seq)`` (the centre confirmed it), not
  when the handler returns.  The saved cursor is the contiguous acknowledged
  prefix (plus acknowledged entries past it in ``ahead``), so after a restart
  every delivered but unacknowledged entry comes again.  ``max_unacked`` bounds
  how many may be outstanding: past it telemetry waits (it is read from the
  journal once acknowledgements make room) while alarm-lane entries are still
  delivered at once; a catch-up delivers the backlog's alarm-lane entries first.
"""

from __future__ import annotations

import heapq
import logging
import time
from typing import Any, Awaitable, Callable, Iterable, Sequence

import anyio

from firebus.sdk.events import Event, Lane, Payload

from ..storage import Op
from . import SQL_CURSOR, Journal

log = logging.getLogger("firebus.core.journal")

# Entries given to a handler per call; a larger batch is handed over in slices (see _call).
CALL_SLICE = 256

Handler = Callable[[list[Event]], Awaitable[None] | None]
Parts = list[tuple[str, Sequence[Sequence[Any]]]]


class DurableConsumer:
    def __init__(
        self,
        journal: Journal,
        name: str,
        handler: Handler,
        types: Iterable[type[Payload]],
        *,
        batch_max: int = 1000,
        maxsize: int = 20_000,
        provisional: bool = False,
        initial: str | int = "start",
        checkpoint_s: float = 1.0,
        checkpoint_parts: Callable[[], tuple[Parts, Callable[[], None] | None]] | None = None,
        ack: str = "auto",
        max_unacked: int = 0,
    ) -> None:
        if not isinstance(initial, int) and initial not in ("start", "latest", "earliest"):
            raise ValueError("initial must be 'start', 'latest', 'earliest' or a seq")
        if ack not in ("auto", "manual"):
            raise ValueError("ack must be 'auto' or 'manual'")
        if ack == "manual" and (provisional or checkpoint_parts is not None):
            raise ValueError("ack='manual' takes neither provisional entries (no seq to acknowledge) "
                             "nor checkpoint_parts")
        if max_unacked < 0:
            raise ValueError("max_unacked must be ≥ 0 (0: no limit)")
        self.journal = journal
        self.bus = journal.bus
        self.name = name
        self.handler = handler
        self.types = list(types)
        self.type_names = sorted({t.__name__ for t in self.types})
        self.batch_max = batch_max
        self.maxsize = maxsize
        self.provisional = provisional
        self.initial = initial
        self.checkpoint_s = checkpoint_s
        self.checkpoint_parts = checkpoint_parts
        self.cursor = 0
        self.ahead: set[int] = set()
        self.version = 0
        self.catching_up = True
        self.caught_up = anyio.Event()
        self._buffer: list[Event] = []
        self._overflowed = False
        self._inflight: list[Event] = []
        self._sub: Any = None
        self._unsubscribe: Callable[[], None] | None = None
        self._handled_ahead: set[int] = set()
        self._provisional_seen: dict[int, float] = {}
        self._gated: dict[int, list[Callable[[], None]]] = {}
        self._gated_heap: list[int] = []
        self._last_save = 0.0
        self._saved_cursor = -1
        self._stopped = False
        self.handled = 0
        self.replayed = 0
        self.catchups = 0
        # manual acknowledgement: delivered entries not yet acknowledged (a set and a
        # min-heap with lazy deletion), and acknowledged ones past the oldest of those
        self.manual = ack == "manual"
        self.max_unacked = max_unacked
        self._unacked: set[int] = set()
        self._unacked_heap: list[int] = []
        self._acked: set[int] = set()
        self._wakeup = anyio.Event()
        self.acked = 0

    # -- life ------------------------------------------------------------------------------

    async def run(self, *, task_status: Any = anyio.TASK_STATUS_IGNORED) -> None:
        stored = await self.journal.cursor(self.name)
        if stored is None:
            if isinstance(self.initial, int):
                self.cursor = self.initial
            elif self.initial == "earliest":
                self.cursor = 0
            elif self.initial == "latest":
                self.cursor = self.journal.last_seq
            else:  # "start": nothing committed since this process started is missed
                self.cursor = min(self.journal.start_seq, self.journal.last_seq)
        else:
            self.cursor, self.ahead, self.version = stored
        self._saved_cursor = self.cursor if stored is not None else -1
        if stored is None:
            # A first start: the starting position is committed before anything is read, so a
            # crash before the first checkpoint restarts from here.  Otherwise the next start
            # would pick "start" again — after whatever was committed meanwhile, never handled.
            sql, rows = self.cursor_part(self.cursor, set())
            await self.journal.storage.execute(sql, rows[0], lane=Lane.ALARM)
            self._saved_cursor = self.cursor
        self._sub, self._unsubscribe = self.bus.subscribe_batch(
            f"journal:{self.name}", self._live, self.types, maxsize=self.maxsize,
            batch_max=self.batch_max, provisional=self.provisional, on_overflow=self._overflow,
        )
        task_status.started()
        try:
            await self._catch_up()
            with anyio.CancelScope() as scope:
                self._scope = scope
                while True:
                    # an acknowledgement that makes room wakes the loop early (manual mode)
                    with anyio.move_on_after(self.checkpoint_s):
                        await self._wakeup.wait()
                    self._wakeup = anyio.Event()
                    if self._overflowed and not self.catching_up:
                        await self._catch_up()
                    self._advance_idle()
                    self._maybe_save()
        finally:
            if self._unsubscribe is not None:
                self._unsubscribe()
            self.save()  # synchronous (it queues the cursor): nothing here to shield

    def stop(self) -> None:
        self._stopped = True
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None

    # -- catch-up --------------------------------------------------------------------------

    async def _catch_up(self) -> None:
        while not await self._catch_up_once():
            pass  # the live buffer overflowed meanwhile: read the rest from the journal too
        self.caught_up.set()

    async def _catch_up_once(self) -> bool:
        self.catching_up = True
        self._overflowed = False
        self.catchups += 1
        if self.manual:
            await self._alarms_first()
        pos = self.cursor
        while True:
            limit = self.batch_max
            if self.manual and self.max_unacked:
                limit = min(limit, await self._room())
            events = await self.journal.read(pos, limit, types=self.type_names)
            if not events:
                break
            pos = events[-1].seq
            todo = [e for e in events if e.seq not in self.ahead]
            self.replayed += len(todo)
            if todo:
                await self._call(todo)
            self.cursor = pos
            self.ahead = {s for s in self.ahead if s > pos}
            self._release()
            self._maybe_save()
        # Entries committed while we read: deliver those we have not read from the journal.
        buffered, self._buffer = self._buffer, []
        rest = [e for e in buffered if e.seq > pos or not e.durable]
        if self.manual and self.max_unacked and len(rest) > self.max_unacked - len(self._unacked):
            self._overflowed = True  # no room for them now: the journal has them
        overflowed = self._overflowed
        self.catching_up = False
        if overflowed:
            return False
        if rest:
            await self._deliver(rest)
        elif pos > self.cursor:
            self.cursor = pos
        return True

    async def _alarms_first(self) -> None:
        """Manual mode: the backlog's alarm-lane entries before its telemetry (a fire alarm
        recorded during an outage goes out before the hour of readings queued with it)."""
        pos = self.cursor
        for _ in range(10):  # bounded: a backlog of alarm entries beyond this goes in order
            events = await self.journal.read(pos, self.batch_max, types=self.type_names, lanes=(Lane.ALARM,))
            if not events:
                return
            pos = events[-1].seq
            todo = [e for e in events if e.seq not in self.ahead and e.seq > self.cursor]
            if todo:
                await self._call(todo)
                self.ahead.update(e.seq for e in todo)
                self._release()

    async def _room(self) -> int:
        """Manual mode with a limit: wait until fewer than ``max_unacked`` are outstanding."""
        while len(self._unacked) >= self.max_unacked:
            await self._wakeup.wait()
            self._wakeup = anyio.Event()
        return self.max_unacked - len(self._unacked)

    def _overflow(self) -> None:
        """The live queue is full: stop queueing; the journal has it all."""
        if not self._overflowed:
            log.warning("journal: consumer %s fell behind the live tail; reading from the journal instead",
                        self.name)
        self._overflowed = True
        if self._sub is not None:
            self._sub.telemetry_queue.clear()

    def _full(self) -> None:
        """Manual mode: ``max_unacked`` reached; telemetry is read from the journal later."""
        self._overflowed = True
        if self._sub is not None:
            self._sub.telemetry_queue.clear()
        self._wakeup.set()  # the run loop starts the catch-up, which waits for room

    # -- live ------------------------------------------------------------------------------

    async def _live(self, events: list[Event]) -> None:
        if self.catching_up or self._overflowed:
            # Reading the journal (a backlog, an overflow): alarm-lane entries still go first,
            # now; the catch-up skips them (ahead).  Telemetry waits for the catch-up.
            urgent = [e for e in events if e.lane is Lane.ALARM or not e.durable]
            if urgent:
                await self._deliver_ahead(urgent)
            rest = [e for e in events if e.lane is not Lane.ALARM and e.durable]
            if len(self._buffer) + len(rest) <= self.maxsize:
                self._buffer.extend(rest)
            else:
                self._overflowed = True
            return
        if self.manual and self.max_unacked and len(self._unacked) + len(events) > self.max_unacked:
            urgent = [e for e in events if e.lane is Lane.ALARM]
            rest = [e for e in events if e.lane is not Lane.ALARM]
            if len(self._unacked) + len(rest) > self.max_unacked:
                # full: alarm-lane entries still go now; telemetry waits in the journal
                if urgent:
                    await self._deliver_ahead(urgent)
                self._full()
                return
        await self._deliver(events)

    async def _deliver_ahead(self, events: list[Event]) -> None:
        todo: list[Event] = []
        now = time.monotonic()
        for event in events:
            if not event.durable:
                self._provisional_seen[id(event.data)] = now
                todo.append(event)
            elif self._provisional_seen.pop(id(event.data), None) is not None:
                self.ahead.add(event.seq)
            elif event.seq > self.cursor and event.seq not in self.ahead:
                todo.append(event)
        if todo:
            await self._call(todo)
        for event in todo:
            if event.durable:
                self.ahead.add(event.seq)
        self._release()

    async def _deliver(self, events: list[Event]) -> None:
        todo: list[Event] = []
        now = time.monotonic()
        for event in events:
            if not event.durable:
                self._provisional_seen[id(event.data)] = now
                todo.append(event)
            elif self._provisional_seen.pop(id(event.data), None) is not None:
                continue  # handled before it was durable; now it only moves the cursor
            elif event.seq <= self.cursor or event.seq in self.ahead:
                continue
            else:
                todo.append(event)
        if todo:
            await self._call(todo)
        durable = [e.seq for e in events if e.durable]
        if durable:
            self._advance(durable)
            self._release()
        if len(self._provisional_seen) > 10_000:  # refused entries never come back durable
            cutoff = now - 3600
            self._provisional_seen = {k: t for k, t in self._provisional_seen.items() if t > cutoff}
        self._maybe_save()

    async def _call(self, events: list[Event]) -> None:
        if self.manual:
            # Once per process: a catch-up batch read from the journal and the live tail's
            # alarm lane can both hold an entry committed meanwhile; the second is dropped.
            events = [e for e in events if e.seq not in self._unacked and e.seq not in self._acked]
            if not events:
                return
            for e in events:  # outstanding before the handler runs: it may acknowledge at once
                self._unacked.add(e.seq)
                heapq.heappush(self._unacked_heap, e.seq)
        self._inflight = events
        try:
            # In slices, yielding between them: a handler given 1,000 entries held the loop
            # for up to 75 ms (the alarm engine at full ingest), and everything else waited.
            for start in range(0, len(events), CALL_SLICE):
                if start:
                    await anyio.lowlevel.checkpoint()
                part = events[start:start + CALL_SLICE] if len(events) > CALL_SLICE else events
                result = self.handler(part)
                if result is not None:
                    await result
                self.handled += len(part)
        finally:
            self._inflight = []

    def _advance_idle(self) -> None:
        """Nothing queued, nothing in hand: every matching entry up to the bus's newest is
        handled, so the cursor moves there.  Without this a consumer whose types are rare
        (notify reads alarms, not readings) kept its cursor at its last alarm: ``lag`` in the
        metrics grew with every reading, and a restart read the journal from that old seq."""
        sub = self._sub
        if (self.manual or self.catching_up or self._overflowed or self._inflight or sub is None
                or not sub.idle or self.bus.last_seq <= self.cursor):
            return
        self._advance([])
        self._release()

    def _advance(self, handled: list[int]) -> None:
        cursor, ahead = self.position(handled_now=handled)
        self.cursor, self.ahead = cursor, ahead

    def position(self, *, upto: Event | None = None, handled_now: Iterable[int] = ()) -> tuple[int, set[int]]:
        """The cursor if everything handled so far — and ``upto`` and what precedes it in the
        batch being handled — were durable: (seq, ahead)."""
        heads: list[int] = []
        if upto is not None:
            inflight = self._inflight
            try:
                i = next(k for k, e in enumerate(inflight) if e is upto)
            except StopIteration:
                i = len(inflight) - 1
            done = [e.seq for e in inflight[: i + 1] if e.durable]
            rest = [e.seq for e in inflight[i + 1:] if e.durable]
            if rest:
                heads.append(rest[0])
        else:
            done = list(handled_now)
        if self.catching_up:
            # Catch-up runs in seq order: everything up to the last handled entry is done.
            top = max(done) if done else self.cursor
            return max(self.cursor, top if upto is not None else self.cursor), {s for s in self.ahead if s > top}
        if self._overflowed:
            # The live queue overflowed and was cleared: entries past the cursor may be in no
            # queue and unhandled, so the cursor stays; what was handled goes ahead and the
            # catch-up reads the rest.  (Worked out from the empty queues, the cursor jumped
            # to the bus's newest entry and the catch-up skipped everything dropped.)
            ahead = {s for s in (self.ahead | self._handled_ahead | set(done)) if s > self.cursor}
            self._handled_ahead = set(ahead)
            return self.cursor, ahead
        sub = self._sub
        if sub is not None:
            for queue in (sub.alarm_queue, sub.telemetry_queue):
                for e in queue:
                    if e.durable:
                        heads.append(e.seq)
                        break
        self._handled_ahead.update(done)
        if heads:
            cursor = max(self.cursor, min(heads) - 1)
        else:
            cursor = max([self.cursor, self.bus.last_seq, *done])
        ahead = {s for s in (self.ahead | self._handled_ahead) if s > cursor}
        self._handled_ahead = set(ahead)
        return cursor, ahead

    # -- flow control ----------------------------------------------------------------------

    def gate(self, seq: int, callback: Callable[[], None]) -> None:
        """Run ``callback`` once this consumer has handled the entry ``seq`` (now, if it has).

        The core acknowledges a device's message upstream through this gate of the alarm
        engine: a message counts as taken only once it is on disk *and* evaluated, so the
        transport's in-flight window bounds how far the engine can fall behind — under
        overload the broker holds the backlog, not this process, and alarms keep moving.
        """
        if seq <= self.cursor or seq in self.ahead:
            callback()
            return
        waiting = self._gated.get(seq)
        if waiting is None:
            self._gated[seq] = [callback]
            heapq.heappush(self._gated_heap, seq)
        else:
            waiting.append(callback)

    def _release(self) -> None:
        if not self._gated:
            return
        heap, gated, cursor = self._gated_heap, self._gated, self.cursor
        while heap and heap[0] <= cursor:
            for callback in gated.pop(heapq.heappop(heap), ()):
                self._run_gated(callback)
        for seq in [s for s in self.ahead if s in gated]:
            for callback in gated.pop(seq):
                self._run_gated(callback)

    @staticmethod
    def _run_gated(callback: Callable[[], None]) -> None:
        try:
            callback()
        except Exception:
            log.exception("journal: a gated callback raised")

    # -- manual acknowledgement ------------------------------------------------------------

    def ack(self, seq: int) -> None:
        """Manual mode: the entry ``seq`` is done (the uplink: the centre confirmed it).
        Unknown or repeated seqs are ignored."""
        if not self.manual:
            raise RuntimeError(f"journal: consumer {self.name} acknowledges automatically")
        if seq not in self._unacked:
            return
        self._unacked.discard(seq)
        self.acked += 1
        heap = self._unacked_heap
        while heap and heap[0] not in self._unacked:
            heapq.heappop(heap)
        self._acked.add(seq)
        if len(self._acked) > 256:  # forget what the acknowledged prefix already covers
            cursor = min(self.cursor, heap[0] - 1) if heap else self.cursor
            self._acked = {s for s in self._acked if s > cursor}
        if self._overflowed or (self.max_unacked and len(self._unacked) < self.max_unacked):
            self._wakeup.set()

    def acked_position(self) -> tuple[int, set[int]]:
        """(cursor, ahead) over acknowledged entries only: what manual mode saves."""
        if not self.manual:
            return self.cursor, set(self.ahead)
        heap = self._unacked_heap
        cursor = min(self.cursor, heap[0] - 1) if heap else self.cursor
        ahead = {s for s in self.ahead if s > cursor and s not in self._unacked}
        ahead.update(s for s in self._acked if s > cursor)
        return cursor, ahead

    @property
    def unacked(self) -> int:
        return len(self._unacked)

    # -- saving ----------------------------------------------------------------------------

    def _maybe_save(self) -> None:
        if time.monotonic() - self._last_save >= self.checkpoint_s:
            self.save()

    def cursor_part(self, cursor: int, ahead: set[int]) -> tuple[str, list[tuple[Any, ...]]]:
        self.version += 1
        return SQL_CURSOR, [self.journal.cursor_row(self.name, cursor, ahead, self.version, time.time())]

    def save(self, lane: Lane = Lane.TELEMETRY) -> None:
        """Queue the cursor (and ``checkpoint_parts``) after everything the handler queued."""
        self._last_save = time.monotonic()
        parts: Parts = []
        done: Callable[[], None] | None = None
        cursor, ahead = self.acked_position() if self.manual else (self.cursor, self.ahead)
        if self.checkpoint_parts is not None:
            parts, done = self.checkpoint_parts()
        elif cursor == self._saved_cursor and not ahead:
            return
        parts.append(self.cursor_part(cursor, ahead))
        self._saved_cursor = cursor
        storage = self.journal.storage
        if getattr(storage, "writer_alive", False):
            storage.submit(Op(parts, None, done, lane))

    def metrics(self) -> dict[str, Any]:
        return {
            "cursor": self.cursor,
            "ahead": len(self.ahead),
            "lag": max(0, self.journal.last_seq - self.cursor),
            "handled": self.handled,
            "replayed": self.replayed,
            "catchups": self.catchups,
            "catching_up": self.catching_up,
            **({"unacked": len(self._unacked), "acked": self.acked,
                "acked_cursor": self.acked_position()[0]} if self.manual else {}),
        }
