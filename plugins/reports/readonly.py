"""A read-only ``StorageAPI`` over a site database file, for ``firebus report`` on the command line.

The CLI runs with or without the core: SQLite in WAL mode lets this connection
read the last committed state while the core writes.  Opened ``mode=ro``, so a
report can never change the database, and a missing file is an error instead
of a new empty database.
"""

from __future__ import annotations

import asyncio
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Iterable, Sequence

from firebus.sdk import Lane


class DatabaseError(Exception):
    """The database cannot be read as a firebus site database; the message is for the user."""


class ReadOnlyStorage:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._pool: ThreadPoolExecutor | None = None
        self._conn: sqlite3.Connection | None = None

    def _open(self) -> None:
        if not self.path.is_file():
            raise DatabaseError(f"no database at {self.path}")
        try:
            conn = sqlite3.connect(f"file:{self.path.resolve()}?mode=ro", uri=True, check_same_thread=False)
            conn.execute("PRAGMA busy_timeout=10000")
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type IN ('table', 'view')")}
        except sqlite3.DatabaseError as exc:
            raise DatabaseError(f"{self.path} is not a readable SQLite database: {exc}") from None
        missing = {"places", "devices", "points", "readings_1h", "readings_5m", "alarms"} - tables
        if missing:
            conn.close()
            raise DatabaseError(f"{self.path} is not a firebus site database (missing tables: {', '.join(sorted(missing))})")
        self._conn = conn

    async def __aenter__(self) -> "ReadOnlyStorage":
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="firebus-report-db")
        await asyncio.get_running_loop().run_in_executor(self._pool, self._open)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    async def _run(self, fn: Any, *args: Any) -> Any:
        assert self._pool is not None and self._conn is not None, "database is not open"
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return await self._run(lambda: self._conn.execute(sql, params).fetchall())

    async def fetchone(self, sql: str, params: Sequence[Any] = ()) -> tuple[Any, ...] | None:
        return await self._run(lambda: self._conn.execute(sql, params).fetchone())

    async def fetch_batch(self, statements: Sequence[tuple[str, Sequence[Any]]]) -> list[list[tuple[Any, ...]]]:
        return await self._run(lambda: [self._conn.execute(sql, params).fetchall() for sql, params in statements])

    async def execute(self, sql: str, params: Sequence[Any] = (), *, lane: Lane = Lane.TELEMETRY) -> Any:
        raise DatabaseError("reports open the database read-only")

    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]], *, lane: Lane = Lane.TELEMETRY) -> None:
        raise DatabaseError("reports open the database read-only")
