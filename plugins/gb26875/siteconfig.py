"""The ``gb26875:`` section of the site file (the uplink) and the centre transport's options.

Everything is a msgspec Struct with ``forbid_unknown_fields``, so a misspelt key is an
error naming its path (``gb26875.uplink.centres[0].port``), reported by the core as
``site.yaml:LINE: path: message`` (``firebus_validate_site``).
"""

from __future__ import annotations

import re
from datetime import timedelta, timezone, tzinfo
from enum import StrEnum
from typing import Any

import msgspec

from .model import address as _address

_TZ = re.compile(r"^(?:UTC)?([+-])(\d{2}):?(\d{2})$")


def parse_address(value: int | str) -> bytes:
    """A 6-byte address: an integer (48-bit LE value) or ``h:`` and 12 hex digits (wire order)."""
    if isinstance(value, bool):
        raise ValueError("an address is an integer or 'h:' and 12 hex digits")
    if isinstance(value, int):
        return _address(value)
    text = str(value).strip()
    if text.lower().startswith("h:"):
        digits = text[2:]
        if not re.fullmatch(r"[0-9A-Fa-f]{12}", digits):
            raise ValueError(f"{text!r}: 'h:' needs 12 hex digits (6 bytes in wire order)")
        return bytes.fromhex(digits)
    if text.isdigit():
        return _address(int(text))
    raise ValueError(f"{text!r} is not an address (integer 0 … 2^48−1, or h: and 12 hex digits)")


def parse_tz(text: str) -> tzinfo:
    m = _TZ.match(text.strip())
    if not m:
        raise ValueError(f"{text!r} is not a UTC offset like +08:00")
    sign = 1 if m.group(1) == "+" else -1
    return timezone(sign * timedelta(hours=int(m.group(2)), minutes=int(m.group(3))))


class Send(StrEnum):
    """What the uplink uploads (``gb26875.uplink.send``)."""

    ALARMS = "alarms"  # AlarmEvent new/cleared → type 2 (or 1 / 21) state with fire/fault/supervisory bits
    OPERATIONS = "operations"  # AlarmEvent acknowledged/silenced/cleared by a person → type 4 records
    STATES = "states"  # StateChanged of running-state points (pump, valve, fan, mode, fault) → type 2
    ANALOGS = "analogs"  # StateChanged of analog points (residual current, °C, %LEL, MPa, m) → type 3
    AVAILABILITY = "availability"  # AvailabilityChanged → type 2 fault bit of the device


