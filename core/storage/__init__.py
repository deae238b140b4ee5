"""The embedded store: SQLite in WAL mode, one writer thread, reader threads.

Loop side of the store.  Writers hand operations to ``WriterThread``
(``storage/writer.py``: lanes, batching, retries); it reports every commit back
here once, and this side then runs the operations' durable callbacks (a
transport acknowledges upstream only after COMMIT) and hands the committed,
numbered journal entries to the live tail (``on_entries``, the event bus).
Reads run on their own connections (``storage/readers.py``) and never wait for
the writer.

Back-pressure: telemetry producers that can wait (``put``, a poll loop) wait
while more than ``queue_max`` telemetry rows are queued; push transports bound
what they hold unacknowledged instead.  Alarm-lane operations are never held
back.

While the store refuses writes (disk full, read-only file, locked) nothing is
acknowledged or dropped; journal entries still waiting after ``release_after``
seconds are handed to the live tail marked ``durable=False``, for the
subscribers that take such entries (the alarm engine and notify), so a fire
alarm is still told — including one a telemetry value raises (issue: "alarms
are told even when the disk is not"); they are delivered again, numbered, once
they commit.  What waits is bounded by the transports' in-flight windows.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, AsyncIterator, Awaitable, Callable, Iterable, Iterator, Sequence

import anyio

from firebus.sdk.events import Event, Lane
from firebus.sdk.migration import Migration

from ..journal.rows import storable, to_ms
from ..schema import CORE_MIGRATIONS
from .migrate import StorageError, migrate, split_sql
from .readers import Checkpointer, ReaderPool
from .writer import DurableCallback, Exec, Item, Op, WriterThread, retryable

log = logging.getLogger("firebus.core.storage")

__all__ = [
    "SQL_QUARANTINE", "SQL_READING", "SQL_STATE", "SQL_TOUCH", "Storage", "StorageError", "Op",
    "split_sql", "storable", "to_ms", "retryable",
]

#: history rows written directly (imports, tests); live readings are journal entries
# Journal entries handed to the live tail per turn of the loop (see run_writer).
COMMITTED_SLICE = 256


def _slices(items: list[Item], most: int) -> Iterator[list[Item]]:
    """Consecutive runs of items holding about ``most`` events each (an item is never split)."""
    part: list[Item] = []
    n = 0
    for item in items:
        part.append(item)
        n += len(item.events) if not isinstance(item, Exec) and item.events else 1
        if n >= most:
            yield part
            part, n = [], 0
    if part:
        yield part


SQL_READING = "INSERT OR IGNORE INTO readings (point_id, ts, value, fault) VALUES (?, ?, ?, ?)"
#: the checkpoint of current values (see core/ingest.py)
SQL_STATE = """
INSERT INTO point_state (point_id, value, fault, last_changed, last_updated, last_reported)
VALUES (?, ?, ?, ?, ?, ?)
ON CONFLICT (point_id) DO UPDATE SET
  value = excluded.value, fault = excluded.fault, last_changed = excluded.last_changed,
  last_updated = excluded.last_updated, last_reported = excluded.last_reported
