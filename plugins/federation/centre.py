"""The centre side: JetStream durable pull consumers → PostgreSQL.

One consumer per lane (``centre-alarm`` on ``firebus.*.journal.alarm``,
``centre-telemetry`` on ``firebus.*.journal.telemetry``), each with its own
PostgreSQL connection, so a fire alarm never waits behind a batch of readings —
neither in the stream, nor in a socket (the telemetry lane has a NATS connection of its
own), nor in a transaction.  State changes are ``COPY``'d straight into ``telemetry`` and one
row per point into a staging table for the ``latest_state`` upsert; other entries are copied
into a staging table and moved on by statements of ``schema``;
JetStream is acknowledged (each message of the batch) only after COMMIT,
so a crash between the two redelivers the batch, and the keys absorb it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from typing import Any, Callable

import msgspec

from . import commands, envelope, schema
from .desk import CommandDesk

log = logging.getLogger("firebus.plugin.federation.centre")


class CentreConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    pg: str  # libpq DSN or URL
    nats: list[str]
    stream: str = "FIREBUS"
    credentials: str | None = None
    alarm_batch: int = 200
    telemetry_batch: int = 10_000
    telemetry_writers: int = 1  # PostgreSQL sessions committing telemetry batches side by side
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
    command_stream: str = "FIREBUS_CMD"  # centre → site commands and the sites' answers
    command_expiry_s: float = 24 * 3600.0  # a site refuses a command older than this ("expired")
    resend_every_s: float = 5.0  # a command not yet in JetStream is published again this often
    http: str | None = None  # "host:port" of the commands API (None: no HTTP server)


LANES = ("alarm", "telemetry")


def _esc(b: bytes) -> bytes:
    """A value for COPY text format (backslash, tab, newline, CR escaped)."""
    if b"\\" in b:
        b = b.replace(b"\\", b"\\\\")
    if b"\t" in b or b"\n" in b or b"\r" in b:
        b = b.replace(b"\t", b"\\t").replace(b"\n", b"\\n").replace(b"\r", b"\\r")
    return b


_NULL = b"\\N"


class _StateEntry(msgspec.Struct):
    """A ``StateChanged`` entry decoded in one pass (the telemetry lane's hot path); the same
    attributes as ``envelope.Incoming`` but ``data`` typed.  Anything else — or a body this does
    not fit — goes through ``envelope.decode`` as before."""

    site_id: str
    seq: int
    ts: float
    lane: str
    type: str
    data: envelope.StateData
    subject: str | None = None
    context: msgspec.Raw = msgspec.Raw(b"{}")


_state_entry = msgspec.json.Decoder(_StateEntry)


class Prepared:
    """A fetched batch, decoded and rendered as COPY text, ready for a transaction.

    ``telemetry``: one line per state change, for ``COPY telemetry``; ``latest``: one line per
    point (the highest seq of the batch, late readings left out), in key order, for the staging
    table ``LATEST_FROM_STAGE`` upserts from; ``events``: every other entry."""

    __slots__ = ("msgs", "entries", "telemetry", "n_state", "latest", "events", "bad", "days",
                 "_telemetry", "_latest", "_events", "_days")

    def __init__(self, msgs: list[Any]) -> None:
        self.msgs = msgs
        self.entries: list[Any] = []  # envelope.Incoming or _StateEntry
        self.bad: list[tuple[str, bytes, str]] = []
        self._telemetry: list[bytes] = []
        self._latest: dict[tuple[str, str], tuple[int, bytes]] = {}
        self._events: list[bytes] = []
        self._days: set[int] = set()

    @classmethod
    async def build(cls, msgs: list[Any], step: int = 500) -> "Prepared":
        """Decode in slices, yielding to the event loop between them: the alarm lane's
        fetch and commit run in the same loop and must not wait for a big telemetry batch."""
        prepared = cls(msgs)
        for i in range(0, len(msgs), step):
            prepared.add(msgs[i:i + step])
            await asyncio.sleep(0)
        prepared.finish()
        return prepared

    def add(self, msgs: list[Any]) -> None:
        telemetry, latest, events, days = self._telemetry, self._latest, self._events, self._days
        entries = self.entries
        enc = _json.encode
        for m in msgs:
            body = m.data
            try:
                try:
                    e: Any = _state_entry.decode(body)
                    d = e.data
                    if e.type != "StateChanged":
                        raise TypeError
                except (msgspec.DecodeError, msgspec.ValidationError, TypeError):
                    e = envelope.decode(body)
                    if e.type == "StateChanged":
                        d = envelope.decode_state(e.data)
                    else:
                        events.append(b"\t".join((
                            _esc(e.site_id.encode()), str(e.seq).encode(), repr(e.ts).encode(),
                            _esc(e.lane.encode()), _esc(e.type.encode()),
                            _NULL if e.subject is None else _esc(e.subject.encode()),
                            _esc(bytes(e.context)), _esc(bytes(e.data)),
                        )))
                        entries.append(e)
                        days.add(_micros(e.ts) // 86_400_000_000)
                        continue
            except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                self.bad.append((m.subject, m.data, str(exc)))
                continue
            v = d.new_value
            if v is None:
                num = val = _NULL
            elif type(v) is float or type(v) is int:
                num, val = repr(float(v)).encode(), _NULL
            else:
                num, val = _NULL, enc(v)
            fault = _NULL if d.fault is None else d.fault.encode()
            site, point, device, lane = e.site_id.encode(), d.point_id.encode(), d.device_id.encode(), e.lane.encode()
            key, cls_ = d.point_key.encode(), d.point_class.encode()
            if b"\\" in body:  # JSON escapes: a string may hold a backslash, tab or newline
                site, point, device, lane, key, cls_ = (_esc(site), _esc(point), _esc(device), _esc(lane),
                                                        _esc(key), _esc(cls_))
                if val is not _NULL:
                    val = _esc(val)
                if fault is not _NULL:
                    fault = _esc(fault)
            seq = e.seq
            vts = _iso(d.ts)
            telemetry.append(b"%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s" % (
                site, seq, _iso(e.ts), point, device, vts, num, val, fault, b"t" if d.late else b"f", lane))
            if not d.late:
                k = (e.site_id, d.point_id)
                had = latest.get(k)
                if had is None or had[0] < seq:
                    latest[k] = (seq, b"%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d" % (
                        site, point, device, key, cls_, num, val, fault, vts, seq))
            entries.append(e)
            days.add(_micros(e.ts) // 86_400_000_000)

    def finish(self) -> None:
        telemetry, latest, events, days = self._telemetry, self._latest, self._events, self._days
        self.telemetry = b"\n".join(telemetry) + b"\n" if telemetry else b""
        self.n_state = len(telemetry)
        # key order: two writer sessions upserting overlapping points lock them in the same order
        self.latest = b"\n".join([latest[k][1] for k in sorted(latest)]) + b"\n" if latest else b""
        self.events = b"\n".join(events) + b"\n" if events else b""
        self.days = {dt.date(1970, 1, 1) + dt.timedelta(days=d) for d in days}


_json = msgspec.json.Encoder()
_seconds: dict[int, str] = {}


# PostgreSQL's epoch, in Unix seconds: to_timestamp(float8) rounds in its own epoch.
_PG_EPOCH = 946_684_800


def _micros(ts: float) -> int:
    """Epoch seconds → Unix microseconds exactly as PostgreSQL's ``to_timestamp(float8)`` makes them.

    A redelivered batch goes through ``TELEMETRY_FROM_STAGE`` (``to_timestamp`` of the staged
    float) while the first copy came through COPY text from here; ``ts`` is part of the key, so
    the two must agree to the microsecond or the redelivery is stored twice.
    """
    return round((ts - _PG_EPOCH) * 1e6) + _PG_EPOCH * 1_000_000  # round() is rint's half-even


def _iso(ts: float) -> bytes:
    """Epoch seconds → timestamptz text for COPY (UTC, microseconds); the second's text is cached."""
    whole, us = divmod(_micros(ts), 1_000_000)
    prefix = _seconds.get(whole)
    if prefix is None:
        if len(_seconds) > 100_000:
            _seconds.clear()
        prefix = _seconds[whole] = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(whole))
    return f"{prefix}.{us:06d}+00".encode()


