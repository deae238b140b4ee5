"""Typed frames of GB/T 26875.3-2011: header, application data units and their objects.

Everything is a frozen msgspec Struct holding the *wire values* (ints, raw bytes), so
reserved codes, odd padding and invalid time tags survive a decode → encode round
trip byte for byte; names, engineering values and text are derived (``tables``,
properties).  Each object class carries its ADU type flag and byte layout; the codec
(``codec.py``) is driven by these layouts.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone, tzinfo
from typing import ClassVar, Literal

import msgspec

from .tables import TypeFlag

#: China Standard Time: time tags carry no zone; Chinese sites use UTC+8 unless configured.
CST = timezone(timedelta(hours=8), "CST")

FieldKind = Literal["u8", "u16", "u32", "i16", "time", "text31", "ltext", "tag"]

DESCRIPTION_SIZE = 31
TIME_SIZE = 6


class TimeTag(msgspec.Struct, frozen=True):
    """Six binary bytes on the wire: second, minute, hour, day, month, year − 2000 (§8.2.2).

    Kept as the raw byte values so an invalid tag from a device round-trips; ``valid``
    and ``to_datetime`` say what it means.
    """

    second: int
    minute: int
    hour: int
    day: int
    month: int
    year: int  # 0–99, the year − 2000

    FIELDS: ClassVar[tuple[str, ...]] = ("second", "minute", "hour", "day", "month", "year")
    LIMITS: ClassVar[dict[str, tuple[int, int]]] = {
        "second": (0, 59), "minute": (0, 59), "hour": (0, 23), "day": (1, 31), "month": (1, 12), "year": (0, 99),
    }

    @classmethod
    def from_bytes(cls, b: bytes) -> TimeTag:
        return cls(b[0], b[1], b[2], b[3], b[4], b[5])

    def to_bytes(self) -> bytes:
        return bytes((self.second, self.minute, self.hour, self.day, self.month, self.year))

    def invalid_field(self) -> tuple[int, str] | None:
        """(index, name) of the first field outside its range, or of the day for a
        day the month does not have; None if the tag is a real time."""
        for i, name in enumerate(self.FIELDS):
            lo, hi = self.LIMITS[name]
            if not lo <= getattr(self, name) <= hi:
                return i, name
        try:
            datetime(2000 + self.year, self.month, self.day)
        except ValueError:
            return 3, "day"
        return None

    @property
    def valid(self) -> bool:
        return self.invalid_field() is None

    def to_datetime(self, tz: tzinfo = CST) -> datetime | None:
        if not self.valid:
            return None
        return datetime(2000 + self.year, self.month, self.day, self.hour, self.minute, self.second, tzinfo=tz)

    @classmethod
    def from_datetime(cls, dt: datetime, tz: tzinfo = CST) -> TimeTag:
        """The tag for ``dt`` in the site time zone (naive datetimes are taken as that zone)."""
        if dt.tzinfo is not None:
            dt = dt.astimezone(tz)
        if not 2000 <= dt.year <= 2099:
            raise ValueError(f"year {dt.year} outside 2000–2099")
        return cls(dt.second, dt.minute, dt.hour, dt.day, dt.month, dt.year - 2000)

    @classmethod
    def now(cls, tz: tzinfo = CST) -> TimeTag:
        return cls.from_datetime(datetime.now(tz), tz)

    def __str__(self) -> str:
        return (f"{2000 + self.year:04d}-{self.month:02d}-{self.day:02d} "
                f"{self.hour:02d}:{self.minute:02d}:{self.second:02d}")

    _TEXT: ClassVar[re.Pattern[str]] = re.compile(
        r"^(\d{4})-(\d{1,3})-(\d{1,3})[ T](\d{1,3}):(\d{1,3}):(\d{1,3})$")

    @classmethod
    def parse(cls, text: str) -> TimeTag:
        """Inverse of ``str()``: ``"2012-09-26 09:58:02"``.  Out-of-range numbers (an
        invalid tag captured from a device) are accepted if each fits a byte."""
        m = cls._TEXT.match(text.strip())
        if not m:
            raise ValueError(f"time {text!r} is not 'YYYY-MM-DD HH:MM:SS'")
        year, month, day, hour, minute, second = (int(g) for g in m.groups())
        values = (second, minute, hour, day, month, year - 2000)
        if not all(0 <= v <= 255 for v in values):
            raise ValueError(f"time {text!r}: every field must fit one byte (year 2000–2255)")
        return cls(*values)


# ------------------------------------------------------------------------ objects

class AduObject(msgspec.Struct, frozen=True, kw_only=True):
    """Base of the information objects; subclasses set the type flag and the layout."""

    TYPE: ClassVar[int] = 0
    #: (field name, kind) in wire order; a trailing ``tag`` is the object's time tag
    LAYOUT: ClassVar[tuple[tuple[str, FieldKind], ...]] = ()

    @classmethod
    def fixed_size(cls) -> int | None:
        """Bytes per object including the time tag; None for length-prefixed text."""
        size = 0
        for _, kind in cls.LAYOUT:
            if kind == "ltext":
                return None
            size += KIND_SIZE[kind]
        return size

    @classmethod
    def has_time_tag(cls) -> bool:
        return bool(cls.LAYOUT) and cls.LAYOUT[-1][1] == "tag"


KIND_SIZE: dict[str, int] = {"u8": 1, "u16": 2, "u32": 4, "i16": 2, "time": TIME_SIZE, "text31": DESCRIPTION_SIZE,
                             "tag": TIME_SIZE}


def text_of(raw: bytes) -> str:
    """GB 18030 text of a padded field: cut at the first NUL, strip spaces (pitfall 7)."""
    cut = raw.split(b"\x00", 1)[0]
    return cut.decode("gb18030", errors="replace").strip(" ")


class _System(AduObject, frozen=True, kw_only=True):
    system_type: int
    system_address: int


class _Component(_System, frozen=True, kw_only=True):
    component_type: int
    component_address: int  # 4-byte LE binary; vendors split it (loop/point, zone/position)


class SystemState(_System, frozen=True, kw_only=True):
    """Type 1: state word of a facility system (fire alarm system, sprinkler …)."""

    TYPE = TypeFlag.SYSTEM_STATE
    LAYOUT = (("system_type", "u8"), ("system_address", "u8"), ("state", "u16"), ("time", "tag"))
    state: int
    time: TimeTag | None


class ComponentState(_Component, frozen=True, kw_only=True):
    """Type 2: running state of a component (detector, module, pump) with a description."""

    TYPE = TypeFlag.COMPONENT_STATE
    LAYOUT = (("system_type", "u8"), ("system_address", "u8"), ("component_type", "u8"),
              ("component_address", "u32"), ("state", "u16"), ("description", "text31"), ("time", "tag"))
    state: int
    description: bytes  # the raw 31 bytes (GB 18030, padded)
    time: TimeTag | None

    @property
    def description_text(self) -> str:
        return text_of(self.description)


class ComponentAnalog(_Component, frozen=True, kw_only=True):
    """Type 3: one analog value of a component (int16 × resolution of Table 6)."""

    TYPE = TypeFlag.COMPONENT_ANALOG
    LAYOUT = (("system_type", "u8"), ("system_address", "u8"), ("component_type", "u8"),
              ("component_address", "u32"), ("analog_type", "u8"), ("raw", "i16"), ("time", "tag"))
    analog_type: int
    raw: int  # int16 LE
    time: TimeTag | None


class SystemOperation(_System, frozen=True, kw_only=True):
    """Type 4: an operation on a facility system (reset, silence, acknowledge …)."""

    TYPE = TypeFlag.SYSTEM_OPERATION
    LAYOUT = (("system_type", "u8"), ("system_address", "u8"), ("operation", "u8"), ("operator", "u8"),
              ("time", "tag"))
    operation: int
    operator: int
    time: TimeTag | None


class SystemSoftwareVersion(_System, frozen=True, kw_only=True):
    TYPE = TypeFlag.SYSTEM_SOFTWARE_VERSION
    LAYOUT = (("system_type", "u8"), ("system_address", "u8"), ("major", "u8"), ("minor", "u8"))
    major: int
    minor: int


class SystemConfiguration(_System, frozen=True, kw_only=True):
    """Type 6: a system's configuration as length-prefixed GB 18030 text (0–255 bytes)."""

    TYPE = TypeFlag.SYSTEM_CONFIGURATION
    LAYOUT = (("system_type", "u8"), ("system_address", "u8"), ("text", "ltext"))
    text: bytes

    @property
    def text_value(self) -> str:
        return text_of(self.text)