"""
SQL_TOUCH = "UPDATE point_state SET last_reported = max(coalesce(last_reported, 0), ?) WHERE point_id = ?"
SQL_QUARANTINE = "INSERT INTO quarantine (ts, source, reason, payload) VALUES (?, ?, ?, ?)"

Flusher = Callable[[], Awaitable[None] | None]


class Storage:
    """Owns the database file: migrations, the writer thread, the readers."""

    def __init__(
        self,
        path: str | Path,
        *,
        synchronous: str = "FULL",
        batch_max: int = 5000,
        queue_max: int = 50_000,
        readers: int = 2,
        release_after: float = 1.0,
        group_commit_s: float = 0.0,
    ) -> None:
        self.path = Path(path)
        self.group_commit_s = group_commit_s
        self.synchronous = synchronous
        self.batch_max = batch_max
        self.queue_max = queue_max
        self.release_after = release_after
        self._readers_n = readers
        self._writer: WriterThread | None = None
        self._readers: ReaderPool | None = None
        #: a connection of its own for consumers catching up on the journal (bulk reads,
        #: back to back): the panel's and the API's reads never queue behind them
        self._bulk: ReaderPool | None = None
        self._checkpointer: Checkpointer | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._room = asyncio.Event()
        self._room.set()
        self._pending: dict[int, Op] = {}  # id(op) → op with journal entries, until it commits
        self._released: set[int] = set()
        self._flushers: list[Flusher] = []
        self._exec_futures: dict[int, asyncio.Future[Exec]] = {}
        self._outgoing: list[Op] = []  # telemetry ops of this loop turn, handed over together
        self._handover_scheduled = False
        self._queued_here = 0
        #: the live tail: called on the loop thread with each commit's entries, in seq order
        self.on_entries: Callable[[list[Event]], None] | None = None
        #: ``gate(seq, callback)``: run the durable callback of a gated op once entry ``seq`` is
        #: handled downstream (the alarm engine); None: at commit
        self.ack_gate: Callable[[int, DurableCallback], None] | None = None
        #: called with the entries of each alarm-lane operation queued (the core decides whether
        #: to hold telemetry off for a moment: fire and gas alarms)
        self.on_urgent: Callable[[list[Event]], None] | None = None
        #: called with entries released before they are durable
        self.on_released: Callable[[list[Event]], None] | None = None
        self.last_seq = 0
        self.released = 0
        self.writer_alive = False

    # -- lifecycle -------------------------------------------------------------------------

    async def open(self, migrations: Iterable[Migration] = ()) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        from ..backup import DatabaseLock  # shared; `firebus restore` takes it exclusively (core/backup.py)

        lock = DatabaseLock(self.path, exclusive=False)
        if not lock.acquire():
            raise StorageError(f"{self.path} is being restored (firebus restore); start again once it has finished")
        self._lock: DatabaseLock | None = lock
        writer = WriterThread(
            str(self.path), synchronous=self.synchronous, batch_max=self.batch_max, on_commit=self._from_writer,
            group_commit_s=self.group_commit_s,
        )
        steps = [*CORE_MIGRATIONS, *migrations]

        def prepare() -> int:
            db = writer.connect()
            migrate(db, steps)
            top = db.execute("SELECT coalesce(max(seq), 0) FROM journal").fetchone()[0]
            cursors = db.execute("SELECT coalesce(max(seq), 0) FROM journal_cursors").fetchone()[0]
            writer.next_seq = max(top, cursors) + 1
            return int(top)

        self.last_seq = await asyncio.get_running_loop().run_in_executor(None, prepare)
        self._writer = writer
        self._readers = ReaderPool(str(self.path), self._readers_n)
        self._bulk = ReaderPool(str(self.path), 1)
        self._checkpointer = Checkpointer(str(self.path))
        self._checkpointer.start()

    async def run_writer(self, *, task_status: Any = anyio.TASK_STATUS_IGNORED) -> None:
        """Run the writer thread until cancelled; then commit what is queued and stop it."""
        assert self._writer is not None, "storage is not open"
        self._loop = asyncio.get_running_loop()
        self._reports: asyncio.Queue[list[Item]] = asyncio.Queue()
        self._failing = asyncio.Event()
        self._writer.on_failing = lambda: self._loop.call_soon_threadsafe(self._failing.set) if self._loop else None
        self._writer.start()
        self.writer_alive = True
        watchdog = asyncio.create_task(self._release_watchdog(), name="storage:release")
        task_status.started()
        rest: list[list[Item]] = []
        try:
            # Commit reports are handled in this task (not in a bare loop callback), so durable
            # callbacks may start tasks and use anyio like any other code of the core.
            while True:
                # A commit of thousands of rows is handed on in slices, yielding between
                # them: the acks and the live tail of a 5,000-row commit held the loop for
                # 15-35 ms at a time, and every HTTP request waited behind it.
                rest = list(_slices(await self._reports.get(), COMMITTED_SLICE))
                while rest:
                    self._committed(rest.pop(0))
                    if rest:
                        await asyncio.sleep(0)
        finally:
            for part in rest:  # cancelled between slices: the rest of that commit is done too
                self._committed(part)
            watchdog.cancel()
            with anyio.CancelScope(shield=True):
                self._hand_over()
                writer = self._writer
                stopped = await asyncio.get_running_loop().run_in_executor(None, writer.stop)
                if not stopped:
                    log.error("storage: the writer did not finish within 30 s at shutdown")
                self.writer_alive = False
                await asyncio.sleep(0)  # let the last commit reports arrive
                while not self._reports.empty():
                    self._committed(self._reports.get_nowait())
                # Whoever still waits for a statement learns it will not run (never hangs a stop).
                for fut in self._exec_futures.values():
                    if not fut.done():
                        fut.set_exception(StorageError("the store has stopped"))
                self._exec_futures.clear()

    @asynccontextmanager
    async def running(self, migrations: Iterable[Migration] = ()) -> AsyncIterator["Storage"]:
        """Open, run the writer, and always close (tests, tools, benchmarks)."""
        await self.open(migrations)
        try:
            async with anyio.create_task_group() as tg:
                await tg.start(self.run_writer)
                try:
                    yield self
                finally:
                    with anyio.CancelScope(shield=True), anyio.move_on_after(30):
                        await self.barrier()
                    tg.cancel_scope.cancel()
        finally:
            with anyio.CancelScope(shield=True):
                await self.close()

    async def close(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.stop()
            self._checkpointer = None
        if self._readers is not None:
            self._readers.close()
            self._readers = None
        if self._bulk is not None:
            self._bulk.close()
            self._bulk = None
        if self._writer is not None and not self._writer.alive and self._writer.db is not None:
            self._writer.db.close()
            self._writer.db = None
        lock, self._lock = getattr(self, "_lock", None), None
        if lock is not None:
            lock.release()

    # -- writes ----------------------------------------------------------------------------

    def submit(self, op: Op) -> None:
        """Queue ``op`` (never blocks).  Its callback and entries follow its commit.

        Operations submitted during one turn of the event loop reach the writer
        together (one lock, one wake-up): a batch of MQTT messages is one hand-over.
        An alarm-lane operation is handed over at once.
        """
        writer = self._writer
        if writer is None:
            raise StorageError("storage is not open")
        if op.events:
            self._pending[id(op)] = op
            if op.lane is Lane.ALARM and self.on_urgent is not None:
                self.on_urgent(op.events)
        loop = self._loop
        if loop is None or op.lane is Lane.ALARM:
            if self._outgoing:
                self._hand_over()
            writer.submit(op)
        else:
            self._outgoing.append(op)
            if not self._handover_scheduled:
                self._handover_scheduled = True
                loop.call_soon(self._hand_over)
            self._queued_here += op.size
        if writer.queued_rows + self._queued_here > self.queue_max:
            self._room.clear()

    def _hand_over(self) -> None:
        self._handover_scheduled = False
        ops, self._outgoing = self._outgoing, []
        self._queued_here = 0
        writer = self._writer
        if ops and writer is not None:
            writer.submit_many(ops)

    def append(
        self,
        events: list[Event],
        parts: list[tuple[str, Sequence[Sequence[Any]]]] | None = None,
        on_durable: DurableCallback | None = None,
        lane: Lane | None = None,
    ) -> None:
        """Journal ``events`` (and commit ``parts`` with them); the lane is the most urgent of theirs."""
        if lane is None:
            lane = Lane.ALARM if any(e.lane is Lane.ALARM for e in events) else Lane.TELEMETRY
        self.submit(Op(list(parts or []), events, on_durable, lane))

    async def wait_room(self) -> None:
        """Wait while the telemetry queue is over ``queue_max`` rows (producers that can wait)."""
        while not self._room.is_set():
            await self._room.wait()

    @property
    def congested(self) -> bool:
        return not self._room.is_set()

    async def put(
        self, statement: str, rows: list[Sequence[Any]], on_durable: DurableCallback | None = None,
        *, lane: Lane = Lane.TELEMETRY,
    ) -> None:
        """Queue rows for the next batch; waits if the writer is that far behind."""
        if lane is Lane.TELEMETRY:
            await self.wait_room()
        self.submit(Op([(statement, rows)], None, on_durable, lane))

    async def put_many(
        self, parts: list[tuple[str, list[Sequence[Any]]]], on_durable: DurableCallback | None = None,
        *, lane: Lane = Lane.TELEMETRY,
    ) -> None:
        """Queue rows of several statements that commit together or not at all."""
        if lane is Lane.TELEMETRY:
            await self.wait_room()
        self.submit(Op(list(parts), None, on_durable, lane))

    def put_nowait(
        self, statement: str, rows: list[Sequence[Any]], on_durable: DurableCallback | None = None,
        *, lane: Lane = Lane.TELEMETRY,
    ) -> bool:
        if lane is Lane.TELEMETRY and self.congested:
            return False
        self.submit(Op([(statement, rows)], None, on_durable, lane))
        return True

    def add_flusher(self, flusher: Flusher) -> None:
        """``flusher()`` queues what a component keeps in memory (state checkpoints); ``barrier`` runs it."""
        self._flushers.append(flusher)

    async def barrier(self) -> None:
        """Return once everything queued before this call (and what flushers queue) is committed.

        Returns at once if the writer is not running (nothing queued could commit;
        shutdown paths must not wait forever on a writer that was cancelled).
        """
        if not self.writer_alive:
            return
        for flusher in list(self._flushers):
            result = flusher()
            if result is not None:
                await result
        done = asyncio.Event()
        # A telemetry op commits after everything of either lane queued before it.
        op = Op([], None, done.set, Lane.TELEMETRY)
        op.flush = True  # now: no group-commit wait
        self.submit(op)
        await done.wait()

    async def _exec(self, sql: str, params: Any, many: bool, lane: Lane) -> Any:
        writer = self._writer
        if writer is None:
            raise StorageError("storage is not open")
        if self._loop is not None and not self.writer_alive:
            raise StorageError("the store has stopped")
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Exec] = loop.create_future()
        ex = Exec(sql, params, many, lane)
        self._exec_futures[id(ex)] = fut
        if self._outgoing:
            self._hand_over()  # in order with what was queued before it
        writer.submit(ex)
        await fut
        if ex.error is not None:
            raise ex.error
        return ex.result

    async def on_writer(self, fn: Callable[[sqlite3.Connection], Any]) -> Any:
        """Run ``fn(connection)`` on the writer's own connection, between transactions — even
        while commits are failing (fault injection in tests; never for ordinary writes)."""
        writer = self._writer
        if writer is None or self._loop is None:
            raise StorageError("the writer is not running")
        loop = self._loop
        fut: asyncio.Future[Any] = loop.create_future()

        def done(result: Any, error: BaseException | None) -> None:
            def settle() -> None:
                if fut.done():
                    return
                if error is not None:
                    fut.set_exception(error)
                else:
                    fut.set_result(result)

            loop.call_soon_threadsafe(settle)

        writer.control(fn, done)
        return await fut

    async def execute(self, sql: str, params: Sequence[Any] = (), *, lane: Lane = Lane.TELEMETRY) -> Any:
        """Run one write statement in its own transaction, in order with queued work; returns lastrowid."""
        return await self._exec(sql, params, False, lane)

    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]], *, lane: Lane = Lane.TELEMETRY) -> None:
        await self._exec(sql, list(rows), True, lane)

    async def log_event(self, event: Event, on_durable: DurableCallback | None = None) -> None:
        """Journal one event (compatibility with the event-log API)."""
        self.append([event], None, on_durable)

    async def quarantine(self, source: str, reason: str, payload: bytes) -> None:
        await self.put(SQL_QUARANTINE, [(time.time(), source, reason, payload)])

    # -- commit reports (writer thread → loop) ---------------------------------------------

    def _from_writer(self, items: list[Item]) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        try:
            loop.call_soon_threadsafe(self._reports.put_nowait, items)
        except RuntimeError:
            pass  # loop closing: nothing left to tell

    def _committed(self, items: list[Item]) -> None:
        entries: list[Event] = []
        gates: list[tuple[int, DurableCallback]] = []
        for item in items:
            if isinstance(item, Exec):
                fut = self._exec_futures.pop(id(item), None)
                if fut is not None and not fut.done():
                    fut.set_result(item)
                continue
            key = id(item)
            self._pending.pop(key, None)
            self._released.discard(key)
            if item.error is not None:
                continue  # refused (logged by the writer): never acknowledged
            if item.events and item.deliver:
                entries.extend(item.events)
            elif item.events:
                self.last_seq = max(self.last_seq, item.events[-1].seq)
            if item.on_durable is not None:
                gate = self.ack_gate
                if item.gate and gate is not None and item.events:
                    gates.append((item.events[-1].seq, item.on_durable))
                    continue
                try:
                    item.on_durable()
                except Exception:
                    log.exception("storage: durable callback raised")
        writer = self._writer
        if writer is not None and writer.queued_rows <= self.queue_max:
            self._room.set()
        if entries:
            self.last_seq = max(self.last_seq, entries[-1].seq)
            tail = self.on_entries
            if tail is not None:
                try:
                    tail(entries)
                except Exception:
                    log.exception("storage: the live tail raised")
        gate = self.ack_gate
        for seq, callback in gates:  # after the tail: the gate's consumer has them queued
            try:
                gate(seq, callback)  # type: ignore[misc]
            except Exception:
                log.exception("storage: the acknowledgement gate raised")

    async def _release_watchdog(self) -> None:
        """Hand alarm entries to the live tail, not yet durable, while the store refuses writes.

        Sleeps until the writer reports a failure (no polling while all is well: a timer
        firing every tick would keep test clocks and idle loops from ever settling)."""
        while True:
            writer = self._writer
            if writer is None or writer.failing_since is None:
                self._failing.clear()
                await self._failing.wait()
                continue
            await asyncio.sleep(0.1)
            if not self._pending:
                continue
            now = time.monotonic()
            due = [
                (key, op) for key, op in self._pending.items()
                if key not in self._released and op.deliver and now - op.queued_at >= self.release_after
            ]
            if not due:
                continue
            released: list[Event] = []
            for key, op in due:
                self._released.add(key)
                for event in op.events or ():
                    released.append(Event(data=event.data, context=event.context, time_fired=event.time_fired,
                                          seq=0, durable=False, lane=event.lane))
            self.released += len(released)
            log.error("storage: the store refuses writes; %d journal entr%s handed on before they are durable",
                      len(released), "y" if len(released) == 1 else "ies")
            if self.on_released is not None and released:
                try:
                    self.on_released(released)
                except Exception:
                    log.exception("storage: releasing alarm entries raised")

    # -- reads -----------------------------------------------------------------------------

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        readers = self._readers
        assert readers is not None, "storage is not open"
        return await readers.fetchall(sql, params)

    async def fetchall_bulk(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """A large read (a journal catch-up) on its own connection, apart from interactive reads."""
        readers = self._bulk or self._readers
        assert readers is not None, "storage is not open"
        return await readers.fetchall(sql, params)

    async def fetchone(self, sql: str, params: Sequence[Any] = ()) -> tuple[Any, ...] | None:
        readers = self._readers
        assert readers is not None, "storage is not open"
        return await readers.fetchone(sql, params)

    async def fetch_batch(self, statements: Sequence[tuple[str, Sequence[Any]]]) -> list[list[tuple[Any, ...]]]:
        """Every statement's rows, read from one snapshot in one hand-over (see ``ReaderPool``)."""
        readers = self._readers
        assert readers is not None, "storage is not open"
        return await readers.fetch_batch(statements)

    # -- figures ---------------------------------------------------------------------------

    @property
    def commits(self) -> int:
        return self._writer.commits if self._writer else 0

    @property
    def write_errors(self) -> int:
        return self._writer.write_errors if self._writer else 0

    @property
    def rows_written(self) -> int:
        return self._writer.rows_written if self._writer else 0

    @property
    def failing(self) -> bool:
        return bool(self._writer and self._writer.failing_since is not None)

    def metrics(self) -> dict[str, Any]:
        w = self._writer
        alarm_q, tele_q = w.depth() if w else (0, 0)
        return {
            "queue": alarm_q + tele_q,
            "queue_alarm": alarm_q,
            "queue_telemetry": tele_q,
            "queued_rows": w.queued_rows if w else 0,
            "queue_max": self.queue_max,
            "oldest_wait_s": round(w.oldest_wait(), 3) if w else 0.0,
            "commits": self.commits,
            "rows_written": self.rows_written,
            "write_errors": self.write_errors,
            "refused_ops": w.refused_ops if w else 0,
            "failing": self.failing,
            "last_error": w.last_error if w else "",
            "last_commit_ms": round(w.last_commit_s * 1000, 3) if w else 0.0,
            "max_commit_ms": round(w.max_commit_s * 1000, 3) if w else 0.0,
            "released_not_durable": self.released,
            "last_seq": self.last_seq,
            "reads": self._readers.queries if self._readers else 0,
        }


def connect_readonly(path: str | Path) -> sqlite3.Connection:
    """A plain read-only connection (tools, CLI commands that only read)."""
    conn = sqlite3.connect(f"file:{Path(path)}?mode=ro", uri=True)
    conn.execute("PRAGMA busy_timeout=10000")
    return conn