class Centre:
    def __init__(self, cfg: CentreConfig) -> None:
        self.cfg = cfg
        self.nc: Any = None
        #: the telemetry lane's own NATS connection: a fire alarm is not read from a socket
        #: behind megabytes of readings (one TCP stream delivers in order)
        self.nc_telemetry: Any = None
        self.js: Any = None
        self.ingested = {lane: 0 for lane in LANES}
        self.batches = {lane: 0 for lane in LANES}
        self.rows = {"journal": 0, "telemetry": 0, "latest_state": 0, "alarms": 0}
        self.quarantined = 0
        self.redelivered_batches = 0  # batches holding an entry already stored (the slow, skipping path)
        #: wall time per lane and step (the steps of one lane overlap: fetch and decode run while a
        #: writer waits for PostgreSQL)
        self.seconds = {lane: dict.fromkeys(("fetch", "decode", "copy", "latest", "statement", "commit", "ack"), 0.0)
                        for lane in LANES}
        self.errors = 0
        self.last_error = ""
        self.ready = asyncio.Event()
        self._parts: set[dt.date] = set()
        self._default_days: set[dt.date] = set()
        #: called after each COMMIT with (lane, entries) — the bench measures latency here
        self.on_commit: Callable[[str, list[envelope.Incoming]], None] | None = None
        self.http_server: Any = None
        self.desk = CommandDesk(cfg.pg, command_stream=cfg.command_stream, expiry_s=cfg.command_expiry_s,
                                resend_every_s=cfg.resend_every_s)

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
        self.nc_telemetry = await nats.connect(servers=list(self.cfg.nats), name="firebus-centre-telemetry",
                                               connect_timeout=2, allow_reconnect=True, max_reconnect_attempts=-1,
                                               reconnect_time_wait=0.5, error_cb=error, **kwargs)
        self.js = self.nc.jetstream(timeout=10)
        await self.ensure_stream()

    async def ensure_stream(self) -> None:
        from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig
        from nats.js.errors import NotFoundError

        config = StreamConfig(
            name=self.cfg.stream, subjects=envelope.stream_subjects(), storage=StorageType.FILE,
            # Limits, not a work queue: the stream doubles as a replay buffer for max_age
            # (a second centre, a database rebuilt from it).
            retention=RetentionPolicy.LIMITS, discard=DiscardPolicy.OLD,
            max_age=self.cfg.max_age_s, max_bytes=self.cfg.max_bytes,
            duplicate_window=self.cfg.duplicate_window_s,
        )
        # Commands and answers: a stream of their own, so the journal consumers never see them.
        cmd_config = StreamConfig(
            name=self.cfg.command_stream, subjects=commands.stream_subjects(), storage=StorageType.FILE,
            retention=RetentionPolicy.LIMITS, discard=DiscardPolicy.OLD, max_age=self.cfg.max_age_s,
            duplicate_window=self.cfg.duplicate_window_s,
        )
        for cfg in (config, cmd_config):
            try:
                await self.js.stream_info(cfg.name)
            except NotFoundError:
                await self.js.add_stream(cfg)
            else:
                await self.js.update_stream(cfg)

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
                await conn.execute(schema.COMMANDS_DDL)
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
                results = await self.desk.subscribe_results(self.js)
                break
            except Exception as exc:
                self._error(exc)
                for nc in (self.nc, self.nc_telemetry):
                    if nc is not None:
                        await nc.close()
                self.nc = self.nc_telemetry = None
                await asyncio.sleep(delay)
                delay = min(2 * delay, 5.0)
        try:
            async with asyncio.TaskGroup() as tg:
                for lane, sub in zip(LANES, subs):
                    tg.create_task(self._lane(lane, sub), name=f"centre:{lane}")
                tg.create_task(self._partitions(), name="centre:partitions")
                self.desk.js, self.desk.nc = self.js, self.nc
                tg.create_task(self.desk.results_loop(results), name="centre:command-results")
                tg.create_task(self.desk.resend_loop(), name="centre:command-resend")
                if self.cfg.http:
                    tg.create_task(self._serve_http(self.cfg.http), name="centre:http")
                self.ready.set()
        finally:
            self.desk.js = self.desk.nc = None
            await self.desk.close()
            ncs, self.nc, self.nc_telemetry = (self.nc, self.nc_telemetry), None, None
            for nc in ncs:
                if nc is not None:
                    try:
                        await asyncio.wait_for(nc.close(), 2)
                    except Exception:
                        pass

    async def _subscribe(self, lane: str) -> "_Pull":
        from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

        batch = self.cfg.alarm_batch if lane == "alarm" else self.cfg.telemetry_batch
        durable = f"centre-{lane}"
        config = ConsumerConfig(
            # Explicit, not ack-all: after a restart the new centre receives messages it has never
            # seen before the redelivery of those its predecessor held; an ack-all of the newer
            # ones would acknowledge the older ones unstored (tests/federation caught exactly that).
            durable_name=durable, ack_policy=AckPolicy.EXPLICIT, deliver_policy=DeliverPolicy.ALL,
            filter_subject=envelope.subject("*", lane), ack_wait=self.cfg.ack_wait_s, max_deliver=-1,
            max_ack_pending=max(4 * batch, 20_000), max_waiting=16,
        )
        try:  # create, or update the editable fields of an existing durable (ack_wait …)
            await self.js.add_consumer(self.cfg.stream, config)
        except Exception as exc:
            log.warning("federation centre: consumer %s kept as it is: %s", durable, exc)
            await self.js.consumer_info(self.cfg.stream, durable)  # it must exist
        pull = _Pull(self.nc if lane == "alarm" else self.nc_telemetry, self.cfg.stream, durable)
        await pull.start()
        return pull

    async def _lane(self, lane: str, sub: "_Pull") -> None:
        """Fetch and decode the next batch (this task) while earlier ones commit (the writers):
        Python's work and PostgreSQL's overlap.  Telemetry batches commit in parallel sessions
        (acks are per message, so their order does not matter; latest_state only moves to a
        higher seq, and its rows are upserted in key order, so two sessions do not deadlock)."""
        batch = self.cfg.alarm_batch if lane == "alarm" else self.cfg.telemetry_batch
        writers = 1 if lane == "alarm" else max(1, self.cfg.telemetry_writers)
        ready: asyncio.Queue[Prepared] = asyncio.Queue(maxsize=writers + 1)
        seconds = self.seconds[lane]
        tasks = [asyncio.create_task(self._writer(lane, ready), name=f"centre:{lane}:writer{i}")
                 for i in range(writers)]
        try:
            while True:
                t0 = time.perf_counter()
                try:
                    msgs = await sub.fetch(batch, timeout=self.cfg.fetch_timeout_s)
                except Exception as exc:  # the link went away: nats-py reconnects
                    self._error(exc)
                    await asyncio.sleep(0.5)
                    continue
                finally:
                    seconds["fetch"] += time.perf_counter() - t0
                if not msgs:
                    continue
                t0 = time.perf_counter()
                prepared = await Prepared.build(msgs)
                seconds["decode"] += time.perf_counter() - t0
                await ready.put(prepared)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _writer(self, lane: str, ready: "asyncio.Queue[Prepared]") -> None:
        conn = None
        try:
            while True:
                prepared = await ready.get()
                while True:  # the same batch until it commits: nothing is acknowledged before
                    try:
                        if conn is None or conn.closed or conn.broken:
                            conn = await self._connect_pg()
                        await self._ingest(conn, lane, prepared)
                        break
                    except asyncio.CancelledError:
                        raise
                    except Exception as exc:
                        self._error(exc)
                        log.debug("federation centre: %s lane", lane, exc_info=True)
                        await asyncio.sleep(0.5)
                t0 = time.perf_counter()
                try:
                    for m in prepared.msgs:  # every message of the batch, after COMMIT
                        await m.ack()
                except Exception as exc:  # not acknowledged: redelivered after ack_wait, absorbed by the keys
                    self._error(exc)
                self.seconds[lane]["ack"] += time.perf_counter() - t0
        finally:
            if conn is not None:
                try:
                    await conn.close()
                except Exception:
                    pass

    async def _ingest(self, conn: Any, lane: str, prepared: Prepared) -> None:
        import psycopg

        clock = time.perf_counter
        seconds = self.seconds[lane]
        today = dt.datetime.now(dt.timezone.utc).date()
        t1 = clock()
        counts: list[int] = [0, 0, 0, 0]
        async with conn.transaction():
            for day in prepared.days - self._parts:
                if -self.cfg.late_window_days <= (day - today).days <= self.cfg.days_ahead:
                    await self._ensure_partition(conn, day)
            async with conn.cursor() as cur:
                if prepared.telemetry:
                    try:
                        async with conn.transaction():  # a savepoint: a duplicate fails only this
                            async with cur.copy(schema.COPY_TELEMETRY) as copy:
                                await copy.write(prepared.telemetry)
                        counts[1] += prepared.n_state
                    except psycopg.errors.UniqueViolation:
                        self.redelivered_batches += 1
                        async with cur.copy(schema.COPY_STAGE_TELEMETRY) as copy:
                            await copy.write(prepared.telemetry)
                        await cur.execute(schema.TELEMETRY_FROM_STAGE)
                        counts[1] += max(0, cur.rowcount)
                    t2 = clock()
                    seconds["copy"] += t2 - t1
                    if prepared.latest:
                        async with cur.copy(schema.COPY_STAGE_LATEST) as copy:
                            await copy.write(prepared.latest)
                        await cur.execute(schema.LATEST_FROM_STAGE)
                        counts[2] += max(0, cur.rowcount)
                    t1 = clock()
                    seconds["latest"] += t1 - t2
                if prepared.events:
                    async with cur.copy(schema.COPY_STAGE) as copy:
                        await copy.write(prepared.events)
                    t2 = clock()
                    seconds["copy"] += t2 - t1
                    await cur.execute(schema.INGEST_EVENTS)
                    row = await cur.fetchone()
                    counts = [a + int(b) for a, b in zip(counts, row or (0, 0, 0, 0))]
                    t1 = clock()
                    seconds["statement"] += t1 - t2
                if prepared.bad:
                    await cur.executemany("INSERT INTO fed_quarantine (subject, body, reason) VALUES (%s, %s, %s)",
                                          prepared.bad)
            t1 = clock()
        seconds["commit"] += clock() - t1
        for key, n in zip(("journal", "telemetry", "latest_state", "alarms"), counts):
            self.rows[key] += n
        if prepared.bad:
            self.quarantined += len(prepared.bad)
            log.warning("federation centre: %d undecodable message(s) kept in fed_quarantine", len(prepared.bad))
        self.ingested[lane] += len(prepared.entries)
        self.batches[lane] += 1
        if self.on_commit is not None:
            self.on_commit(lane, prepared.entries)

    async def _serve_http(self, where: str) -> None:
        import contextlib

        import uvicorn

        from .api import create_app

        class Server(uvicorn.Server):
            @contextlib.contextmanager
            def capture_signals(self) -> Any:  # the CLI owns SIGINT/SIGTERM (it cancels the centre)
                yield

        host, _, port = where.rpartition(":")
        self.http_server = Server(uvicorn.Config(create_app(self.desk), host=host or "127.0.0.1", port=int(port),
                                                 log_level="warning", lifespan="off"))
        await self.http_server.serve()

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
                "quarantined": self.quarantined, "redelivered_batches": self.redelivered_batches,
                "seconds": {lane: {k: round(v, 3) for k, v in s.items()} for lane, s in self.seconds.items()}, "errors": self.errors, "last_error": self.last_error,
                "commands": self.desk.metrics(), "time": time.time()}