class ComponentConfiguration(_Component, frozen=True, kw_only=True):
    TYPE = TypeFlag.COMPONENT_CONFIGURATION
    LAYOUT = (("system_type", "u8"), ("system_address", "u8"), ("component_type", "u8"),
              ("component_address", "u32"), ("description", "text31"))
    description: bytes

    @property
    def description_text(self) -> str:
        return text_of(self.description)


class SystemTime(_System, frozen=True, kw_only=True):
    TYPE = TypeFlag.SYSTEM_TIME
    LAYOUT = (("system_type", "u8"), ("system_address", "u8"), ("time", "time"))
    time: TimeTag


class UitdState(AduObject, frozen=True, kw_only=True):
    """Type 21: the transmission device's own state byte."""

    TYPE = TypeFlag.UITD_STATE
    LAYOUT = (("state", "u8"), ("time", "tag"))
    state: int
    time: TimeTag | None


class UitdOperation(AduObject, frozen=True, kw_only=True):
    """Type 24: an operation on the UITD (bit 5: duty check answered)."""

    TYPE = TypeFlag.UITD_OPERATION
    LAYOUT = (("operation", "u8"), ("operator", "u8"), ("time", "tag"))
    operation: int
    operator: int
    time: TimeTag | None


class UitdSoftwareVersion(AduObject, frozen=True, kw_only=True):
    TYPE = TypeFlag.UITD_SOFTWARE_VERSION
    LAYOUT = (("major", "u8"), ("minor", "u8"))
    major: int
    minor: int


