"""The embedded store: SQLite in WAL mode through aiosqlite.

One writer task owns the only write connection.  Everything that writes sends
an operation to it; it takes whatever is queued (up to ``batch_max``), runs it
as one transaction with ``executemany`` per statement, commits, and only then
calls the operations' durable callbacks.  That callback is what lets a
transport acknowledge a message upstream only once the data is on disk.

Readers use their own connection; in WAL mode they never block the writer.
The write queue is bounded and ``put`` waits when it is full: producers slow
down instead of data being dropped (the HA recorder's "stop recording on
backlog" is the failure this avoids).
"""

from __future__ import annotations

import logging
import math
import time
from collections import defaultdict
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, AsyncIterator, Callable, Iterable, Sequence

import aiosqlite
import anyio
import msgspec

from firebus.sdk.events import Event
from firebus.sdk.migration import Migration

from .schema import CORE_MIGRATIONS

log = logging.getLogger(__name__)

DurableCallback = Callable[[], None]

_json = msgspec.json.Encoder()

SQL_READING = "INSERT OR IGNORE INTO readings (point_id, ts, value, fault) VALUES (?, ?, ?, ?)"
SQL_STATE = """
INSERT INTO point_state (point_id, value, fault, last_changed, last_updated, last_reported)
VALUES (?, ?, ?, ?, ?, ?)
ON CONFLICT (point_id) DO UPDATE SET
  value = excluded.value, fault = excluded.fault, last_changed = excluded.last_changed,
  last_updated = excluded.last_updated, last_reported = excluded.last_reported
"""
SQL_TOUCH = "UPDATE point_state SET last_reported = max(coalesce(last_reported, 0), ?) WHERE point_id = ?"
SQL_EVENT = """
INSERT INTO event_log (ts, type, lane, context_id, parent_id, actor, actor_id, data)
VALUES (?, ?, ?, ?, ?, ?, ?, ?)
"""
SQL_QUARANTINE = "INSERT INTO quarantine (ts, source, reason, payload) VALUES (?, ?, ?, ?)"


class StorageError(Exception):
    pass


@dataclass
class WriteBatch:
    """Rows for one transaction, grouped by statement so each is one executemany."""

    rows: dict[str, list[Sequence[Any]]] = field(default_factory=lambda: defaultdict(list))
    callbacks: list[DurableCallback] = field(default_factory=list)
    size: int = 0


@dataclass
class _Op:
    """Rows of one or more statements that must commit in the same transaction."""

    parts: list[tuple[str, list[Sequence[Any]]]]
    on_durable: DurableCallback | None = None


@dataclass
class _Exec:
    """Arbitrary SQL run in its own transaction, with a result future."""

    sql: str
    params: Sequence[Any] | Iterable[Sequence[Any]]
    many: bool
    done: anyio.Event = field(default_factory=anyio.Event)
    result: Any = None
    error: BaseException | None = None


def event_row(event: Event) -> tuple[Any, ...]:
    ctx = event.context
    return (
        event.time_fired,
        event.type,
        str(event.lane),
        ctx.id,
        ctx.parent_id,
        str(ctx.actor),
        ctx.actor_id,
        _json.encode(event.data).decode(),
    )


def to_ms(ts: float) -> int:
    return int(round(ts * 1000))


def storable(value: Any) -> Any:
    """SQLite keeps ints, floats and text natively; anything else goes in as JSON."""
    if value is None or isinstance(value, (int, float, str)):
        if isinstance(value, float) and not math.isfinite(value):
            return None
        return value
    return _json.encode(value).decode()


