"""Modbus for plugins: register-map profiles, block planning, decoding, and a generic driver.

A *profile* is data (YAML or TOML), not code: it says where each point lives
(table, address, data type, word/byte order, scale, sentinels).  Plugins for
leakage, gas and water devices ship profiles and, at most, a thin subclass of
``ModbusProfileDriver``.  The driver never opens a socket: it talks to the
line's shared hub through the ``ModbusLine`` protocol, which the core's
``modbus_tcp`` / ``modbus_rtu`` transports implement.

Why batching matters: one request per point cannot reach 1–5 s scans with 40+
points on a slow gateway (Home Assistant issue 48497), so ``plan_blocks`` merges
nearby registers into as few reads as the device's limits allow.

Why two schedules: a fire, gas or leakage alarm bit must never wait behind
telemetry registers on a busy RS-485 line.  Alarm-class points (by point class,
``firebus.sdk.vocab.is_alarm_class``, or ``alarm:`` per point) are read at
alarm priority on the line, every ``alarm_interval`` (the shipped profiles
say 1 s), the rest every ``poll_interval``; when the line is saturated the hub defers telemetry reads,
never alarm reads (``PollPlanner``, ``ModbusProfileDriver.poll``).
"""

from __future__ import annotations

import logging
import math
import struct
import time
from enum import StrEnum
from importlib import resources
from pathlib import Path
from typing import Any, ClassVar, Iterable, Protocol, Sequence

import msgspec

from .profile_data import ProfileError, parse_profile_data
from .driver import DeviceInfo, PointSpec, PolledDriver, Reading
from .events import Lane
from .vocab import is_alarm_class

# --------------------------------------------------------------------------- errors


class ModbusError(Exception):
    """Base of every Modbus failure a driver may see from a hub."""


class ModbusConnectionError(ModbusError):
    """The line is down: no TCP connection / serial port, or still backing off."""


class ModbusTimeoutError(ModbusError):
    """The line is up but the unit did not answer (after the configured retries)."""


class ModbusExceptionResponse(ModbusError):
    """The unit answered with a Modbus exception code (illegal address, busy …)."""

    NAMES: ClassVar[dict[int, str]] = {
        1: "illegal function",
        2: "illegal data address",
        3: "illegal data value",
        4: "server device failure",
        5: "acknowledge",
        6: "server device busy",
        8: "memory parity error",
        10: "gateway path unavailable",
        11: "gateway target device failed to respond",
    }

    def __init__(self, code: int, request: str = "") -> None:
        self.code = code
        self.request = request
        name = self.NAMES.get(code, "unknown exception")
        super().__init__(f"exception {code} ({name}){' on ' + request if request else ''}")


class ModbusWriteVerifyError(ModbusError):
    """A write was accepted but reading it back gave another value."""


class ModbusSkipped(ModbusError):
    """A telemetry read could not be done by its deadline: the line is saturated.

    Not a device failure: the hub counts it (``stats()["telemetry_skipped"]``) and
    the driver reads the block again on its next cycle.  Only reads made with
    ``lane=Lane.TELEMETRY`` and a ``deadline`` raise it; alarm reads never do.
    """


# --------------------------------------------------------------------------- profile format


class Table(StrEnum):
    HOLDING = "holding"  # FC03 read, FC06/FC16 write
    INPUT = "input"  # FC04
    COIL = "coil"  # FC01 read, FC05 write
    DISCRETE = "discrete"  # FC02

    @property
    def is_bits(self) -> bool:
        return self in (Table.COIL, Table.DISCRETE)


class DType(StrEnum):
    INT16 = "int16"
    UINT16 = "uint16"
    INT32 = "int32"
    UINT32 = "uint32"
    FLOAT32 = "float32"
    INT64 = "int64"
    UINT64 = "uint64"
    FLOAT64 = "float64"
    BIT = "bit"  # one bit of a 16-bit register (status words); needs ``bit``
    BOOL = "bool"  # a coil or discrete input


class Order(StrEnum):
    BIG = "big"
    LITTLE = "little"


#: registers each numeric type occupies, and its struct code (big-endian, per register pair)
_WIDTH = {
    DType.INT16: 1, DType.UINT16: 1, DType.BIT: 1, DType.BOOL: 1,
    DType.INT32: 2, DType.UINT32: 2, DType.FLOAT32: 2,
    DType.INT64: 4, DType.UINT64: 4, DType.FLOAT64: 4,
}
_STRUCT = {
    DType.INT16: "h", DType.UINT16: "H", DType.INT32: "i", DType.UINT32: "I",
    DType.FLOAT32: "f", DType.INT64: "q", DType.UINT64: "Q", DType.FLOAT64: "d",
}

#: Modbus application-protocol limits per request (V1.1b3 §6.1–6.4)
MAX_REGISTERS_PER_READ = 125
MAX_BITS_PER_READ = 2000