class UitdConfiguration(AduObject, frozen=True, kw_only=True):
    TYPE = TypeFlag.UITD_CONFIGURATION
    LAYOUT = (("text", "ltext"),)
    text: bytes

    @property
    def text_value(self) -> str:
        return text_of(self.text)


class UitdTime(AduObject, frozen=True, kw_only=True):
    TYPE = TypeFlag.UITD_TIME
    LAYOUT = (("time", "time"),)
    time: TimeTag


_SYS = (("system_type", "u8"), ("system_address", "u8"))
_SYS_COMP = _SYS + (("component_address", "u32"),)


class ReadSystemState(_System, frozen=True, kw_only=True):
    TYPE = TypeFlag.READ_SYSTEM_STATE
    LAYOUT = _SYS


class ReadComponentState(_System, frozen=True, kw_only=True):
    """Type 62: no component type on the wire, only the address (Table 3)."""

    TYPE = TypeFlag.READ_COMPONENT_STATE
    LAYOUT = _SYS_COMP
    component_address: int


class ReadComponentAnalog(_System, frozen=True, kw_only=True):
    TYPE = TypeFlag.READ_COMPONENT_ANALOG
    LAYOUT = _SYS_COMP
    component_address: int


class ReadSystemOperations(_System, frozen=True, kw_only=True):
    TYPE = TypeFlag.READ_SYSTEM_OPERATIONS
    LAYOUT = _SYS + (("record_count", "u8"), ("start_time", "time"))
    record_count: int  # ≤ 102
    start_time: TimeTag


class ReadSystemSoftwareVersion(_System, frozen=True, kw_only=True):
    TYPE = TypeFlag.READ_SYSTEM_SOFTWARE_VERSION
    LAYOUT = _SYS


class ReadSystemConfiguration(_System, frozen=True, kw_only=True):
    TYPE = TypeFlag.READ_SYSTEM_CONFIGURATION
    LAYOUT = _SYS


class ReadComponentConfiguration(_System, frozen=True, kw_only=True):
    TYPE = TypeFlag.READ_COMPONENT_CONFIGURATION
    LAYOUT = _SYS_COMP
    component_address: int


class ReadSystemTime(_System, frozen=True, kw_only=True):
    TYPE = TypeFlag.READ_SYSTEM_TIME
    LAYOUT = _SYS


class _Reserved(AduObject, frozen=True, kw_only=True):
    """One reserved byte, 0 by the standard."""

    LAYOUT = (("reserved", "u8"),)
    reserved: int = 0


class ReadUitdState(_Reserved, frozen=True, kw_only=True):
    TYPE = TypeFlag.READ_UITD_STATE


class ReadUitdOperations(AduObject, frozen=True, kw_only=True):
    TYPE = TypeFlag.READ_UITD_OPERATIONS
    LAYOUT = (("record_count", "u8"), ("start_time", "time"))
    record_count: int
    start_time: TimeTag


class ReadUitdSoftwareVersion(_Reserved, frozen=True, kw_only=True):
    TYPE = TypeFlag.READ_UITD_SOFTWARE_VERSION


class ReadUitdConfiguration(_Reserved, frozen=True, kw_only=True):
    TYPE = TypeFlag.READ_UITD_CONFIGURATION


class ReadUitdTime(_Reserved, frozen=True, kw_only=True):
    TYPE = TypeFlag.READ_UITD_TIME


class InitUitd(_Reserved, frozen=True, kw_only=True):
    TYPE = TypeFlag.INIT_UITD


