"""Modbus hubs: one per physical line (a TCP endpoint or an RS-485 port).

Every device on a line shares one pymodbus client.  pymodbus clients must
never have two requests outstanding (pymodbus issue 1784; RS-485 is half
duplex anyway), so the hub serialises requests with a lock and, for slow
gateways, waits ``message_wait_ms`` between the end of one exchange and the
start of the next (Home Assistant's ``message_wait_milliseconds``).

Reconnection is the hub's job, not pymodbus's: pymodbus' own reconnect task is
switched off and the hub reconnects on demand with exponential back-off.  While
it backs off, requests fail at once with ``ModbusConnectionError`` instead of
each waiting out a connect timeout, so a dead gateway costs its devices one
fast failure per poll and never holds up another line (each line has its own
lock and client).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Awaitable, Callable, ClassVar, Literal, Sequence

import msgspec
from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
from pymodbus.exceptions import ConnectionException, ModbusIOException
from pymodbus.framer import FramerType

from firebus.sdk.extension import Transport, TransportContext
from firebus.sdk.modbus import (
    ModbusConnectionError,
    ModbusError,
    ModbusExceptionResponse,
    ModbusTimeoutError,
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


_READS: dict[Table, str] = {
    Table.HOLDING: "read_holding_registers",
    Table.INPUT: "read_input_registers",
    Table.COIL: "read_coils",
    Table.DISCRETE: "read_discrete_inputs",
}


class ModbusLineTransport(Transport):
    """Shared part of the TCP and RTU hubs; implements ``firebus.sdk.modbus.ModbusLine``."""

    type_key: ClassVar[str] = "modbus"

    def __init__(self, key: str, options: Any, ctx: TransportContext) -> None:
        super().__init__(key, options, ctx)
        self.log: logging.Logger = ctx.logger
        self._client: Any = None
        self._lock = asyncio.Lock()
        self._last_io = 0.0
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
        async with self._lock:
            try:
                await self._ensure_connected()
            except ModbusConnectionError:
                pass  # reported through link_changed; polls retry with back-off

    async def stop(self) -> None:
        self._closed = True
        if self._client is not None:
            self._client.close()
            self._client = None

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
    async def _call(self, what: str, fn: Callable[[], Awaitable[Any]]) -> Any:
        async with self._lock:
            await self._ensure_connected()
            gap = self.options.message_wait_ms / 1000 - (time.monotonic() - self._last_io)
            if gap > 0:
                await asyncio.sleep(gap)
            self.requests += 1
            try:
                rr = await fn()
            except ModbusIOException as exc:
                self.failures += 1
                if not self._client.connected:  # the peer closed while we waited
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
                self._client.close()
                raise
            finally:
                self._last_io = time.monotonic()
            if rr is None:
                raise ModbusTimeoutError(f"{self.key}: {what}: no answer")
            if rr.isError():
                self.failures += 1
                raise ModbusExceptionResponse(getattr(rr, "exception_code", 0), f"{self.key}: {what}")
            self._set_link(True)
            return rr

    async def read(self, unit: int, table: Table | str, address: int, count: int) -> list[int] | list[bool]:
        table = Table(table)
        if count < 1:
            raise ValueError("count must be ≥ 1")
        method = getattr(self._client_or_raise(), _READS[table])
        what = f"read {table} {address}+{count} unit {unit}"
        rr = await self._call(what, lambda: method(address, count=count, device_id=unit))
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
        )


class ModbusRtuTransport(ModbusLineTransport):
    """An RS-485 line through a serial port (or a pyserial URL such as ``socket://``)."""

    type_key: ClassVar[str] = "modbus_rtu"
    Options: ClassVar[type[msgspec.Struct]] = ModbusRtuOptions

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
        )
