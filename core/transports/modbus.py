"""Modbus hubs: one per physical line (a TCP endpoint or an RS-485 port).

Every device on a line shares one pymodbus client.  pymodbus clients must
never have two requests outstanding (pymodbus issue 1784; RS-485 is half
duplex anyway), so the hub lets one request at a time onto the line and, for
slow gateways, waits ``message_wait_ms`` between the end of one exchange and
the start of the next (Home Assistant's ``message_wait_milliseconds``).  On an
RTU line it also always keeps the protocol's 3.5-character silence.

Who goes next is a priority queue, not a lock (``LineScheduler``): alarm reads
and writes first, then reads that name no lane, then telemetry reads, first
come first served within each.  A telemetry read carries a deadline (its
poll's budget) by which it must have *finished*; the hub estimates how long the
exchange takes (on RTU the line time from ``RtuTiming``, plus the overhead it
has measured on this line) and, if the read cannot start in time — the line is
saturated — skips it with ``ModbusSkipped`` and counts it (``stats()``); the
driver reads it again on its next cycle.  Finishing by the deadline, not just
starting, is what keeps a device's poll inside its cycle, so the next cycle's
alarm reads are never late because of a telemetry read.  Alarm reads are never skipped: a fire,
gas or leakage alarm bit waits at most for the exchange already on the wire
and for other alarm reads.

Reconnection is the hub's job, not pymodbus's: pymodbus' own reconnect task is
switched off and the hub reconnects on demand with exponential back-off.  While
it backs off, requests fail at once with ``ModbusConnectionError`` instead of
each waiting out a connect timeout, so a dead gateway costs its devices one
fast failure per poll and never holds up another line (each line has its own
lock and client).
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Awaitable, Callable, ClassVar, Literal, Sequence

import msgspec
from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
from pymodbus.exceptions import ConnectionException, ModbusIOException
from pymodbus.framer import FramerType

from firebus.sdk.events import Lane
from firebus.sdk.extension import Transport, TransportContext
from firebus.sdk.modbus import (
    ModbusConnectionError,
    ModbusError,
    ModbusExceptionResponse,
    ModbusSkipped,
    ModbusTimeoutError,
    RtuTiming,
    Table,
)


class _LineOptions(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    timeout: float = 3.0  # seconds to wait for one answer
    retries: int = 1  # extra attempts after a timeout, per request
    message_wait_ms: int = 0  # silence kept between two exchanges on the line
    reconnect_delay: float = 0.5  # first back-off after a failed connect, doubling …
    reconnect_delay_max: float = 30.0  # … up to this

    def __post_init__(self) -> None:
        if self.timeout <= 0:
            raise ValueError("timeout must be > 0")
        if not 0 <= self.retries <= 10:
            raise ValueError("retries must be 0..10")
        if self.message_wait_ms < 0:
            raise ValueError("message_wait_ms must be ≥ 0")
        if self.reconnect_delay <= 0 or self.reconnect_delay_max < self.reconnect_delay:
            raise ValueError("need 0 < reconnect_delay ≤ reconnect_delay_max")


class ModbusTcpOptions(_LineOptions, kw_only=True):
    host: str
    port: int = 502
    #: "socket" = Modbus TCP (MBAP); "rtu" = RTU frames over TCP (cheap serial servers)
    framer: Literal["socket", "rtu"] = "socket"


class ModbusRtuOptions(_LineOptions, kw_only=True):
    #: serial device (/dev/ttyUSB0) or any pyserial URL (socket://host:port, rfc2217://…)
    port: str
    baudrate: int = 9600
    bytesize: Literal[7, 8] = 8
    parity: Literal["N", "E", "O"] = "N"
    stopbits: Literal[1, 2] = 1
    framer: Literal["rtu", "ascii"] = "rtu"
    message_wait_ms: int = 30  # RS-485 devices need turnaround time (HA's serial default)
    timeout: float = 1.0


# --------------------------------------------------------------------------- the line scheduler

#: queue ranks: lower goes first
RANK_ALARM, RANK_OTHER, RANK_TELEMETRY = 0, 1, 2
_RANK_OF = {Lane.ALARM: RANK_ALARM, None: RANK_OTHER, Lane.TELEMETRY: RANK_TELEMETRY}
_RANK_NAME = {RANK_ALARM: "alarm", RANK_OTHER: "other", RANK_TELEMETRY: "telemetry"}


class _Waiter:
    __slots__ = ("fut", "dead", "queued_at")

    def __init__(self, fut: "asyncio.Future[bool]") -> None:
        self.fut = fut
        self.dead = False
        self.queued_at = time.monotonic()


class _RankStats:
    __slots__ = ("requests", "skipped", "waits", "wait_max")

    def __init__(self) -> None:
        self.requests = 0
        self.skipped = 0
        self.waits: deque[float] = deque(maxlen=4096)  # recent queue waits, for p50/p99
        self.wait_max = 0.0

    def granted(self, wait: float) -> None:
        self.requests += 1
        self.waits.append(wait)
        if wait > self.wait_max:
            self.wait_max = wait

    def figures(self) -> dict[str, Any]:
        waits = sorted(self.waits)
        out: dict[str, Any] = {"requests": self.requests}
        if waits:
            out["wait_ms_p50"] = round(1000 * waits[len(waits) // 2], 2)
            out["wait_ms_p99"] = round(1000 * waits[min(len(waits) - 1, int(len(waits) * 0.99))], 2)
            out["wait_ms_max"] = round(1000 * self.wait_max, 2)
        return out


class LineScheduler:
    """One request on the line at a time; the next one by rank, then arrival.

    ``acquire`` returns once the caller owns the line (it must call
    ``release``), or with None when its deadline passed while it waited
    (telemetry on a saturated line).  Granting happens in ``release``, synchronously, so the
    line never idles while something waits, and a waiter that was cancelled or
    expired is simply passed over.
    """

    def __init__(self) -> None:
        self._busy = False
        self._heap: list[tuple[int, int, _Waiter]] = []
        self._seq = 0
        self._live = 0
        self.queued_max = 0
        self.ranks = {r: _RankStats() for r in _RANK_NAME}
        self.busy_s = 0.0
        self._granted_at = 0.0
        self.started = time.monotonic()

    @property
    def queued(self) -> int:
        return self._live

    async def acquire(self, rank: int, deadline: float | None = None) -> float | None:
        """Wait for the line: seconds waited once the caller owns it, None if ``deadline``
        (telemetry only) passed first.  The owner must call ``release``."""
        if deadline is not None and rank == RANK_TELEMETRY and time.monotonic() >= deadline:
            return None  # too late even on an idle line: it would end after the caller's budget
        if not self._busy:
            self._busy = True
            self._granted_at = time.monotonic()
            return 0.0
        loop = asyncio.get_running_loop()
        waiter = _Waiter(loop.create_future())
        self._seq += 1
        heapq.heappush(self._heap, (rank, self._seq, waiter))
        self._live += 1
        self.queued_max = max(self.queued_max, self._live)
        timer = None
        if deadline is not None and rank == RANK_TELEMETRY:
            timer = loop.call_later(max(0.0, deadline - time.monotonic()), self._expire, waiter)
        try:
            granted = await waiter.fut
        except asyncio.CancelledError:
            if waiter.fut.done() and not waiter.fut.cancelled() and waiter.fut.result():
                self.release()  # granted, but our caller is gone: pass the line on
            elif not waiter.dead:
                waiter.dead = True
                self._live -= 1
            raise
        finally:
            if timer is not None:
                timer.cancel()
        if not granted:
            return None
        return time.monotonic() - waiter.queued_at

    def _expire(self, waiter: _Waiter) -> None:
        if waiter.dead or waiter.fut.done():
            return
        waiter.dead = True
        self._live -= 1
        waiter.fut.set_result(False)

    def release(self) -> None:
        now = time.monotonic()
        self.busy_s += now - self._granted_at
        while self._heap:
            _, _, waiter = heapq.heappop(self._heap)
            if waiter.dead or waiter.fut.done():
                continue
            waiter.dead = True  # no longer queued
            self._live -= 1
            self._granted_at = now
            waiter.fut.set_result(True)
            return
        self._busy = False

    def figures(self) -> dict[str, Any]:
        busy = self.busy_s + (time.monotonic() - self._granted_at if self._busy else 0.0)
        up = max(1e-9, time.monotonic() - self.started)
        return {
            "queued": self._live,
            "queued_max": self.queued_max,
            "busy_s": round(busy, 3),
            "utilisation": round(min(1.0, busy / up), 4),
            "telemetry_skipped": self.ranks[RANK_TELEMETRY].skipped,
            "lanes": {_RANK_NAME[r]: {**st.figures(), **({"skipped": st.skipped} if r == RANK_TELEMETRY else {})}
                      for r, st in self.ranks.items()},
        }


#: weight of the newest exchange in the hub's overhead average
_OVERHEAD_ALPHA = 0.2
#: how late the event loop's timers may wake (epoll's millisecond resolution, plus scheduling)
_TIMER_SLACK_S = 0.0012

_READS: dict[Table, str] = {
    Table.HOLDING: "read_holding_registers",
    Table.INPUT: "read_input_registers",
    Table.COIL: "read_coils",
    Table.DISCRETE: "read_discrete_inputs",
}


class ModbusLineTransport(Transport):
    """Shared part of the TCP and RTU hubs; implements ``firebus.sdk.modbus.ModbusLine``."""

    type_key: ClassVar[str] = "modbus"
    #: reads take ``lane=`` and ``deadline=`` (``firebus.sdk.modbus.ModbusLine``)
    lanes: ClassVar[bool] = True

    def __init__(self, key: str, options: Any, ctx: TransportContext) -> None:
        super().__init__(key, options, ctx)
        self.log: logging.Logger = ctx.logger
        self._client: Any = None
        self.scheduler = LineScheduler()
        #: silence kept between two exchanges: message_wait_ms, and on RTU at least t3.5
        self._gap_s = options.message_wait_ms / 1000
        self._last_io = 0.0
        self._last_rx = 0.0  # when the client library last received bytes (pymodbus' trace_packet)
        self._timer: ThreadPoolExecutor | None = None  # times the end of short silences precisely
        #: measured exchange time beyond the line time (host, client library, device turnaround):
        #: a moving average, for estimating whether a telemetry read still fits its deadline
        self.overhead_s = 0.0
        self._delay = options.reconnect_delay
        self._next_attempt = 0.0
        self._link_up: bool | None = None  # None: not known yet (no event before the first verdict)
        self._closed = False
        #: requests sent, failures seen: cheap counters for diagnostics and tests
        self.requests = 0
        self.failures = 0

    # -- to implement
    def _make_client(self) -> Any:
        raise NotImplementedError

    def describe(self) -> str:
        raise NotImplementedError

    # -- life cycle
    async def start(self) -> None:
        self._closed = False
        self._client = self._make_client()
        await self.scheduler.acquire(RANK_ALARM)
        try:
            await self._ensure_connected()
        except ModbusConnectionError:
            pass  # reported through link_changed; polls retry with back-off
        finally:
            self.scheduler.release()

    async def stop(self) -> None:
        self._closed = True
        if self._client is not None:
            self._client.close()
            self._client = None
        if self._timer is not None:
            self._timer.shutdown(wait=False)
            self._timer = None

    @property
    def connected(self) -> bool:
        return self._client is not None and self._client.connected

    # -- link state
    def _set_link(self, up: bool, reason: str = "") -> None:
        if self._link_up is up:
            return
        first = self._link_up is None
        self._link_up = up
        if up:
            self._delay = self.options.reconnect_delay
            if not first:
                self.log.info("modbus line %s (%s) is back", self.key, self.describe())
        else:
            self.log.warning("modbus line %s (%s) is down: %s", self.key, self.describe(), reason)
        if up and first:
            return  # a line that simply came up at start is not news
        self.ctx.link_changed(up, reason)

    def _on_packet(self, sending: bool, data: bytes) -> bytes:
        # pymodbus calls this with raw bytes as they are received (and before they are sent):
        # the silence before the next request counts from the answer's last byte, not from
        # when the answer had been decoded and handed to us.
        if not sending:
            self._last_rx = time.monotonic()
        return data

    def _on_connect_trace(self, connected: bool) -> None:
        # pymodbus calls this from its protocol callbacks (event-loop thread).  A
        # lost connection is not yet a link fault: pymodbus also drops the socket
        # after a run of timeouts (dead units behind a live gateway), and the next
        # request reconnects at once.  Only a reconnect that fails is reported, so
        # the link does not flap for what is a device problem.
        if not connected and not self._closed:
            self.log.debug("modbus line %s: connection closed; reconnecting on the next request", self.key)

    async def _ensure_connected(self) -> None:
        if self._closed or self._client is None:
            raise ModbusConnectionError(f"{self.key}: transport stopped")
        if self._client.connected:
            return
        now = time.monotonic()
        if now < self._next_attempt:
            raise ModbusConnectionError(
                f"{self.key}: {self.describe()} unreachable, next attempt in {self._next_attempt - now:.1f}s"
            )
        ok = False
        try:
            ok = await self._client.connect()
        except Exception as exc:  # pyserial raises undocumented errors (termios, OSError …)
            reason = f"{type(exc).__name__}: {exc}"
        else:
            reason = "connect failed"
        if ok and self._client.connected:
            self._set_link(True)
            return
        self._next_attempt = time.monotonic() + self._delay
        self._delay = min(self._delay * 2, self.options.reconnect_delay_max)
        self._set_link(False, f"{self.describe()}: {reason}")
        raise ModbusConnectionError(f"{self.key}: cannot connect to {self.describe()} ({reason})")

    # -- requests
    def line_s(self, table: Table, count: int) -> float:
        """Time the bytes of one read occupy the line (0 where the wire is not the limit: TCP)."""
        return 0.0

    def estimate_s(self, table: Table, count: int) -> float:
        """Expected duration of one read, from its line time and the overhead measured so far."""
        return self.line_s(table, count) + self.overhead_s

    async def _call(self, what: str, fn: Callable[[], Awaitable[Any]], rank: int = RANK_ALARM,
                    deadline: float | None = None, line_s: float | None = None) -> Any:
        waited = await self.scheduler.acquire(rank, deadline)
        stats = self.scheduler.ranks[rank]
        if waited is None:
            stats.skipped += 1
            raise ModbusSkipped(f"{self.key}: {what}: line saturated, telemetry read deferred")
        stats.granted(waited)
        began = time.monotonic()
        try:
            rr = await self._exchange(what, fn)
        finally:
            self.scheduler.release()
        if line_s is not None:  # reads only; and only answered ones (a timeout says nothing of the next)
            extra = max(0.0, time.monotonic() - began - line_s)
            self.overhead_s += _OVERHEAD_ALPHA * (extra - self.overhead_s)
        return rr

    async def _exchange(self, what: str, fn: Callable[[], Awaitable[Any]]) -> Any:
        # The caller owns the line (LineScheduler) for the whole exchange, gap included.
        await self._ensure_connected()
        # stop() may drop the client while this exchange is in flight (a demo stopping
        # mid-poll): keep our own reference instead of reading self._client again.
        client = self._client
        await self._keep_silence()
        self.requests += 1
        sent = time.monotonic()
        try:
            rr = await fn()
        except ModbusIOException as exc:
            self.failures += 1
            if client is None or not client.connected:  # the peer closed while we waited
                raise ModbusConnectionError(f"{self.key}: {what}: connection lost") from None
            raise ModbusTimeoutError(f"{self.key}: {what}: no answer ({exc})") from None
        except ConnectionException as exc:
            self.failures += 1
            raise ModbusConnectionError(f"{self.key}: {what}: {exc}") from None
        except asyncio.TimeoutError:
            self.failures += 1
            raise ModbusTimeoutError(f"{self.key}: {what}: no answer") from None
        except asyncio.CancelledError:
            # Cancelled mid-exchange (the poller's deadline): the answer may still
            # arrive, and RTU frames carry no transaction id to tell it from the
            # next one's.  Drop the connection so stale bytes cannot be misread.
            if client is not None:
                client.close()
            raise
        finally:
            self._last_io = time.monotonic()
        if rr is None:
            raise ModbusTimeoutError(f"{self.key}: {what}: no answer")
        if self._last_rx > sent:
            self._last_io = self._last_rx
        if rr.isError():
            self.failures += 1
            raise ModbusExceptionResponse(getattr(rr, "exception_code", 0), f"{self.key}: {what}")
        self._set_link(True)
        return rr

    async def _keep_silence(self) -> None:
        """Wait until ``_gap_s`` has passed since the last exchange ended, and not much longer.

        The loop's timers wake up to ~1 ms late (epoll counts milliseconds), which at
        115,200 baud is a sixth of an exchange: sleep the bulk on the loop, and the last
        stretch in a thread of this line's own (``time.sleep`` is precise to ~0.1 ms),
        which wakes the loop when it is over.  Spinning the loop instead cost ~2 ms of
        CPU per exchange; napping on the loop thread would hold every other task."""
        until = max(self._last_io, self._last_rx) + self._gap_s  # late bytes of a timed-out answer too
        left = until - time.monotonic()
        if left > _TIMER_SLACK_S + 0.0005:
            await asyncio.sleep(left - _TIMER_SLACK_S)
            left = until - time.monotonic()
        if left > 0:
            if self._timer is None:
                self._timer = ThreadPoolExecutor(1, thread_name_prefix=f"modbus-{self.key}-silence")
            await asyncio.get_running_loop().run_in_executor(self._timer, time.sleep, left)

    async def read(self, unit: int, table: Table | str, address: int, count: int, *,
                   lane: Lane | None = None, deadline: float | None = None) -> list[int] | list[bool]:
        """Read ``count`` values.  ``lane``: ``Lane.ALARM`` first and never skipped;
        ``Lane.TELEMETRY`` last, and skipped (``ModbusSkipped``) if it cannot *finish* by
        ``deadline`` (``time.monotonic()`` seconds; the hub starts it only while
        ``deadline - estimate_s()`` has not passed); None in between, never skipped."""
        table = Table(table)
        if count < 1:
            raise ValueError("count must be ≥ 1")
        method = getattr(self._client_or_raise(), _READS[table])
        what = f"read {table} {address}+{count} unit {unit}"
        line_s = self.line_s(table, count)
        start_by = None
        if deadline is not None and lane is Lane.TELEMETRY:
            start_by = deadline - line_s - self.overhead_s
        rr = await self._call(what, lambda: method(address, count=count, device_id=unit), _RANK_OF[lane],
                              start_by, line_s)
        if table.is_bits:
            bits = list(rr.bits[:count])
            if len(bits) < count:
                raise ModbusError(f"{self.key}: {what}: short answer ({len(bits)} bits)")
            return [bool(b) for b in bits]
        regs = list(rr.registers)
        if len(regs) < count:
            raise ModbusError(f"{self.key}: {what}: short answer ({len(regs)} registers)")
        return regs

    async def write_register(self, unit: int, address: int, value: int) -> None:
        if not 0 <= value <= 0xFFFF:
            raise ValueError(f"register value {value} outside 0..65535")
        client = self._client_or_raise()
        await self._call(f"write register {address} unit {unit}",
                         lambda: client.write_register(address, value, device_id=unit))

    async def write_registers(self, unit: int, address: int, values: Sequence[int]) -> None:
        vals = [int(v) for v in values]
        if not vals or any(not 0 <= v <= 0xFFFF for v in vals):
            raise ValueError(f"register values {vals} empty or outside 0..65535")
        client = self._client_or_raise()
        await self._call(f"write registers {address}+{len(vals)} unit {unit}",
                         lambda: client.write_registers(address, vals, device_id=unit))

    async def write_coil(self, unit: int, address: int, value: bool) -> None:
        client = self._client_or_raise()
        await self._call(f"write coil {address} unit {unit}",
                         lambda: client.write_coil(address, bool(value), device_id=unit))

    def _client_or_raise(self) -> Any:
        if self._client is None:
            raise ModbusConnectionError(f"{self.key}: transport not started")
        return self._client

    def stats(self) -> dict[str, Any]:
        """Counters for ``/api/metrics``: requests, failures, queue, line utilisation, per-lane waits,
        telemetry reads skipped because the line was saturated, measured overhead per exchange."""
        return {
            "type": self.type_key,
            "line": self.describe(),
            "connected": self.connected,
            "requests": self.requests,
            "failures": self.failures,
            "overhead_ms": round(1000 * self.overhead_s, 3),
            **self.scheduler.figures(),
        }


class ModbusTcpTransport(ModbusLineTransport):
    """A Modbus TCP endpoint (a device or a TCP→RS-485 gateway fronting many units)."""

    type_key: ClassVar[str] = "modbus_tcp"
    Options: ClassVar[type[msgspec.Struct]] = ModbusTcpOptions

    def describe(self) -> str:
        return f"{self.options.host}:{self.options.port}"

    def _make_client(self) -> Any:
        o: ModbusTcpOptions = self.options
        return AsyncModbusTcpClient(
            o.host,
            port=o.port,
            framer=FramerType.RTU if o.framer == "rtu" else FramerType.SOCKET,
            timeout=o.timeout,
            retries=o.retries,
            reconnect_delay=0,  # the hub reconnects (on demand, with its own back-off)
            name=f"firebus-{self.key}",
            trace_connect=self._on_connect_trace,
            trace_packet=self._on_packet,
        )


class ModbusRtuTransport(ModbusLineTransport):
    """An RS-485 line through a serial port (or a pyserial URL such as ``socket://``)."""

    type_key: ClassVar[str] = "modbus_rtu"
    Options: ClassVar[type[msgspec.Struct]] = ModbusRtuOptions

    def __init__(self, key: str, options: Any, ctx: TransportContext) -> None:
        super().__init__(key, options, ctx)
        o: ModbusRtuOptions = options
        self.timing = RtuTiming.of(o.baudrate, o.bytesize, o.parity, o.stopbits)
        if o.framer == "rtu":
            # Frames are delimited by silence: never start a request less than t3.5 after the
            # last answer, whatever message_wait_ms says (the gap counts from when the client
            # library received the answer's last bytes, never before they left the wire).
            self._gap_s = max(self._gap_s, self.timing.silence_s)

    def line_s(self, table: Table, count: int) -> float:
        # both t3.5 silences are in it: the hub's own gap overlaps the one after the answer
        return self.timing.read_s(table, count) if self.options.framer == "rtu" else 0.0

    def stats(self) -> dict[str, Any]:
        return {**super().stats(), "baudrate": self.options.baudrate,
                "bits_per_char": self.timing.bits_per_char}

    def describe(self) -> str:
        return self.options.port

    def _make_client(self) -> Any:
        o: ModbusRtuOptions = self.options
        return AsyncModbusSerialClient(
            o.port,
            framer=FramerType.ASCII if o.framer == "ascii" else FramerType.RTU,
            baudrate=o.baudrate,
            bytesize=o.bytesize,
            parity=o.parity,
            stopbits=o.stopbits,
            timeout=o.timeout,
            retries=o.retries,
            reconnect_delay=0,
            name=f"firebus-{self.key}",
            trace_connect=self._on_connect_trace,
            trace_packet=self._on_packet,
        )
