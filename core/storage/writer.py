"""The single writer: one thread, one SQLite connection, two lanes.

Everything that writes hands an operation to this thread.  It commits them in
transactions and reports each commit back to the event loop once, with the
operations it contained, so their durable callbacks (MQTT acknowledgements)
and their journal entries (now numbered) go out only after COMMIT.

Lanes (why they exist: a fire alarm must never wait behind telemetry):

* ``Lane.ALARM`` operations are taken first, in a small transaction of their
  own, whenever any are queued;
* ``Lane.TELEMETRY`` operations are batched into large transactions (up to
  ``batch_max`` rows), which is what makes ingest cheap; a telemetry
  transaction also takes any alarm operation that arrived while it was being
  collected, so an alarm operation is never committed *after* telemetry that was
  queued after it.

Invariant: an operation commits in the same transaction as, or a later one
than, every operation of its own lane queued before it; alarm operations may
overtake telemetry, never the reverse.  Journal entries are numbered in commit
order (``seq``), so a consumer reading ``seq > cursor`` never skips one.

Failures: an I/O error, a full disk or a read-only file fails the whole
transaction; nothing is acknowledged, nothing dropped, and the same
operations are retried with back-off until the store accepts them
(``failing_since`` tells the loop side, which can then release alarm entries
to subscribers as not yet durable).  Any other error (a constraint a plugin's
statement violates) is one bad operation: the batch is retried one
operation at a time and only that operation is refused, loudly.

The thread releases the GIL inside SQLite, so inserts run beside the event loop.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections import deque
from typing import Any, Callable, Sequence

from firebus.sdk.events import Event, Lane

from ..journal.rows import SQL_J_EVENT, SQL_J_STATE, split_rows

log = logging.getLogger("firebus.core.storage")

DurableCallback = Callable[[], None]
Rows = Sequence[Sequence[Any]]


#: tables other rows point at (FOREIGN KEY), in the order their rows must be written
_PARENTS = ("INSERT INTO places", "INSERT INTO devices", "INSERT INTO points")


def _parent_rank(sql: str) -> int:
    head = sql.lstrip()[:40]
    for rank, prefix in enumerate(_PARENTS):
        if head.startswith(prefix):
            return rank
    return len(_PARENTS)  # sorted() is stable: everything else keeps its first-seen order


class Op:
    """Rows of one or more statements (and journal entries) that commit together or not at all."""

    __slots__ = ("parts", "events", "on_durable", "lane", "size", "queued_at", "error", "deliver", "gate", "flush")

    def __init__(
        self,
        parts: list[tuple[str, Rows]],
        events: list[Event] | None = None,
        on_durable: DurableCallback | None = None,
        lane: Lane = Lane.TELEMETRY,
    ) -> None:
        self.parts = parts
        self.events = events
        self.on_durable = on_durable
        self.lane = lane
        size = len(events) if events else 0
        for _, rows in parts:
            size += len(rows)
        self.size = size
        self.queued_at = 0.0
        self.error: BaseException | None = None
        #: someone waits for this commit (``Storage.barrier``): no group-commit wait while queued
        self.flush = False
        #: hand the committed entries to the live tail (False: history only, e.g. untrusted devices)
        self.deliver = True
        #: run ``on_durable`` only once the store's gate (the alarm engine) has handled the
        #: entries too (a device's message is acknowledged upstream once evaluated)
        self.gate = False


class Exec:
    """One statement in a transaction of its own, whose result (lastrowid) the caller awaits."""

    __slots__ = ("sql", "params", "many", "lane", "result", "error", "size", "queued_at")

    def __init__(self, sql: str, params: Any, many: bool, lane: Lane) -> None:
        self.sql = sql
        self.params = params
        self.many = many
        self.lane = lane
        self.result: Any = None
        self.error: BaseException | None = None
        self.size = 1
        self.queued_at = 0.0


Item = Op | Exec

#: primary result codes that say the store (disk, file, lock) refused the transaction, not that
#: an operation is bad: BUSY, LOCKED, NOMEM, READONLY, IOERR, FULL, CANTOPEN, PROTOCOL
_RETRYABLE_CODES = frozenset({5, 6, 7, 8, 10, 13, 14, 15})

#: rows written between two looks at the alarm queue in a telemetry transaction (≈ 5 ms here)
CHUNK_ROWS = 500


def retryable(exc: BaseException) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    return isinstance(exc, sqlite3.Error) and code is not None and (code & 0xFF) in _RETRYABLE_CODES


#: group commit applies only after a transaction smaller than this (a trickle, not a flood)
GROUP_BELOW_ROWS = 256


class WriterThread:
    def __init__(
        self,
        path: str,
        *,
        synchronous: str,
        batch_max: int,
        alarm_batch_max: int = 2000,
        on_commit: Callable[[list[Item]], None],
        cache_kib: int = 16384,
        group_commit_s: float = 0.0,
    ) -> None:
        self.path = path
        #: telemetry alone waits up to this long after its oldest item for more (group commit)
        self.group_commit_s = group_commit_s
        self._flushes = 0  # flush ops queued on the telemetry lane
        self.last_commit_rows = 0
        self.synchronous = synchronous
        self.batch_max = batch_max
        self.alarm_batch_max = alarm_batch_max
        self.on_commit = on_commit
        self.cache_kib = cache_kib
        self._alarm: deque[Item] = deque()
        self._telemetry: deque[Item] = deque()
        self._control: deque[tuple[Callable[[sqlite3.Connection], Any], Callable[[Any, BaseException | None], None]]] = deque()
        self._cond = threading.Condition()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self.db: sqlite3.Connection | None = None
        # read by the loop thread (plain attributes: a torn read of a float is impossible in CPython)
        self.failing_since: float | None = None
        self.on_failing: Callable[[], Any] | None = None  # told (from this thread) when commits start failing
        self.last_error = ""
        self.commits = 0
        self.rows_written = 0
        self.write_errors = 0
        self.refused_ops = 0
        self.preempted = 0  # telemetry transactions cut short for an alarm
        self.last_commit_s = 0.0
        self.max_commit_s = 0.0
        self.queued_rows = 0  # telemetry rows queued, not yet taken (the producers' back-pressure signal)
        #: the next seq to give: never one given before, even to an entry whose row a unique
        #: key absorbed (a consumer may have seen it), nor one a stored cursor already passed
        self.next_seq = 1

    # -- life ------------------------------------------------------------------------------

    def connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute(f"PRAGMA synchronous={self.synchronous}")
        db.execute("PRAGMA foreign_keys=ON")
        db.execute("PRAGMA busy_timeout=10000")
        db.execute(f"PRAGMA cache_size=-{self.cache_kib}")
        # Checkpoints run in their own thread (storage.checkpoint): never inside an alarm's commit.
        db.execute("PRAGMA wal_autocheckpoint=0")
        self.db = db
        return db

    def start(self) -> None:
        assert self.db is not None, "connect() first"
        self._thread = threading.Thread(target=self._run, name="firebus-writer", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> bool:
        """Commit what is queued, then end the thread.  False if it did not end in time."""
        with self._cond:
            self._stopping = True
            self._cond.notify()
        if self._thread is not None:
            self._thread.join(timeout)
            alive = self._thread.is_alive()
            if not alive and self.db is not None:
                self.db.close()
                self.db = None
            return not alive
        return True

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    # -- queue (any thread) ----------------------------------------------------------------

    def submit(self, item: Item) -> None:
        self.submit_many([item])

    def submit_many(self, items: list[Item]) -> None:
        """Queue items in order, waking the thread once (not once per item)."""
        now = time.monotonic()
        with self._cond:
            for item in items:
                item.queued_at = now
                if item.lane is Lane.ALARM:
                    self._alarm.append(item)
                else:
                    self._telemetry.append(item)
                    self.queued_rows += item.size
                    if getattr(item, "flush", False):
                        self._flushes += 1
            self._cond.notify()

    def control(self, fn: Callable[[sqlite3.Connection], Any], done: Callable[[Any, BaseException | None], None]) -> None:
        """Run ``fn(connection)`` on this thread between transactions, even while commits are
        failing and being retried (fault injection in tests, maintenance)."""
        with self._cond:
            self._control.append((fn, done))
            self._cond.notify()

    def _run_controls(self) -> None:
        while self._control:
            fn, done = self._control.popleft()
            try:
                result = fn(self.db)  # type: ignore[arg-type]
            except BaseException as exc:  # reported to the caller
                done(None, exc)
            else:
                done(result, None)

    def depth(self) -> tuple[int, int]:
        return len(self._alarm), len(self._telemetry)

    def oldest_wait(self) -> float:
        """Seconds the oldest queued item has waited (0 when nothing is queued)."""
        now = time.monotonic()
        heads = [q[0].queued_at for q in (self._alarm, self._telemetry) if q]
        return now - min(heads) if heads else 0.0

    # -- the thread ------------------------------------------------------------------------

    def _take(self) -> list[Item] | None:
        with self._cond:
            idle = False  # the queues were empty: we waited for this work
            while not self._alarm and not self._telemetry:
                if self._control:
                    self._cond.release()
                    try:
                        self._run_controls()
                    finally:
                        self._cond.acquire()
                    continue
                if self._stopping:
                    return None
                idle = True
                self._cond.wait()
            if (idle and self.last_commit_rows < GROUP_BELOW_ROWS and not self._alarm and self.group_commit_s > 0
                    and isinstance(self._telemetry[0], Op)):
                # Group commit: a trickle of readings (a site at rest, a few hundred a second)
                # shares one transaction and one fsync instead of one each (at 1,000 msg/s: 353
                # commits/s → 83, core CPU 28 % → 15 %, bench/footprint.py).  Only when the writer
                # had nothing to do and its last transaction was small: at full ingest a wait cut
                # live ingest from 25k to 7-10k msg/s (acks of the in-flight window come later, so
                # less arrives).  An alarm-lane item, a control, a flush or a full batch ends it.
                deadline = self._telemetry[0].queued_at + self.group_commit_s
                while (not self._alarm and not self._control and not self._stopping and not self._flushes
                       and self.queued_rows < self.batch_max):
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    self._cond.wait(left)
            batch: list[Item] = []
            if self._alarm:
                self._take_from(self._alarm, batch, self.alarm_batch_max)
                return batch
            rows = self._take_from(self._telemetry, batch, self.batch_max)
            self.queued_rows -= rows
            if self._flushes:
                self._flushes -= sum(1 for item in batch if getattr(item, "flush", False))
            if batch and isinstance(batch[-1], Op) and self._alarm:
                self._take_from(self._alarm, batch, self.alarm_batch_max)
            return batch

    @staticmethod
    def _take_from(queue: deque[Item], batch: list[Item], limit: int) -> int:
        rows = 0
        while queue and rows < limit:
            head = queue[0]
            if isinstance(head, Exec):
                if batch:  # an Exec runs alone, after what was queued before it
                    break
                batch.append(queue.popleft())
                return 1
            batch.append(queue.popleft())
            rows += head.size
        return rows

    def _run(self) -> None:
        while True:
            batch = self._take()
            if batch is None:
                return
            if isinstance(batch[0], Exec):
                self._run_exec(batch[0])
                self.on_commit(batch)
                continue
            ops: list[Op] = batch  # type: ignore[assignment]
            committed = self._commit_with_retry(ops)
            self.on_commit(committed)

    def _commit_with_retry(self, ops: list[Op]) -> list[Item]:
        attempt = 0
        while True:
            try:
                committed, leftovers = self._commit(ops)
            except Exception as exc:
                if not retryable(exc):
                    return self._refuse(ops, exc)
                attempt += 1
                self._failed(exc, attempt)
                if self._stopping and attempt >= 3:
                    log.error("storage: giving up at shutdown with %d operation(s) uncommitted: %s", len(ops), exc)
                    return []
                self._backoff(attempt)
                continue
            self._recovered()
            if leftovers:
                # Telemetry that gave way to an alarm: first in line for the next transaction.
                with self._cond:
                    for op in reversed(leftovers):
                        self._telemetry.appendleft(op)
                        self.queued_rows += op.size
                        if op.flush:
                            self._flushes += 1
            return list(committed)

    def _refuse(self, ops: list[Op], exc: BaseException) -> list[Item]:
        if len(ops) > 1:
            # One bad operation among many: commit them one by one, refuse only the bad one.
            done: list[Item] = []
            for op in ops:
                done.extend(self._commit_with_retry([op]))
            return done
        op = ops[0]
        op.error = exc
        self.refused_ops += 1
        log.error("storage: refused an operation (%s: %s); statements: %s", type(exc).__name__, exc,
                  [sql.split("(")[0].strip() for sql, _ in op.parts] + (["journal"] if op.events else []))
        self._recovered()
        return [op]  # reported back (its error set): the caller learns it will never commit

    def _backoff(self, attempt: int) -> None:
        """Wait before retrying a failed transaction; control calls still run meanwhile."""
        deadline = time.monotonic() + min(5.0, 0.05 * 2 ** min(attempt, 7))
        while True:
            self._run_controls()
            left = deadline - time.monotonic()
            if left <= 0:
                return
            with self._cond:
                if not self._control and not self._stopping:
                    self._cond.wait(left)
            if self._stopping:
                return

    def _failed(self, exc: BaseException, attempt: int) -> None:
        self.write_errors += 1
        self.last_error = f"{type(exc).__name__}: {exc}"
        if self.failing_since is None:
            self.failing_since = time.time()
            if self.on_failing is not None:
                try:
                    self.on_failing()
                except RuntimeError:
                    pass  # loop closed
        if attempt == 1 or attempt % 20 == 0:
            log.error("storage: commit failed (%s); retrying, nothing acknowledged", exc)

    def _recovered(self) -> None:
        if self.failing_since is not None:
            log.warning("storage: writes succeed again after %.1f s", time.time() - self.failing_since)
            self.failing_since = None

    def _commit(self, ops: list[Op]) -> tuple[list[Op], list[Op]]:
        """One transaction: ``ops`` in chunks of about ``CHUNK_ROWS`` rows.

        Between chunks of a telemetry batch the alarm queue is looked at: alarm
        operations waiting are written into this transaction at once, the rest of the
        telemetry is handed back, and the transaction commits — an alarm waits for one
        chunk, never for a whole large batch.  Returns (committed, handed back).
        """
        db = self.db
        assert db is not None
        started = time.perf_counter()
        done: list[Op] = []
        taken: list[Op] = []
        leftovers: list[Op] = []
        size = 0
        db.execute("BEGIN IMMEDIATE")
        try:
            # Rows may also come from elsewhere (the readings view's INSERT trigger): ask.
            seq = max(self.next_seq, db.execute("SELECT coalesce(max(seq), 0) + 1 FROM journal").fetchone()[0])
            i, n = 0, len(ops)
            telemetry = bool(ops) and ops[0].lane is not Lane.ALARM
            while i < n:
                chunk: list[Op] = []
                rows = 0
                while i < n and (rows < CHUNK_ROWS or not chunk):
                    chunk.append(ops[i])
                    rows += ops[i].size
                    i += 1
                seq = self._execute(db, chunk, seq)
                done.extend(chunk)
                size += rows
                if telemetry and i < n and self._alarm:
                    with self._cond:
                        while self._alarm and isinstance(self._alarm[0], Op) and len(taken) < 1000:
                            taken.append(self._alarm.popleft())  # type: ignore[arg-type]
                    if taken:
                        seq = self._execute(db, taken, seq)
                        size += sum(op.size for op in taken)
                        leftovers = ops[i:]
                        self.preempted += 1
                        break
                    if self._alarm:
                        # An alarm-lane statement (notify's outbox, an operator's action) runs
                        # in a transaction of its own: commit what is written, it goes next.
                        leftovers = ops[i:]
                        self.preempted += 1
                        break
            db.execute("COMMIT")
            self.next_seq = seq
        except BaseException:
            try:
                db.execute("ROLLBACK")
            except sqlite3.Error:
                pass
            for op in (*done, *taken):
                for event in op.events or ():
                    event.seq = 0  # numbered again when the retry commits
            if taken:
                with self._cond:  # the alarm operations taken go back where they were
                    for op in reversed(taken):
                        self._alarm.appendleft(op)
            raise
        self.commits += 1
        self.rows_written += size
        self.last_commit_rows = size
        self.last_commit_s = time.perf_counter() - started
        self.max_commit_s = max(self.max_commit_s, self.last_commit_s)
        return done + taken, leftovers

    @staticmethod
    def _execute(db: sqlite3.Connection, ops: list[Op], seq: int) -> int:
        """Write ``ops`` (grouped by statement, journal entries numbered from ``seq``)."""
        grouped: dict[str, list[Sequence[Any]]] = {}
        events: list[Event] = []
        for op in ops:
            for sql, rows in op.parts:
                have = grouped.get(sql)
                if have is None:
                    grouped[sql] = list(rows)
                else:
                    have.extend(rows)
            if op.events:
                events.extend(op.events)
        if events:
            states, others, seq = split_rows(events, seq)
            if states:
                db.executemany(SQL_J_STATE, states)
            if others:
                db.executemany(SQL_J_EVENT, others)
        if len(grouped) > 1:
            # Grouping by statement reorders rows across operations: a chunk that begins
            # with a device's identifiers, then holds another device and its identifiers,
            # would insert those identifiers before their device (FOREIGN KEY failed, and
            # the whole batch was retried one operation at a time: seconds at start-up).
            # Parents first, each group in its original order.
            for sql in sorted(grouped, key=_parent_rank):
                db.executemany(sql, grouped[sql])
        else:
            for sql, rows in grouped.items():
                db.executemany(sql, rows)
        return seq

    def _run_exec(self, ex: Exec) -> None:
        db = self.db
        assert db is not None
        attempt = 0
        while True:
            try:
                db.execute("BEGIN IMMEDIATE")
                cur = db.executemany(ex.sql, ex.params) if ex.many else db.execute(ex.sql, ex.params)
                ex.result = cur.lastrowid
                db.execute("COMMIT")
                self.commits += 1
                self._recovered()
                return
            except BaseException as exc:
                try:
                    db.execute("ROLLBACK")
                except sqlite3.Error:
                    pass
                if not retryable(exc):
                    ex.error = exc
                    return
                attempt += 1
                self._failed(exc, attempt)
                if self._stopping and attempt >= 3:
                    ex.error = exc
                    return
                self._backoff(attempt)
