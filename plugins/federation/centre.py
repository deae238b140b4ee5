"""The centre side: JetStream durable pull consumers → PostgreSQL.

One consumer per lane (``centre-alarm`` on ``firebus.*.journal.alarm``,
``centre-telemetry`` on ``firebus.*.journal.telemetry``), each with its own
PostgreSQL connection, so a fire alarm never waits behind a batch of readings —
neither in the stream nor in a transaction.  A batch is copied (``COPY``) into a
temporary table and moved into the tables by one statement (``schema.INGEST``);
JetStream is acknowledged (ack-all: the batch's last message) only after COMMIT,
so a crash between the two redelivers the batch, and the keys absorb it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from typing import Any, Callable, Sequence

import msgspec

from . import envelope, schema

log = logging.getLogger("firebus.plugin.federation.centre")


class CentreConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    pg: str  # libpq DSN or URL
    nats: list[str]
    stream: str = "FIREBUS"
    credentials: str | None = None
    alarm_batch: int = 200
    telemetry_batch: int = 5000
    fetch_timeout_s: float = 1.0
    days_ahead: int = 2  # telemetry partitions created ahead of today (UTC days)
    days_back: int = 1  # … and behind it at start
    late_window_days: int = 35  # a batch older than this goes to telemetry_default
    max_age_s: float = 7 * 86400  # the stream keeps an unread message this long
    max_bytes: int = -1  # … and at most this many bytes (-1: no limit)
    duplicate_window_s: float = 120.0  # JetStream drops a re-sent Nats-Msg-Id inside this window
    # A batch delivered but not acknowledged (a centre killed mid-batch) comes again after this;
    # it bounds how long a restarted centre waits for the batch its predecessor held.
    ack_wait_s: float = 10.0


LANES = ("alarm", "telemetry")


def _esc(b: bytes) -> bytes:
    """A value for COPY text format (backslash, tab, newline, CR escaped)."""
    if b"\\" in b:
        b = b.replace(b"\\", b"\\\\")
    if b"\t" in b or b"\n" in b or b"\r" in b:
        b = b.replace(b"\t", b"\\t").replace(b"\n", b"\\n").replace(b"\r", b"\\r")
    return b


def copy_lines(entries: Sequence[envelope.Incoming]) -> bytes:
    out = []
    for e in entries:
        subject = b"\\N" if e.subject is None else _esc(e.subject.encode())
        out.append(b"\t".join((
            _esc(e.site_id.encode()), str(e.seq).encode(), repr(e.ts).encode(), _esc(e.lane.encode()),
            _esc(e.type.encode()), subject, _esc(bytes(e.context)), _esc(bytes(e.data)),
        )))
    out.append(b"")
    return b"\n".join(out)


class Centre:
    def __init__(self, cfg: CentreConfig) -> None:
        self.cfg = cfg
        self.nc: Any = None
        self.js: Any = None
        self.ingested = {lane: 0 for lane in LANES}
        self.batches = {lane: 0 for lane in LANES}
        self.rows = {"journal": 0, "telemetry": 0, "latest_state": 0, "alarms": 0}
        self.quarantined = 0
        self.errors = 0
        self.last_error = ""
        self.ready = asyncio.Event()
        self._parts: set[dt.date] = set()
        self._default_days: set[dt.date] = set()
        #: called after each COMMIT with (lane, entries) — the bench measures latency here
        self.on_commit: Callable[[str, list[envelope.Incoming]], None] | None = None

    # -- set-up ------------------------------------------------------------------------------

    async def _connect_nats(self) -> None:
        import nats

        async def error(exc: Exception) -> None:
            self._error(exc)

        kwargs: dict[str, Any] = {}
        if self.cfg.credentials:
            kwargs["user_credentials"] = self.cfg.credentials
        self.nc = await nats.connect(servers=list(self.cfg.nats), name="firebus-centre", connect_timeout=2,
                                     allow_reconnect=True, max_reconnect_attempts=-1, reconnect_time_wait=0.5,
                                     error_cb=error, **kwargs)
        self.js = self.nc.jetstream(timeout=10)
        await self.ensure_stream()

    async def ensure_stream(self) -> None:
        from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig
        from nats.js.errors import NotFoundError

        config = StreamConfig(
            name=self.cfg.stream, subjects=envelope.stream_subjects(), storage=StorageType.FILE,
            # Limits, not a work queue: the stream doubles as a replay buffer (a second
            # centre, a rebuilt database) for max_age, and the consumers can ack-all
            # (one acknowledgement per batch; a work queue demands one per message).
            retention=RetentionPolicy.LIMITS, discard=DiscardPolicy.OLD,
            max_age=self.cfg.max_age_s, max_bytes=self.cfg.max_bytes,
            duplicate_window=self.cfg.duplicate_window_s,
        )
        try:
            await self.js.stream_info(self.cfg.stream)
        except NotFoundError:
            await self.js.add_stream(config)
        else:
            await self.js.update_stream(config)

    async def _connect_pg(self) -> Any:
        import psycopg

        conn = await psycopg.AsyncConnection.connect(self.cfg.pg, autocommit=False)
        async with conn.transaction():
            await conn.execute(schema.STAGE)
        return conn

    async def migrate(self) -> None:
        import psycopg

        async with await psycopg.AsyncConnection.connect(self.cfg.pg, autocommit=True) as conn:
            await conn.execute("SELECT pg_advisory_lock(727001)")  # several centres start at once
            try:
                await conn.execute(schema.DDL)
                await conn.execute(
                    "CREATE TABLE IF NOT EXISTS fed_quarantine (id bigserial PRIMARY KEY, subject text, "
                    "body bytea, reason text, received timestamptz NOT NULL DEFAULT now())")
                today = dt.datetime.now(dt.timezone.utc).date()
                for n in range(-self.cfg.days_back, self.cfg.days_ahead + 1):
                    await self._ensure_partition(conn, today + dt.timedelta(days=n))
            finally:
                await conn.execute("SELECT pg_advisory_unlock(727001)")

    async def _ensure_partition(self, conn: Any, day: dt.date) -> None:
        if day in self._parts or day in self._default_days:
            return
        import psycopg

        try:
            if conn.autocommit:
                await conn.execute(schema.partition_ddl(day))
            else:
                async with conn.transaction():  # a savepoint: a refusal must not abort the batch
                    await conn.execute(schema.partition_ddl(day))
            self._parts.add(day)
        except psycopg.errors.CheckViolation:
            # telemetry_default already holds rows of that day: they stay there.
            log.warning("federation centre: no partition for %s (rows of that day are in telemetry_default)", day)
            self._default_days.add(day)

    # -- running -----------------------------------------------------------------------------

    async def run(self) -> None:
        delay = 0.2
        while True:
            try:
                await self.migrate()
                break
            except Exception as exc:
                self._error(exc)
                await asyncio.sleep(delay)
                delay = min(2 * delay, 5.0)
        while True:
            try:
                await self._connect_nats()
                subs = [await self._subscribe(lane) for lane in LANES]
                break
            except Exception as exc:
                self._error(exc)
                if self.nc is not None:
                    await self.nc.close()
                    self.nc = None
                await asyncio.sleep(delay)
                delay = min(2 * delay, 5.0)
        try:
            async with asyncio.TaskGroup() as tg:
                for lane, sub in zip(LANES, subs):
                    tg.create_task(self._lane(lane, sub), name=f"centre:{lane}")
                tg.create_task(self._partitions(), name="centre:partitions")
                self.ready.set()
        finally:
            nc, self.nc = self.nc, None
            if nc is not None:
                try:
                    await asyncio.wait_for(nc.close(), 2)
                except Exception:
                    pass

    async def _subscribe(self, lane: str) -> Any:
        from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

        batch = self.cfg.alarm_batch if lane == "alarm" else self.cfg.telemetry_batch
        config = ConsumerConfig(
            durable_name=f"centre-{lane}", ack_policy=AckPolicy.ALL, deliver_policy=DeliverPolicy.ALL,
            filter_subject=envelope.subject("*", lane), ack_wait=self.cfg.ack_wait_s, max_deliver=-1,
            max_ack_pending=max(4 * batch, 20_000), max_waiting=16,
        )
        try:  # create, or update the editable fields of an existing durable (ack_wait …)
            await self.js.add_consumer(self.cfg.stream, config)
        except Exception as exc:
            log.warning("federation centre: consumer centre-%s kept as it is: %s", lane, exc)
        return await self.js.pull_subscribe(envelope.subject("*", lane), durable=f"centre-{lane}",
                                            stream=self.cfg.stream, config=config, pending_msgs_limit=0)

    async def _lane(self, lane: str, sub: Any) -> None:
        import nats.errors

        batch = self.cfg.alarm_batch if lane == "alarm" else self.cfg.telemetry_batch
        conn = None
        while True:
            try:
                if conn is None or conn.closed or conn.broken:
                    conn = await self._connect_pg()
                try:
                    msgs = await sub.fetch(batch, timeout=self.cfg.fetch_timeout_s)
                except (nats.errors.TimeoutError, asyncio.TimeoutError):
                    continue
                if not msgs:
                    continue
                await self._ingest(conn, lane, msgs)
                await msgs[-1].ack()  # ack-all: every message of the batch, after COMMIT
            except asyncio.CancelledError:
                if conn is not None:
                    await conn.close()
                raise
            except Exception as exc:
                self._error(exc)
                log.debug("federation centre: %s lane", lane, exc_info=True)
                await asyncio.sleep(0.5)

    async def _ingest(self, conn: Any, lane: str, msgs: list[Any]) -> None:
        entries: list[envelope.Incoming] = []
        bad: list[tuple[str, bytes, str]] = []
        for m in msgs:
            try:
                entries.append(envelope.decode(m.data))
            except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                bad.append((m.subject, m.data, str(exc)))
        days = {schema.day_of(e.ts) for e in entries}
        today = dt.datetime.now(dt.timezone.utc).date()
        async with conn.transaction():
            for day in days - self._parts:
                if -self.cfg.late_window_days <= (day - today).days <= self.cfg.days_ahead:
                    await self._ensure_partition(conn, day)
            if entries:
                async with conn.cursor() as cur:
                    async with cur.copy(schema.COPY_STAGE) as copy:
                        await copy.write(copy_lines(entries))
                    await cur.execute(schema.INGEST)
                    counts = await cur.fetchone()
                for key, n in zip(("journal", "telemetry", "latest_state", "alarms"), counts or ()):
                    self.rows[key] += int(n)
            if bad:
                async with conn.cursor() as cur:
                    await cur.executemany("INSERT INTO fed_quarantine (subject, body, reason) VALUES (%s, %s, %s)",
                                          bad)
                self.quarantined += len(bad)
                log.warning("federation centre: %d undecodable message(s) kept in fed_quarantine", len(bad))
        self.ingested[lane] += len(entries)
        self.batches[lane] += 1
        if self.on_commit is not None:
            self.on_commit(lane, entries)

    async def _partitions(self) -> None:
        """Keep ``days_ahead`` partitions ready (a new day needs none created on the hot path)."""
        while True:
            await asyncio.sleep(3600)
            try:
                import psycopg

                async with await psycopg.AsyncConnection.connect(self.cfg.pg, autocommit=True) as conn:
                    today = dt.datetime.now(dt.timezone.utc).date()
                    for n in range(self.cfg.days_ahead + 1):
                        await self._ensure_partition(conn, today + dt.timedelta(days=n))
            except Exception as exc:
                self._error(exc)

    def _error(self, exc: BaseException) -> None:
        self.errors += 1
        text = f"{type(exc).__name__}: {exc}"
        if text != self.last_error:
            log.warning("federation centre: %s", text)
        self.last_error = text

    def metrics(self) -> dict[str, Any]:
        return {"ingested": dict(self.ingested), "batches": dict(self.batches), "rows": dict(self.rows),
                "quarantined": self.quarantined, "errors": self.errors, "last_error": self.last_error,
                "time": time.time()}