class CentreEndpoint(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    host: str
    port: int

    def __post_init__(self) -> None:
        if not 1 <= self.port <= 65535:
            raise ValueError(f"port: {self.port} outside 1 … 65535")


class ComponentOverride(msgspec.Struct, frozen=True, forbid_unknown_fields=True, omit_defaults=True):
    """Per-device codes (the fire panel's own addresses, a centre's conventions)."""

    system_type: int | None = None
    system_address: int | None = None
    component_type: int | None = None
    #: the device's number (first two bytes of the component address), 1 … 65535
    device_number: int | None = None

    def __post_init__(self) -> None:
        for name in ("system_type", "system_address", "component_type"):
            v = getattr(self, name)
            if v is not None and not 0 <= v <= 255:
                raise ValueError(f"{name}: {v} outside 0 … 255")
        if self.device_number is not None and not 1 <= self.device_number <= 0xFFFF:
            raise ValueError(f"device_number: {self.device_number} outside 1 … 65535")


class UplinkConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """``gb26875.uplink``: firebus as the site's user information transmission device."""

    address: int | str  # this UITD's 6-byte address
    centres: list[CentreEndpoint]  # primary first, then backups
    centre_address: int | str = 0  # the centre's 6-byte address (destination)
    enabled: bool = True
    send: list[Send] = msgspec.field(default_factory=lambda: list(Send))
    timeout: float = 10.0  # s to wait for confirm before resending (§6.5.4: ≤ 10)
    resends: int = 3
    heartbeat: float = 30.0  # s of silence before an empty cmd 2 (0: off)
    window: int = 1  # exchanges open at once (1: stop-and-wait)
    fire_window: int = 4  # extra slots fire alarms have of their own
    connect_timeout: float = 5.0
    reconnect_max: float = 30.0
    max_unacked: int = 1000  # journal entries sent and not yet confirmed; telemetry waits past it
    tz: str = "+08:00"  # the zone time tags are written in
    system_address: int = 1  # default system address (one UITD per unit)
    operator: int = 1  # operator number written in operation records made by a person
    devices: dict[str, ComponentOverride] = {}  # device id or site-file key → codes
    #: component-state description (31 bytes GB 18030): device name, else point key
    describe: bool = True

    def __post_init__(self) -> None:
        _field("address", parse_address, self.address)
        _field("centre_address", parse_address, self.centre_address)
        _field("tz", parse_tz, self.tz)
        if not self.centres:
            raise ValueError("centres: at least one centre is needed (primary first, then backups)")
        if not 0 < self.timeout <= 60:
            raise ValueError(f"timeout: {self.timeout} outside 0 … 60 s")
        if not 0 <= self.resends <= 10:
            raise ValueError(f"resends: {self.resends} outside 0 … 10")
        if self.window < 1:
            raise ValueError("window: at least 1")
        if self.fire_window < 1:
            raise ValueError("fire_window: at least 1")
        if self.max_unacked < 1:
            raise ValueError("max_unacked: at least 1")
        if not 0 <= self.system_address <= 255:
            raise ValueError("system_address: 0 … 255")
        if not 0 <= self.operator <= 255:
            raise ValueError("operator: 0 … 255")


class Section(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    uplink: UplinkConfig | None = None


class CentreOptions(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Options of a ``transports:`` entry of type ``gb26875.centre`` (firebus as a centre)."""

    port: int
    host: str = "0.0.0.0"
    address: int | str = 0  # this centre's 6-byte address
    #: device addresses allowed to connect; empty: the addresses of the configured
    #: ``gb26875.gateway`` devices (a gateway nobody configured is refused and counted)
    allow_addresses: list[int | str] = []
    allow_ips: list[str] = []  # CIDR; empty: any
    max_connections: int = 256
    max_per_ip: int = 16
    rate: float = 50.0  # inbound frames/s per connection (token bucket); 0: unlimited
    burst: int = 200
    idle_timeout: float = 120.0  # s without a byte before the connection is closed (0: off)
    timeout: float = 10.0
    resends: int = 3
    tz: str = "+08:00"
    strict: bool = False

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port: {self.port} outside 0 … 65535")
        _field("address", parse_address, self.address)
        for i, a in enumerate(self.allow_addresses):
            _field(f"allow_addresses[{i}]", parse_address, a)
        _field("tz", parse_tz, self.tz)


def _field(name: str, check: Any, value: Any) -> None:
    try:
        check(value)
    except ValueError as exc:
        raise ValueError(f"{name}: {exc}") from None


_NAMED = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*(?:\[\d+\])?): (.*)$", re.S)
_UNKNOWN = re.compile(r"unknown field `([^`]+)`")


def load_section(section: dict[str, Any]) -> Section:
    return msgspec.convert(section, Section)


def problem_path(exc: msgspec.ValidationError, prefix: str) -> tuple[str, str]:
    """(path, message) from msgspec's ``Expected …  - at `$.uplink.centres[0].port``` text."""
    text = str(exc)
    message, _, at = text.partition(" - at `")
    path = at.rstrip("`")
    path = prefix + path[1:] if path.startswith("$") else prefix
    named = _NAMED.match(message)
    if named:  # a check of one field: point at its line
        path, message = f"{path}.{named.group(1)}", named.group(2)
    unknown = _UNKNOWN.search(message)
    if unknown:
        path = f"{path}.{unknown.group(1)}"
    return path, message