class PointMap(msgspec.Struct, frozen=True, forbid_unknown_fields=True, omit_defaults=True):
    """Where one point lives and how its raw value becomes an engineering value.

    ``value = raw * scale + offset`` (or ``raw / 10**decimals`` with
    ``decimals_from``).  ``sentinels`` maps raw values the device uses for
    "no measurement" (0xFFFF fault, 0xFFFE open circuit …) to a fault reason:
    such a value becomes ``Reading.fault``, never a measurement.  ``enum``
    maps raw integers to state names (pump mode 0 → auto).

    ``alarm`` makes the point alarm-class (read at alarm priority every
    ``alarm_interval``; its changes travel on the alarm lane) or not; None
    decides by ``point_class``.  ``interval`` reads this point every so many
    seconds instead of its class's interval (settings that rarely change).
    """

    point_key: str
    point_class: str
    table: Table
    address: int
    dtype: DType = DType.UINT16
    unit: str = ""
    name: str = ""
    word_order: Order | None = None  # None → the profile's default
    byte_order: Order | None = None
    scale: float = 1.0
    offset: float = 0.0
    precision: int | None = None  # round the engineering value to this many decimals
    decimals_from: str | None = None  # point whose raw value gives the decimal places
    bit: int | None = None
    invert: bool = False  # for bit/bool points wired active-low
    sentinels: dict[int, str] = msgspec.field(default_factory=dict)
    enum: dict[int, str] = msgspec.field(default_factory=dict)
    writable: bool = False
    readback: bool = True  # verify writes by reading back (off for self-resetting command coils)
    min: float | None = None  # write limits, in engineering units
    max: float | None = None
    expected_interval: float | None = None
    alarm: bool | None = None  # None: by point class (firebus.sdk.vocab.is_alarm_class)
    interval: float | None = None  # seconds between reads; None: alarm_interval / poll_interval

    @property
    def width(self) -> int:
        return _WIDTH[self.dtype]

    @property
    def alarm_class(self) -> bool:
        """Alarm-class by the profile's say, else by point class."""
        return self.alarm if self.alarm is not None else is_alarm_class(self.point_class)