class _Pull:
    """A durable pull consumer read through pull requests of our own, delivered to a callback
    subscription on an inbox.  nats-py's ``fetch`` makes a task and a ``wait_for`` for every
    message (about 30 µs each, most of the centre's time on a backlog); here a message costs
    the client's parse and one append.  Only public nats-py calls: ``publish`` of the request
    (JetStream's ``CONSUMER.MSG.NEXT`` API) with the inbox as reply, ``subscribe`` with ``cb``.

    A fetch asks for what is there now (``no_wait``: the server sends the messages it has, then
    404 if it ran short); with nothing there it waits up to ``timeout`` for one message
    (``expires``: the server ends the request with 408) and returns it at once — a fire alarm
    does not wait for another round trip (the next fetch asks for what came behind it).  A
    message arriving after a fetch gave up waiting is kept for the next one (it was delivered:
    JetStream redelivers it after ``ack_wait`` only if it is never acknowledged)."""

    _ENDS = ("404", "408")  # no messages / request expired: the request is over, nothing wrong

    def __init__(self, nc: Any, stream: str, durable: str) -> None:
        self.nc = nc
        self.next_subject = f"$JS.API.CONSUMER.MSG.NEXT.{stream}.{durable}"
        self.inbox = nc.new_inbox()
        self.buf: list[Any] = []
        self.want = 0
        self.status: tuple[str, str] | None = None
        self.wake = asyncio.Event()
        self.sub: Any = None

    async def start(self) -> None:
        self.sub = await self.nc.subscribe(self.inbox, cb=self._on_msg)

    async def _on_msg(self, msg: Any) -> None:
        h = msg.headers
        if h and "Status" in h and not msg.data:
            code = h["Status"]
            if code != "100":  # 100: a heartbeat (not asked for)
                self.status = (code, h.get("Description", ""))
                self.wake.set()
            return
        self.buf.append(msg)
        if len(self.buf) >= self.want:
            self.wake.set()

    async def _request(self, req: dict[str, Any], want: int, timeout: float) -> None:
        self.want, self.status = want, None
        self.wake.clear()
        await self.nc.publish(self.next_subject, _json.encode(req), reply=self.inbox)
        try:
            await asyncio.wait_for(self.wake.wait(), timeout)
        except asyncio.TimeoutError:  # the request's end lost (a reconnect): whatever came is kept
            pass
        if self.status is not None and self.status[0] not in self._ENDS and not self.buf:
            raise RuntimeError(f"JetStream pull {self.status[0]} {self.status[1]}")

    async def fetch(self, batch: int, timeout: float) -> list[Any]:
        if len(self.buf) < batch:
            await self._request({"batch": batch - len(self.buf), "no_wait": True}, batch, timeout)
            if not self.buf:
                await self._request({"batch": 1, "expires": int(timeout * 1e9)}, 1, timeout + 1.0)
        out, self.buf = self.buf[:batch], self.buf[batch:]
        return out