class SyncClock(AduObject, frozen=True, kw_only=True):
    """Type 90: the centre's clock (6-byte time, Fig. 45 and vector J1)."""

    TYPE = TypeFlag.SYNC_CLOCK
    LAYOUT = (("time", "time"),)
    time: TimeTag


class DutyCheck(AduObject, frozen=True, kw_only=True):
    """Type 91 (查岗): one byte whose meaning is unconfirmed (the digest's example sends
    0x0A, "10 minutes"); any value is accepted and kept."""

    TYPE = TypeFlag.DUTY_CHECK
    LAYOUT = (("parameter", "u8"),)
    parameter: int = 10


OBJECT_CLASSES: dict[int, type[AduObject]] = {
    cls.TYPE: cls for cls in (
        SystemState, ComponentState, ComponentAnalog, SystemOperation, SystemSoftwareVersion,
        SystemConfiguration, ComponentConfiguration, SystemTime, UitdState, UitdOperation,
        UitdSoftwareVersion, UitdConfiguration, UitdTime, ReadSystemState, ReadComponentState,
        ReadComponentAnalog, ReadSystemOperations, ReadSystemSoftwareVersion, ReadSystemConfiguration,
        ReadComponentConfiguration, ReadSystemTime, ReadUitdState, ReadUitdOperations,
        ReadUitdSoftwareVersion, ReadUitdConfiguration, ReadUitdTime, InitUitd, SyncClock, DutyCheck,
    )
}

#: maximum object count per ADU (§8.1, §8.3; every one keeps 2 + n × size ≤ 1024)
MAX_COUNT: dict[int, int] = {
    1: 102, 2: 22, 3: 63, 4: 102, 5: 1, 6: 3, 7: 26, 8: 1, 21: 1, 24: 127, 25: 1, 26: 1, 28: 1,
    61: 102, 62: 22, 63: 63, 64: 1, 65: 1, 66: 3, 67: 26, 68: 1,
    81: 1, 84: 1, 85: 1, 86: 1, 88: 1, 89: 1, 90: 1, 91: 1,
}

#: record counts a read-records request may ask for (types 64 and 84)
MAX_RECORDS = 102


# --------------------------------------------------------------- ADU and frame

class Adu(msgspec.Struct, frozen=True):
    """A standard ADU: type flag, and its objects (all of the class for ``type``)."""

    type: int
    objects: tuple[AduObject, ...]


class RawAdu(msgspec.Struct, frozen=True):
    """An ADU of a reserved or user-defined type: the objects' layout is unknown, so the
    bytes after the type flag and count are kept as they are."""

    type: int
    count: int
    data: bytes


class OpaqueAdu(msgspec.Struct, frozen=True):
    """The ADU of a user-defined command (128–255): no structure assumed."""

    data: bytes


AnyAdu = Adu | RawAdu | OpaqueAdu

MAX_ADU = 1024
HEADER_SIZE = 27  # bytes before the ADU: start, control unit, command
MIN_FRAME = 30
MAX_FRAME = MIN_FRAME + MAX_ADU
START = b"@@"
END = b"##"
ADDRESS_SIZE = 6


class Header(msgspec.Struct, frozen=True, kw_only=True):
    """The control unit (§6.6, Table 1) and the command byte."""

    serial: int
    version_main: int = 1
    version_user: int = 1
    time: TimeTag
    source: bytes  # 6 raw bytes; as an integer, 48-bit little-endian
    destination: bytes
    command: int


class Frame(msgspec.Struct, frozen=True):
    header: Header
    adu: AnyAdu | None = None  # None: empty ADU (confirm, deny, heartbeat)

    @property
    def is_heartbeat(self) -> bool:
        """cmd 2 with an empty ADU: the field-practice heartbeat (pitfall 5)."""
        return self.header.command == 2 and self.adu is None


def address(value: int | bytes) -> bytes:
    """Six address bytes from an integer (48-bit LE) or from the bytes themselves."""
    if isinstance(value, bytes):
        if len(value) != ADDRESS_SIZE:
            raise ValueError(f"an address is 6 bytes, got {len(value)}")
        return value
    if not 0 <= value < 1 << 48:
        raise ValueError(f"address {value} outside 0 … 2^48−1")
    return value.to_bytes(ADDRESS_SIZE, "little")


def address_int(raw: bytes) -> int:
    return int.from_bytes(raw, "little")


def fire_in(adu: AnyAdu | None) -> bool:
    """A fire alarm (state bit 1 in types 1, 2 and 21; checklist item 9)."""
    if not isinstance(adu, Adu):
        return False
    return any(isinstance(o, (SystemState, ComponentState, UitdState)) and o.state & 0b10 for o in adu.objects)
