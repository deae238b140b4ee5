"""Reads on connections of their own, in threads of their own.

In WAL mode a reader sees the last committed state and never waits for the
writer, so the panel and API stay fast at full ingest (no read goes through
the writer's queue).  Each pool thread keeps one connection.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Sequence


class ReaderPool:
    def __init__(self, path: str, workers: int = 2, cache_kib: int = 4096) -> None:
        self.path = path
        self.cache_kib = cache_kib
        self._local = threading.local()
        self._conns: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="firebus-reader")
        self.queries = 0

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA busy_timeout=10000")
            conn.execute("PRAGMA query_only=ON")
            conn.execute(f"PRAGMA cache_size=-{self.cache_kib}")
            self._local.conn = conn
            with self._lock:
                self._conns.append(conn)
        return conn

    def _fetchall(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        return self._conn().execute(sql, params).fetchall()

    def _fetchone(self, sql: str, params: Sequence[Any]) -> tuple[Any, ...] | None:
        return self._conn().execute(sql, params).fetchone()

    def _fetch_batch(self, statements: Sequence[tuple[str, Sequence[Any]]]) -> list[list[tuple[Any, ...]]]:
        conn = self._conn()
        conn.execute("BEGIN")  # one snapshot for all of them
        try:
            return [conn.execute(sql, params).fetchall() for sql, params in statements]
        finally:
            conn.execute("COMMIT")

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        self.queries += 1
        return await asyncio.get_running_loop().run_in_executor(self._pool, self._fetchall, sql, params)

    async def fetchone(self, sql: str, params: Sequence[Any] = ()) -> tuple[Any, ...] | None:
        self.queries += 1
        return await asyncio.get_running_loop().run_in_executor(self._pool, self._fetchone, sql, params)

    async def fetch_batch(self, statements: Sequence[tuple[str, Sequence[Any]]]) -> list[list[tuple[Any, ...]]]:
        """Several reads in one hand-over to a reader thread, from one snapshot.

        At full ingest the loop took 20-80 ms to pick up each finished read for 0.1 ms of
        SQL (bench/ingest.py, 2026-12-03): a request pays per hand-over, not per query.
        """
        self.queries += len(statements)
        return await asyncio.get_running_loop().run_in_executor(self._pool, self._fetch_batch, statements)

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        with self._lock:
            for conn in self._conns:
                try:
                    conn.close()
                except sqlite3.Error:
                    pass
            self._conns.clear()


class Checkpointer:
    """Copies the WAL back into the database in its own thread (PASSIVE: never blocks the writer).

    The writer runs with ``wal_autocheckpoint=0`` so that no alarm's commit ever
    pays for a checkpoint.
    """

    def __init__(self, path: str, interval: float = 1.0) -> None:
        self.path = path
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="firebus-checkpoint", daemon=True)
        self.runs = 0
        self.last_error = ""

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA busy_timeout=1000")
        try:
            while not self._stop.wait(self.interval):
                try:
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                    self.runs += 1
                except sqlite3.Error as exc:  # a full disk: the writer reports it; try again later
                    self.last_error = str(exc)
        finally:
            conn.close()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5)