class ProfileDefaults(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    word_order: Order = Order.BIG
    byte_order: Order = Order.BIG


class ModbusProfile(msgspec.Struct, frozen=True, forbid_unknown_fields=True, omit_defaults=True):
    """A device's register map.  ``max_gap``/``max_count`` shape the batched reads.

    ``poll_interval`` is how often the device's telemetry points are read,
    ``alarm_interval`` how often its alarm-class points are (≤ ``poll_interval``).
    """

    name: str
    points: list[PointMap]
    manufacturer: str = ""
    model: str = ""
    description: str = ""
    defaults: ProfileDefaults = ProfileDefaults()
    max_gap: int = 8  # unused registers a read may span to merge two points (0: never span)
    max_count: int = 100  # registers per read (≤ 125); bit tables use ``max_bits``
    max_bits: int = 256
    poll_interval: float | None = None  # seconds between reads of telemetry points
    alarm_interval: float | None = None  # seconds between reads of alarm-class points (default: poll_interval)

    def __post_init__(self) -> None:
        seen: set[str] = set()
        for p in self.points:
            where = f"point {p.point_key!r}"
            if p.point_key in seen:
                raise ValueError(f"{where}: duplicate point_key")
            seen.add(p.point_key)
            if not 0 <= p.address <= 0xFFFF:
                raise ValueError(f"{where}: address {p.address} outside 0..65535")
            if p.table.is_bits and p.dtype is not DType.BOOL:
                raise ValueError(f"{where}: table {p.table} holds bits; dtype must be 'bool'")
            if not p.table.is_bits and p.dtype is DType.BOOL:
                raise ValueError(f"{where}: dtype 'bool' needs a coil or discrete table (use 'bit' in registers)")
            if p.dtype is DType.BIT:
                if p.bit is None or not 0 <= p.bit <= 15:
                    raise ValueError(f"{where}: dtype 'bit' needs bit: 0..15")
                if p.writable:
                    raise ValueError(f"{where}: a bit inside a register cannot be written safely (read-modify-write races the device)")
            elif p.bit is not None:
                raise ValueError(f"{where}: bit is only for dtype 'bit'")
            if p.writable and p.table in (Table.INPUT, Table.DISCRETE):
                raise ValueError(f"{where}: table {p.table} is read-only")
            if p.scale == 0:
                raise ValueError(f"{where}: scale must not be 0")
            if p.decimals_from is not None and p.decimals_from not in {q.point_key for q in self.points}:
                raise ValueError(f"{where}: decimals_from names unknown point {p.decimals_from!r}")
            if p.interval is not None and not p.interval > 0:
                raise ValueError(f"{where}: interval must be > 0 seconds")
        for name, value in (("poll_interval", self.poll_interval), ("alarm_interval", self.alarm_interval)):
            if value is not None and not value > 0:
                raise ValueError(f"{name} must be > 0 seconds")
        if self.poll_interval is not None and self.alarm_interval is not None and self.alarm_interval > self.poll_interval:
            raise ValueError(f"alarm_interval {self.alarm_interval:g} s is longer than poll_interval "
                             f"{self.poll_interval:g} s: alarm points are never read less often than telemetry")
        if not 1 <= self.max_count <= MAX_REGISTERS_PER_READ:
            raise ValueError(f"max_count must be 1..{MAX_REGISTERS_PER_READ}")
        if not 1 <= self.max_bits <= MAX_BITS_PER_READ:
            raise ValueError(f"max_bits must be 1..{MAX_BITS_PER_READ}")
        if self.max_gap < 0:
            raise ValueError("max_gap must be ≥ 0")

    def point(self, key: str) -> PointMap:
        for p in self.points:
            if p.point_key == key:
                return p
        raise KeyError(key)

    def point_specs(self) -> list[PointSpec]:
        return [
            PointSpec(
                key=p.point_key, point_class=p.point_class, unit=p.unit, name=p.name,
                writable=p.writable, expected_interval=p.expected_interval, alarm=p.alarm,
            )
            for p in self.points
        ]


def profile_from_data(data: Any, source: str = "<data>") -> ModbusProfile:
    """Validate already-parsed YAML/TOML data.  Errors name ``source`` and the field path."""
    try:
        # strict=False: TOML tables have string keys ("65535" = "fault"); accept them as ints.
        return msgspec.convert(data, ModbusProfile, strict=False)
    except (msgspec.ValidationError, ValueError, TypeError) as exc:
        raise ProfileError(f"{source}: {exc}") from None


def load_profile(path: str | Path) -> ModbusProfile:
    """Load a profile from a ``.yaml``/``.yml`` or ``.toml`` file."""
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    return parse_profile(text, path.name, str(path))


def parse_profile(text: str, filename: str, source: str | None = None) -> ModbusProfile:
    source = source or filename
    return profile_from_data(parse_profile_data(text, filename, source, ProfileError), source)


def load_profile_resource(package: str, name: str) -> ModbusProfile:
    """Load a profile shipped as package data: ``load_profile_resource(__package__, "x.yaml")``."""
    ref = resources.files(package).joinpath(name)
    return parse_profile(ref.read_text(encoding="utf-8"), name, f"{package}/{name}")


# --------------------------------------------------------------------------- planning


class Block(msgspec.Struct, frozen=True):
    """One read request: ``count`` registers/bits from ``address`` in ``table``."""

    table: Table
    address: int
    count: int
    points: tuple[str, ...]

    @property
    def end(self) -> int:
        return self.address + self.count


def plan_blocks(
    points: Iterable[PointMap], *, max_gap: int = 8, max_count: int = 100, max_bits: int = 256
) -> list[Block]:
    """Merge points into as few contiguous reads as the limits allow.

    Two points share a read when the unused span between them is ≤ ``max_gap``
    and the merged read stays ≤ ``max_count`` (registers) or ``max_bits``.
    Several bit points in one status register naturally share it.
    """
    by_table: dict[Table, list[PointMap]] = {}
    for p in points:
        by_table.setdefault(p.table, []).append(p)
    blocks: list[Block] = []
    for table in Table:
        pts = sorted(by_table.get(table, []), key=lambda p: (p.address, p.width))
        limit = max_bits if table.is_bits else max_count
        start = end = -1
        keys: list[str] = []
        for p in pts:
            p_end = p.address + p.width
            if keys and p.address - end <= max_gap and max(end, p_end) - start <= limit:
                end = max(end, p_end)
                keys.append(p.point_key)
                continue
            if keys:
                blocks.append(Block(table, start, end - start, tuple(keys)))
            start, end, keys = p.address, p_end, [p.point_key]
        if keys:
            blocks.append(Block(table, start, end - start, tuple(keys)))
    return blocks


# --------------------------------------------------------------------------- schedules

#: share of a poll cycle by which its telemetry reads must have finished on a busy line: the
#: rest is left so the poll ends before the next cycle's alarm reads are due
TELEMETRY_BUDGET = 0.8


class PollSchedule(msgspec.Struct, frozen=True):
    """When each point of a device is read.

    ``tick`` is the poll cycle (the core calls ``poll`` every ``tick`` seconds);
    a point is read every ``periods[key]`` cycles.  ``alarm_points`` are read
    at alarm priority (never skipped on a busy line); the others are telemetry.
    """

    tick: float
    alarm_interval: float
    telemetry_interval: float
    periods: dict[str, int]
    alarm_points: frozenset[str]


def resolve_schedule(
    profile: ModbusProfile,
    *,
    default_interval: float,
    poll_interval: float | None = None,
    alarm_interval: float | None = None,
    telemetry_interval: float | None = None,
) -> PollSchedule:
    """Turn a profile and a device's options into a ``PollSchedule``.

    Precedence, most specific first: the device's ``telemetry_interval`` /
    ``alarm_interval``, the device's ``poll_interval`` (the cycle: with nothing
    else set, every point is read every cycle, as before alarm scheduling
    existed), the profile's ``poll_interval`` / ``alarm_interval``, the
    driver class's ``poll_interval``.  Without any ``alarm_interval`` alarm
    points are read as often as telemetry — every poll reads every point, as a
    caller of ``poll`` has always been able to rely on — but still at alarm
    priority on the line.  A point's own ``interval`` beats its class's.
    Alarm points are never read less often than telemetry.  A ``decimals_from`` register without an ``alarm:``
    of its own follows the points it scales (a scale is not an alarm).
    """
    telemetry = telemetry_interval or poll_interval or profile.poll_interval or default_interval
    alarm = alarm_interval or poll_interval or profile.alarm_interval or telemetry
    alarm = min(alarm, telemetry)
    is_alarm: dict[str, bool] = {p.point_key: p.alarm_class for p in profile.points}
    interval: dict[str, float] = {
        p.point_key: p.interval or (alarm if is_alarm[p.point_key] else telemetry) for p in profile.points
    }
    dependents: dict[str, list[str]] = {}
    for p in profile.points:
        if p.decimals_from is not None:
            dependents.setdefault(p.decimals_from, []).append(p.point_key)
    for source, deps in dependents.items():
        src = profile.point(source)
        if src.alarm is None:
            is_alarm[source] = any(is_alarm[d] for d in deps)
        if src.interval is None:
            interval[source] = min(interval[d] for d in deps)
    tick = poll_interval or (min(interval.values()) if interval else telemetry)
    periods = {k: max(1, round(v / tick)) for k, v in interval.items()}
    return PollSchedule(
        tick=tick, alarm_interval=max(alarm, tick), telemetry_interval=max(telemetry, tick),
        periods=periods, alarm_points=frozenset(k for k, a in is_alarm.items() if a),
    )


class PollCycle(msgspec.Struct, frozen=True):
    """The reads of one poll: alarm blocks (first, alarm priority) and telemetry blocks."""

    alarm: list[Block]
    telemetry: list[Block]


class PollPlanner:
    """Which blocks a poll reads, cycle by cycle (pure logic, no I/O).

    Time is counted in cycles, not seconds, so the plan follows whatever clock
    drives the poller (the core's, a test's simulated one).  Each poll plans
    the points that are due into as few reads as the profile allows: when a
    telemetry point is due together with an alarm point next to it, it rides in
    the alarm read (one request is cheaper on the wire than two); otherwise
    alarm points are read on their own.  A block that could not be read
    (deferred on a busy line) stays due and goes first next time; after a
    failed poll everything is read again.
    """

    _CACHE_MAX = 64

    def __init__(self, profile: ModbusProfile, schedule: PollSchedule) -> None:
        self.profile = profile
        self.schedule = schedule
        self.cycle = -1
        self._next: dict[str, int] = {p.point_key: 0 for p in profile.points}
        self._sources = {p.point_key: p.decimals_from for p in profile.points if p.decimals_from}
        self._by_key = {p.point_key: p for p in profile.points}
        self._cache: dict[frozenset[str], PollCycle] = {}

    def begin(self) -> PollCycle:
        """Start the next cycle and return what it should read."""
        self.cycle += 1
        due = {k for k, n in self._next.items() if n <= self.cycle}
        for k in list(due):
            src = self._sources.get(k)
            if src is not None:
                due.add(src)  # a scaled value is decoded with its decimals register, in one read
        if not due:
            return PollCycle(alarm=[], telemetry=[])
        key = frozenset(due)
        plan = self._cache.get(key)
        if plan is None:
            p = self.profile
            blocks = plan_blocks((self._by_key[k] for k in due), max_gap=p.max_gap, max_count=p.max_count,
                                 max_bits=p.max_bits)
            alarm_points = self.schedule.alarm_points
            plan = PollCycle(
                alarm=[b for b in blocks if any(k in alarm_points for k in b.points)],
                telemetry=[b for b in blocks if not any(k in alarm_points for k in b.points)],
            )
            if len(self._cache) >= self._CACHE_MAX:
                self._cache.clear()
            self._cache[key] = plan
        if len(plan.telemetry) > 1:  # the longest-waiting first: deferral must not starve a block
            telemetry = sorted(plan.telemetry, key=lambda b: min(self._next[k] for k in b.points))
            return PollCycle(alarm=plan.alarm, telemetry=telemetry)
        return plan

    def read(self, block: Block) -> None:
        """``block`` was read in the current cycle."""
        periods = self.schedule.periods
        for k in block.points:
            self._next[k] = self.cycle + periods[k]

    def refresh(self) -> None:
        """Read everything on the next cycle (after a failure: nothing read since is trusted as current)."""
        for k in self._next:
            self._next[k] = 0


# --------------------------------------------------------------------------- RTU line timing


def frame_bytes(table: Table | str, count: int, *, write: bool = False) -> tuple[int, int]:
    """(request, response) bytes of one RTU exchange (unit id and CRC included).

    Reads: request 8 bytes (unit, FC, address, quantity, CRC); response
    5 + 2 × registers, or 5 + ⌈bits / 8⌉.  Writes of ``count`` registers or
    coils: FC06/FC05 8 + 8 bytes for one, FC16/FC15 9 + data + 8 for several.
    """
    table = Table(table)
    if write:
        if count == 1:
            return 8, 8
        data = math.ceil(count / 8) if table.is_bits else 2 * count
        return 9 + data, 8
    return 8, 5 + (math.ceil(count / 8) if table.is_bits else 2 * count)


class RtuTiming(msgspec.Struct, frozen=True):
    """How long bytes take on an RS-485 line (Modbus over Serial Line V1.02 §2.5).

    A character is start bit + data bits + parity bit (if any) + stop bits:
    11 bits for 8E1 or 8N2 (the standard's frame), 10 for the common 8N1.
    Frames are separated by ≥ 3.5 characters of silence (fixed 1.75 ms above
    19,200 baud).  One exchange therefore occupies the line for
    ``(request + response) × char + 2 × t3.5 + turnaround``.
    """

    baudrate: int
    bits_per_char: int = 11

    @classmethod
    def of(cls, baudrate: int, bytesize: int = 8, parity: str = "E", stopbits: int = 1) -> "RtuTiming":
        return cls(baudrate, 1 + bytesize + (0 if parity.upper() == "N" else 1) + stopbits)

    @property
    def char_s(self) -> float:
        return self.bits_per_char / self.baudrate

    @property
    def silence_s(self) -> float:
        """t3.5: the inter-frame silence."""
        return 3.5 * self.char_s if self.baudrate <= 19200 else 0.00175

    def exchange_s(self, request_bytes: int, response_bytes: int, turnaround_s: float = 0.0) -> float:
        return (request_bytes + response_bytes) * self.char_s + 2 * self.silence_s + turnaround_s

    def read_s(self, table: Table | str, count: int, turnaround_s: float = 0.0) -> float:
        """Line time of one read of ``count`` registers or bits."""
        return self.exchange_s(*frame_bytes(table, count), turnaround_s)


# --------------------------------------------------------------------------- decode / encode


def _orders(p: PointMap, defaults: ProfileDefaults) -> tuple[Order, Order]:
    return p.word_order or defaults.word_order, p.byte_order or defaults.byte_order


def words_to_raw(words: Sequence[int], dtype: DType, word_order: Order = Order.BIG,
                 byte_order: Order = Order.BIG) -> int | float:
    """Turn 1–4 registers into the raw number ``dtype`` describes."""
    ws = list(words)
    if word_order is Order.LITTLE:
        ws.reverse()  # low word first on the wire ("word-swapped", e.g. Acrel floats)
    if byte_order is Order.LITTLE:
        ws = [((w & 0xFF) << 8) | (w >> 8) for w in ws]
    data = b"".join(w.to_bytes(2, "big") for w in ws)
    return struct.unpack(">" + _STRUCT[dtype], data)[0]


def raw_to_words(raw: int | float, dtype: DType, word_order: Order = Order.BIG,
                 byte_order: Order = Order.BIG) -> list[int]:
    """Inverse of ``words_to_raw``; raises ``ValueError`` when ``raw`` does not fit."""
    try:
        data = struct.pack(">" + _STRUCT[dtype], raw)
    except struct.error as exc:
        raise ValueError(f"{raw!r} does not fit {dtype}: {exc}") from None
    ws = [int.from_bytes(data[i:i + 2], "big") for i in range(0, len(data), 2)]
    if byte_order is Order.LITTLE:
        ws = [((w & 0xFF) << 8) | (w >> 8) for w in ws]
    if word_order is Order.LITTLE:
        ws.reverse()
    return ws


def _scaled(p: PointMap, raw: float, decimals: int | None) -> float | int:
    if decimals is not None:
        value: float = raw / (10 ** decimals)
    else:
        value = raw * p.scale + p.offset
    if p.precision is not None:
        value = round(value, p.precision)
    elif isinstance(raw, int) and p.scale == 1 and p.offset == 0 and decimals is None:
        return raw
    return value


def decode_point(p: PointMap, words_or_bits: Sequence[Any], defaults: ProfileDefaults = ProfileDefaults(),
                 decimals: int | None = None) -> Reading:
    """Decode one point from its own slice of registers (or its single bit)."""
    if p.dtype is DType.BOOL:
        value = bool(words_or_bits[0]) ^ p.invert
        return Reading(point_key=p.point_key, value=value)
    if p.dtype is DType.BIT:
        word = int(words_or_bits[0])
        raw_bit = bool((word >> int(p.bit or 0)) & 1) ^ p.invert
        if word in p.sentinels:
            return Reading(point_key=p.point_key, value=None, fault=p.sentinels[word])
        return Reading(point_key=p.point_key, value=raw_bit)
    wo, bo = _orders(p, defaults)
    raw = words_to_raw(words_or_bits[: p.width], p.dtype, wo, bo)
    if isinstance(raw, float) and not math.isfinite(raw):
        return Reading(point_key=p.point_key, value=None, fault="not_a_number")
    if isinstance(raw, int) or raw.is_integer():
        key = int(raw)
        if key in p.sentinels:
            return Reading(point_key=p.point_key, value=None, fault=p.sentinels[key])
        if p.enum:
            if key not in p.enum:
                return Reading(point_key=p.point_key, value=None, fault=f"unknown_state_{key}")
            return Reading(point_key=p.point_key, value=p.enum[key])
    return Reading(point_key=p.point_key, value=_scaled(p, raw, decimals))


def decode_block(profile: ModbusProfile, block: Block, data: Sequence[Any]) -> list[Reading]:
    """Decode every point of ``block`` from the values one read returned."""
    if len(data) < block.count:
        raise ModbusError(f"short response: {len(data)} of {block.count} values at {block.table}:{block.address}")
    pts = [profile.point(k) for k in block.points]
    raws: dict[str, int] = {}
    for p in pts:
        if p.width == 1 and p.dtype not in (DType.BOOL, DType.BIT):
            raws[p.point_key] = int(words_to_raw(data[p.address - block.address:][:1], p.dtype,
                                                 *_orders(p, profile.defaults)))
    out = []
    for p in pts:
        seg = data[p.address - block.address: p.address - block.address + p.width]
        decimals = None
        if p.decimals_from is not None:
            d = raws.get(p.decimals_from)
            if d is None or not 0 <= d <= 9:
                out.append(Reading(point_key=p.point_key, value=None,
                                   fault="scale_unavailable" if d is None else f"bad_decimals_{d}"))
                continue
            decimals = d
        out.append(decode_point(p, seg, profile.defaults, decimals))
    return out


_BOOL_WORDS = {"on": True, "true": True, "1": True, "off": False, "false": False, "0": False}


def encode_point(p: PointMap, value: Any, defaults: ProfileDefaults = ProfileDefaults(),
                 decimals: int | None = None) -> list[int] | bool:
    """Engineering value → registers (or a bool for a coil).  ``ValueError`` when it cannot be written."""
    if not p.writable:
        raise ValueError(f"point {p.point_key!r} is not writable")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if p.min is not None and value < p.min or p.max is not None and value > p.max:
            raise ValueError(f"point {p.point_key!r}: {value} outside [{p.min}, {p.max}]")
    return encode_value(p, value, defaults, decimals)


def encode_value(p: PointMap, value: Any, defaults: ProfileDefaults = ProfileDefaults(),
                 decimals: int | None = None) -> list[int] | bool:
    """``encode_point`` without the writability check (simulators encode read-only points too)."""
    if p.dtype is DType.BOOL:
        if isinstance(value, str) and value.lower() in _BOOL_WORDS:
            value = _BOOL_WORDS[value.lower()]
        if not isinstance(value, (bool, int)) or value not in (0, 1):
            raise ValueError(f"point {p.point_key!r} takes a boolean, got {value!r}")
        return bool(value) ^ p.invert
    if p.enum and isinstance(value, str):
        for raw_key, name in p.enum.items():
            if name == value:
                return raw_to_words(raw_key, p.dtype, *_orders(p, defaults))
        raise ValueError(f"point {p.point_key!r}: unknown state {value!r} (one of {sorted(p.enum.values())})")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"point {p.point_key!r} takes a number, got {value!r}")
    if decimals is not None:
        raw: float = value * (10 ** decimals)
    else:
        raw = (value - p.offset) / p.scale
    if p.dtype not in (DType.FLOAT32, DType.FLOAT64):
        raw = int(round(raw))
    return raw_to_words(raw, p.dtype, *_orders(p, defaults))