class Storage:
    """Owns the database file: migrations, the writer task, reads."""

    def __init__(
        self,
        path: str | Path,
        *,
        synchronous: str = "FULL",
        batch_max: int = 2000,
        queue_max: int = 50_000,
    ) -> None:
        self.path = Path(path)
        self.synchronous = synchronous
        self.batch_max = batch_max
        self._send, self._recv = anyio.create_memory_object_stream[Any](queue_max)
        self._writer: aiosqlite.Connection | None = None
        self._reader: aiosqlite.Connection | None = None
        self.commits = 0
        self.rows_written = 0
        self.write_errors = 0
        self.last_commit_s = 0.0
        self.writer_alive = False

    # -- lifecycle -------------------------------------------------------------------------

    async def open(self, migrations: Iterable[Migration] = ()) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._writer = await aiosqlite.connect(self.path, isolation_level=None)
        await self._writer.execute("PRAGMA journal_mode=WAL")
        await self._writer.execute(f"PRAGMA synchronous={self.synchronous}")
        await self._writer.execute("PRAGMA foreign_keys=ON")
        await self._writer.execute("PRAGMA busy_timeout=10000")
        await self._migrate([*CORE_MIGRATIONS, *migrations])
        self._reader = await aiosqlite.connect(self.path, isolation_level=None)
        await self._reader.execute("PRAGMA busy_timeout=10000")
        await self._reader.execute("PRAGMA query_only=ON")

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
        for conn in (self._reader, self._writer):
            if conn is not None:
                await conn.close()
        self._reader = self._writer = None

    async def _migrate(self, migrations: list[Migration]) -> None:
        db = self._writer
        assert db is not None
        await db.execute(
            "CREATE TABLE IF NOT EXISTS schema_meta (component TEXT PRIMARY KEY, version INTEGER NOT NULL)"
        )
        async with db.execute("SELECT component, version FROM schema_meta") as cur:
            current = {row[0]: row[1] async for row in cur}
        by_component: dict[str, list[Migration]] = defaultdict(list)
        for m in migrations:
            by_component[m.component].append(m)
        for component, steps in by_component.items():
            steps.sort(key=lambda m: m.version)
            versions = [m.version for m in steps]
            if len(set(versions)) != len(versions):
                raise StorageError(f"migrations of {component!r} repeat a version: {versions}")
            have = current.get(component, 0)
            for step in steps:
                if step.version <= have:
                    continue
                log.info("storage: migrating %s to version %d (%s)", component, step.version, step.description)
                try:
                    await db.execute("BEGIN IMMEDIATE")
                    for statement in _split_sql(step.sql):
                        await db.execute(statement)
                    await db.execute(
                        "INSERT INTO schema_meta (component, version) VALUES (?, ?) "
                        "ON CONFLICT (component) DO UPDATE SET version = excluded.version",
                        (component, step.version),
                    )
                    await db.execute("COMMIT")
                except Exception as exc:
                    await db.execute("ROLLBACK")
                    raise StorageError(
                        f"migration {component} v{step.version} failed: {exc}"
                    ) from exc
                have = step.version

    # -- the writer ------------------------------------------------------------------------

    async def run_writer(self, *, task_status: Any = anyio.TASK_STATUS_IGNORED) -> None:
        """The single writer loop.  Run it in the core's task group."""
        self.writer_alive = True
        task_status.started()
        try:
            await self._write_loop()
        finally:
            self.writer_alive = False

    async def _write_loop(self) -> None:
        async with self._recv:
            async for first in self._recv:
                batch = WriteBatch()
                execs: list[_Exec] = []
                self._add(batch, execs, first)
                while batch.size < self.batch_max:
                    try:
                        self._add(batch, execs, self._recv.receive_nowait())
                    except (anyio.WouldBlock, anyio.EndOfStream):
                        break
                await self._commit(batch)
                for ex in execs:
                    await self._run_exec(ex)

    def _add(self, batch: WriteBatch, execs: list[_Exec], op: Any) -> None:
        if isinstance(op, _Exec):
            execs.append(op)
            return
        for statement, rows in op.parts:
            batch.rows[statement].extend(rows)
            batch.size += len(rows)
        if op.on_durable is not None:
            batch.callbacks.append(op.on_durable)

    async def _commit(self, batch: WriteBatch) -> None:
        db = self._writer
        assert db is not None
        if not batch.size and not batch.callbacks:
            return
        started = time.perf_counter()
        while True:
            try:
                await db.execute("BEGIN IMMEDIATE")
                # State rows first: readings' touch statements update them.
                for statement in sorted(batch.rows, key=_statement_order):
                    await db.executemany(statement, batch.rows[statement])
                await db.execute("COMMIT")
                break
            except Exception as exc:
                # Disk full, read-only file, I/O error: nothing is acknowledged, nothing
                # dropped; retry the same batch until the store accepts it.
                self.write_errors += 1
                try:
                    await db.execute("ROLLBACK")
                except Exception:
                    pass
                if self.write_errors == 1 or self.write_errors % 20 == 0:
                    log.error("storage: commit failed (%s); retrying, nothing acknowledged", exc)
                await anyio.sleep(min(5.0, 0.1 * self.write_errors))
        self.commits += 1
        self.rows_written += batch.size
        self.last_commit_s = time.perf_counter() - started
        for callback in batch.callbacks:
            try:
                callback()
            except Exception:
                log.exception("storage: durable callback raised")

    async def _run_exec(self, ex: _Exec) -> None:
        db = self._writer
        assert db is not None
        try:
            await db.execute("BEGIN IMMEDIATE")
            if ex.many:
                cur = await db.executemany(ex.sql, ex.params)  # type: ignore[arg-type]
            else:
                cur = await db.execute(ex.sql, ex.params)  # type: ignore[arg-type]
            ex.result = cur.lastrowid
            await db.execute("COMMIT")
        except BaseException as exc:
            ex.error = exc
            try:
                await db.execute("ROLLBACK")
            except Exception:
                pass
        finally:
            ex.done.set()

    # -- write API -------------------------------------------------------------------------

    async def put(self, statement: str, rows: list[Sequence[Any]], on_durable: DurableCallback | None = None) -> None:
        """Queue rows for the next batch; waits if the writer is that far behind."""
        await self._send.send(_Op([(statement, rows)], on_durable))

    async def put_many(
        self, parts: list[tuple[str, list[Sequence[Any]]]], on_durable: DurableCallback | None = None
    ) -> None:
        """Queue rows of several statements that commit together or not at all."""
        await self._send.send(_Op(parts, on_durable))

    def put_nowait(self, statement: str, rows: list[Sequence[Any]], on_durable: DurableCallback | None = None) -> bool:
        try:
            self._send.send_nowait(_Op([(statement, rows)], on_durable))
            return True
        except anyio.WouldBlock:
            return False

    async def barrier(self) -> None:
        """Return once everything queued before this call is committed.

        Returns at once if the writer is not running (nothing queued could commit;
        shutdown paths must not wait forever on a writer that was cancelled).
        """
        if not self.writer_alive:
            return
        done = anyio.Event()
        await self._send.send(_Op([], done.set))
        await done.wait()

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        """Run one write statement through the writer, in order with queued batches."""
        ex = _Exec(sql, params, many=False)
        await self._send.send(ex)
        await ex.done.wait()
        if ex.error is not None:
            raise ex.error
        return ex.result

    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        ex = _Exec(sql, list(rows), many=True)
        await self._send.send(ex)
        await ex.done.wait()
        if ex.error is not None:
            raise ex.error

    async def log_event(self, event: Event, on_durable: DurableCallback | None = None) -> None:
        await self.put(SQL_EVENT, [event_row(event)], on_durable)

    async def quarantine(self, source: str, reason: str, payload: bytes) -> None:
        await self.put(SQL_QUARANTINE, [(time.time(), source, reason, payload)])

    # -- reads -----------------------------------------------------------------------------

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        assert self._reader is not None, "storage is not open"
        async with self._reader.execute(sql, params) as cur:
            return list(await cur.fetchall())

    async def fetchone(self, sql: str, params: Sequence[Any] = ()) -> tuple[Any, ...] | None:
        assert self._reader is not None, "storage is not open"
        async with self._reader.execute(sql, params) as cur:
            return await cur.fetchone()

    def metrics(self) -> dict[str, Any]:
        stats = self._send.statistics()
        return {
            "queue": stats.current_buffer_used,
            "queue_max": stats.max_buffer_size,
            "commits": self.commits,
            "rows_written": self.rows_written,
            "write_errors": self.write_errors,
            "last_commit_ms": round(self.last_commit_s * 1000, 3),
        }


_ORDER = {SQL_STATE: 0, SQL_READING: 1, SQL_TOUCH: 2}


def _statement_order(statement: str) -> int:
    return _ORDER.get(statement, 3)


def _split_sql(script: str) -> list[str]:
    """Split a migration script into statements, keeping trigger bodies whole."""
    statements: list[str] = []
    buf: list[str] = []
    for line in script.splitlines():
        stripped = line.split("--", 1)[0].rstrip()
        if not stripped.strip():
            continue
        buf.append(stripped)
        text = "\n".join(buf)
        if stripped.endswith(";") and _complete(text):
            statements.append(text)
            buf = []
    if "".join(buf).strip():
        statements.append("\n".join(buf))
    return statements


def _complete(text: str) -> bool:
    import sqlite3

    return sqlite3.complete_statement(text)