# --------------------------------------------------------------------------- the hub a driver sees


class ModbusLine(Protocol):
    """A Modbus line (TCP endpoint or RS-485 port) shared by every device on it.

    Requests are serialised by the hub; a driver just awaits them.  Every
    method raises a ``ModbusError`` subclass on failure, never returns an
    error object.

    The core's hubs also schedule by lane (they set ``lanes = True``):
    ``read(..., lane=Lane.ALARM)`` goes ahead of everything queued on the line
    and is never skipped; ``lane=Lane.TELEMETRY`` with a ``deadline``
    (``time.monotonic()`` seconds) goes after everything else and raises
    ``ModbusSkipped`` if the line cannot finish it by then (the hub estimates
    the exchange's duration); without a lane a
    read ranks between the two and is never skipped.  Writes rank with alarm
    reads (commands, linkage).  A line without ``lanes`` is called with the
    four positional arguments only.
    """

    key: str

    async def read(self, unit: int, table: Table | str, address: int, count: int) -> list[int] | list[bool]: ...

    async def write_register(self, unit: int, address: int, value: int) -> None: ...

    async def write_registers(self, unit: int, address: int, values: Sequence[int]) -> None: ...

    async def write_coil(self, unit: int, address: int, value: bool) -> None: ...


class OutageLog:
    """Log a failure once per outage and the recovery once (HA ``log-when-unavailable``).

    ``failed`` returns True only for the first failure of an outage, so the
    caller can also set the device unavailable exactly once.
    """

    def __init__(self, logger: logging.Logger, what: str) -> None:
        self.logger = logger
        self.what = what
        self.down = False
        self.failures = 0

    def failed(self, exc: BaseException | str) -> bool:
        self.failures += 1
        if self.down:
            self.logger.debug("%s still unavailable: %s", self.what, exc)
            return False
        self.down = True
        self.logger.warning("%s unavailable: %s", self.what, exc)
        return True

    def recovered(self) -> bool:
        if not self.down:
            return False
        self.down = False
        self.logger.info("%s available again after %d failed attempt(s)", self.what, self.failures)
        self.failures = 0
        return True


# --------------------------------------------------------------------------- generic driver


class ModbusDeviceOptions(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """Options of a device served by ``ModbusProfileDriver``.

    ``profile`` is a file path (YAML/TOML); subclasses that ship their own
    profile leave it empty.

    Intervals, in seconds: ``alarm_interval`` for alarm-class points (default:
    the profile's, else the telemetry interval), ``telemetry_interval`` for the others (default:
    the profile's ``poll_interval``, else the driver's).  ``poll_interval`` sets
    the poll cycle itself: alone, it reads every point every cycle (as before
    there were two schedules); it cannot be longer than ``alarm_interval``,
    since the core calls the driver only once per cycle.
    """

    unit: int
    profile: str = ""
    name: str = ""
    poll_interval: float | None = None  # the cycle; default: the shortest interval of the device's points
    alarm_interval: float | None = None
    telemetry_interval: float | None = None

    def __post_init__(self) -> None:
        if not 0 <= self.unit <= 247:
            raise ValueError("unit must be 0..247")
        for name in ("poll_interval", "alarm_interval", "telemetry_interval"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ValueError(f"{name} must be > 0")
        cycle = self.poll_interval
        for name in ("alarm_interval", "telemetry_interval"):
            value = getattr(self, name)
            if cycle is not None and value is not None and value < cycle:
                raise ValueError(f"{name} {value:g} s is shorter than poll_interval {cycle:g} s (the cycle): "
                                 f"leave poll_interval out to read points faster")
        if (self.alarm_interval is not None and self.telemetry_interval is not None
                and self.alarm_interval > self.telemetry_interval):
            raise ValueError(f"alarm_interval {self.alarm_interval:g} s is longer than telemetry_interval "
                             f"{self.telemetry_interval:g} s: alarm points are never read less often")


class ModbusProfileDriver(PolledDriver):
    """A polled driver driven entirely by a ``ModbusProfile``.

    Subclass and set ``type_key`` and ``profile`` (e.g. with
    ``load_profile_resource``), or use the type as is and name a profile file
    in the device's options.

    Each ``poll`` is one cycle of the device's ``PollSchedule``: it reads the
    alarm-class points that are due first, at alarm priority on the line, and
    hands their readings to the core at once (``ctx.report``, see
    ``report_alarms_early``) when telemetry reads follow; then the telemetry points that are due, each read required to
    finish by ``TELEMETRY_BUDGET`` of the cycle, counted from its start, so the
    poll ends before the next cycle's alarm reads are due.  A telemetry read the
    saturated line could not fit in time is deferred (counted in
    ``telemetry_deferred`` and in the hub's stats) and read first next cycle;
    an alarm read is never skipped.  ``poll`` returns what it did not report.  ``poll`` raises a ``ModbusError`` when the
    line or the unit fails, so the core's poller marks the device unavailable;
    the poll after a failure reads every point.
    """

    type_key: ClassVar[str] = "modbus_profile"
    Options: ClassVar[type[msgspec.Struct]] = ModbusDeviceOptions
    transports: ClassVar[tuple[str, ...]] = ("modbus_tcp", "modbus_rtu")
    profile: ClassVar[ModbusProfile | None] = None
    #: hand a cycle's alarm readings to the core (``ctx.report``) before its telemetry reads.
    #: None: yes, unless a subclass overrides ``poll`` — it may combine alarm and telemetry
    #: readings (a wiring-fault flag with the value it voids, a level with what derives from
    #: it) and would then see only half; such a subclass sets True once it copes with that.
    report_alarms_early: ClassVar[bool | None] = None

    def __init__(self, options: msgspec.Struct, ctx: Any) -> None:
        super().__init__(options, ctx)
        opts: ModbusDeviceOptions = options  # type: ignore[assignment]
        if opts.profile:
            self.device_profile = load_profile(opts.profile)
        elif self.profile is not None:
            self.device_profile = self.profile
        else:
            raise ProfileError(f"{self.type_key}: no profile (set options.profile or the class attribute)")
        p = self.device_profile
        self.unit = opts.unit
        self.blocks = plan_blocks(p.points, max_gap=p.max_gap, max_count=p.max_count, max_bits=p.max_bits)
        self._last_raw: dict[str, int] = {}  # decimals registers seen, for writes of scaled points
        self._schedule_for: object = None
        self._schedule: PollSchedule | None = None
        self._planner: PollPlanner | None = None
        #: telemetry reads deferred because the line was saturated (read again next cycle)
        self.telemetry_deferred = 0
        self._too_long: set[Block] = set()  # blocks whose read alone exceeds the telemetry budget (warned)
        self.schedule  # noqa: B018 — sets poll_interval (the cycle) for the core's poller

    @property
    def line(self) -> ModbusLine:
        return self.ctx.transport

    @property
    def schedule(self) -> PollSchedule:
        """This device's schedule, from its options (re-read if a subclass replaces ``options``)."""
        opts = self.options
        if self._schedule is None or self._schedule_for is not opts:
            self._schedule = resolve_schedule(
                self.device_profile,
                default_interval=float(type(self).poll_interval),
                poll_interval=getattr(opts, "poll_interval", None),
                alarm_interval=getattr(opts, "alarm_interval", None),
                telemetry_interval=getattr(opts, "telemetry_interval", None),
            )
            self._schedule_for = opts
            self._planner = PollPlanner(self.device_profile, self._schedule)
            # The core polls every ``poll_interval``: the cycle, the shortest interval of any point.
            self.poll_interval = self._schedule.tick  # type: ignore[misc]
        return self._schedule

    @property
    def planner(self) -> PollPlanner:
        self.schedule  # noqa: B018
        assert self._planner is not None
        return self._planner

    async def setup(self) -> DeviceInfo:
        opts: ModbusDeviceOptions = self.options  # type: ignore[assignment]
        self.schedule  # noqa: B018 — options are final now
        try:
            # Proves the unit answers and the whole map can be read (identity is (line, unit)).
            # Not a poll: the schedule is untouched, so the first poll still reads every point.
            for block in self.blocks:
                self._decode(block, await self._read_block(block, None))  # also learns decimals, for writes
        except ModbusError as exc:
            from .driver import NotReady

            raise NotReady(str(exc)) from exc
        return DeviceInfo(
            identifiers={"modbus": f"{self.line.key}:{self.unit}"},
            manufacturer=self.device_profile.manufacturer,
            model=self.device_profile.model or self.device_profile.name,
            name=opts.name,
        )

    def points(self) -> list[PointSpec]:
        return self.device_profile.point_specs()

    async def _read_block(self, block: Block, lane: Lane | None, deadline: float | None = None) -> list[Any]:
        line = self.line
        try:
            if getattr(line, "lanes", False):
                return await line.read(self.unit, block.table, block.address, block.count,  # type: ignore[call-arg]
                                       lane=lane, deadline=deadline)
            return await line.read(self.unit, block.table, block.address, block.count)
        except ModbusExceptionResponse as exc:
            if exc.code == 2 and len(block.points) > 1:
                raise ModbusExceptionResponse(
                    exc.code, f"{exc.request} (a read spanning {block.count} values from {block.address}: "
                    f"if the device rejects unmapped addresses, set max_gap: 0 in profile {self.device_profile.name!r})",
                ) from None
            raise

    def _decode(self, block: Block, data: Sequence[Any]) -> list[Reading]:
        prof = self.device_profile
        readings = decode_block(prof, block, data)
        for p in (prof.point(k) for k in block.points):
            if p.width == 1 and not p.table.is_bits and p.dtype is not DType.BIT:
                seg = data[p.address - block.address: p.address - block.address + 1]
                self._last_raw[p.point_key] = int(words_to_raw(seg, p.dtype, *_orders(p, prof.defaults)))
        return readings

    async def poll(self) -> list[Reading]:
        planner = self.planner
        # The budget counts from the start of the cycle, not from the end of its alarm reads.
        deadline = time.monotonic() + TELEMETRY_BUDGET * self.schedule.tick
        cycle = planner.begin()
        readings: list[Reading] = []
        try:
            for block in cycle.alarm:
                readings.extend(self._decode(block, await self._read_block(block, Lane.ALARM)))
                planner.read(block)
            if cycle.telemetry:
                report = getattr(self.ctx, "report", None) if self._reports_early() else None
                if readings and report is not None:
                    # Alarm bits go to the core now, not after this cycle's telemetry reads
                    # (up to TELEMETRY_BUDGET of the cycle on a saturated line).
                    await report(readings)
                    readings = []
                for block in cycle.telemetry:
                    try:
                        data = await self._read_block(block, Lane.TELEMETRY, self._deadline_for(block, deadline))
                    except ModbusSkipped:
                        self.telemetry_deferred += 1  # still due: read first next cycle
                        continue
                    readings.extend(self._decode(block, data))
                    planner.read(block)
        except BaseException:
            planner.refresh()  # the next successful poll reads every point again
            raise
        return readings

    def _deadline_for(self, block: Block, deadline: float) -> float | None:
        """``deadline``, unless the line says this read alone takes longer than the whole budget:
        such a block could never be read, so it is read anyway, at telemetry rank without a
        deadline (the poll then overruns its cycle — said once in the log)."""
        estimate = getattr(self.line, "estimate_s", None)
        if estimate is None:
            return deadline
        budget = TELEMETRY_BUDGET * self.schedule.tick
        if estimate(block.table, block.count) <= budget:
            return deadline
        if block not in self._too_long:
            self._too_long.add(block)
            self.ctx.logger.warning(
                "%s unit %s: reading %s %s+%s takes ~%.2f s on this line, more than %.0f %% of the %.2f s "
                "poll cycle; read anyway, the cycle overruns (set a longer alarm_interval/poll_interval or a "
                "smaller max_count)", self.type_key, self.unit, block.table, block.address, block.count,
                estimate(block.table, block.count), 100 * TELEMETRY_BUDGET, self.schedule.tick)
        return None

    def _reports_early(self) -> bool:
        early = type(self).report_alarms_early
        return early if early is not None else type(self).poll is ModbusProfileDriver.poll

    async def write(self, point_key: str, value: Any) -> None:
        try:
            p = self.device_profile.point(point_key)
        except KeyError:
            raise ValueError(f"{self.type_key}: no point {point_key!r}") from None
        decimals = self._last_raw.get(p.decimals_from) if p.decimals_from else None
        if p.decimals_from and decimals is None:
            raise ValueError(f"{point_key}: scale unknown until {p.decimals_from} has been read")
        encoded = encode_point(p, value, self.device_profile.defaults, decimals)
        if isinstance(encoded, bool):
            await self.line.write_coil(self.unit, p.address, encoded)
        elif len(encoded) == 1:
            await self.line.write_register(self.unit, p.address, encoded[0])
        else:
            await self.line.write_registers(self.unit, p.address, encoded)
        if not p.readback:
            return
        # A command's read-back is part of the command: alarm priority, like the write.
        got = await self._read_block(Block(p.table, p.address, p.width, (p.point_key,)), Lane.ALARM)
        ok: bool
        expected: bool | list[int]
        seen: bool | list[Any]
        if isinstance(encoded, bool):
            ok, expected, seen = bool(got[0]) == encoded, encoded, bool(got[0])
        else:
            ok, expected, seen = [int(g) for g in got[: p.width]] == encoded, encoded, list(got[: p.width])
        if not ok:
            raise ModbusWriteVerifyError(f"{point_key}: wrote {expected}, read back {seen}")


__all__ = [
    "TELEMETRY_BUDGET",
    "Block",
    "DType",
    "ModbusConnectionError",
    "ModbusDeviceOptions",
    "ModbusError",
    "ModbusExceptionResponse",
    "ModbusLine",
    "ModbusProfile",
    "ModbusProfileDriver",
    "ModbusSkipped",
    "ModbusTimeoutError",
    "ModbusWriteVerifyError",
    "Order",
    "OutageLog",
    "PointMap",
    "PollCycle",
    "PollPlanner",
    "PollSchedule",
    "ProfileDefaults",
    "ProfileError",
    "RtuTiming",
    "Table",
    "decode_block",
    "decode_point",
    "encode_point",
    "encode_value",
    "frame_bytes",
    "load_profile",
    "load_profile_resource",
    "parse_profile",
    "plan_blocks",
    "profile_from_data",
    "raw_to_words",
    "resolve_schedule",
    "words_to_raw",
]
