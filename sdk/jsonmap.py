"""JSON payload mapping for push devices: the MQTT counterpart of ``firebus.sdk.modbus``.

Wireless detectors (NB-IoT smoke alarms, hydrant monitors, Zigbee gateways)
publish JSON whose shape differs per vendor but whose facts do not: who sent it
(IMEI, serial), when, and a handful of states and measurements.  A *payload
profile* is data (YAML or TOML) that says where each fact lives, so adding a
vendor is a file, not code::

    name: generic
    topics: ["firebus/smoke/+/up"]
    identity:
      - {namespace: imei, path: imei, pattern: "^[0-9]{15}$"}
    timestamp: {path: ts, unit: s}
    required: [imei, state]
    points:
      smoke:   {path: state.smoke, type: bool, point_class: smoke}
      battery: {path: battery, type: number, unit: "%", point_class: battery, min: 0, max: 100}
      self_test: {path: event, match: [test], point_class: self_test}
    commands:
      mute: {topic: "firebus/smoke/{imei}/down", payload: {cmd: mute}}

Paths are dotted (``data.physicalNumber``), may index lists (``items[0]``) or
collect from every element (``data.currentStatus[*].category``).  A point is
read one of three ways: as a value (``type`` number / int / bool / str / any,
then ``scale``/``offset``/``precision``), as a ``match`` (true when the value,
or any collected element, is one of the listed values: status codes, event
names), or through ``values`` (a table from raw value to reading value).

Bad input is never guessed at: ``decode`` raises ``ValueError`` naming the
field for a payload that is not JSON, lacks an identity or a required field,
or carries a value of the wrong type, and the core quarantines the message.
A value of the right type outside ``min``/``max`` becomes a faulty reading
(``Reading.fault``), so one bad battery figure does not hide a smoke alarm in
the same message.
"""

from __future__ import annotations

import json
import math
import re
from importlib import resources
from pathlib import Path
from typing import Any, ClassVar, Literal

import msgspec

from .profile_data import ProfileError, parse_profile_data
from .driver import DeviceInfo, DeviceReport, PointSpec, PushDriver, Reading
from .extension import MessageTransport

# --------------------------------------------------------------------------- profile format


class IdentityMap(msgspec.Struct, frozen=True, forbid_unknown_fields=True, omit_defaults=True):
    """Where one hardware identifier comes from: a payload path or a topic level (0-based)."""

    namespace: str  # registry namespace: imei, serial, ieee …
    path: str | None = None
    topic_level: int | None = None
    #: what a valid identifier looks like; anything else is a malformed message
    pattern: str = r"^[0-9A-Za-z_.:\-]{1,64}$"

    def __post_init__(self) -> None:
        if (self.path is None) == (self.topic_level is None):
            raise ValueError(f"identity {self.namespace!r}: give exactly one of path / topic_level")
        re.compile(self.pattern)


class TimestampMap(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    path: str
    unit: Literal["s", "ms"] = "s"


class FieldMap(msgspec.Struct, frozen=True, forbid_unknown_fields=True, omit_defaults=True):
    """One point: where it is in the payload and how its raw value becomes a reading."""

    path: str
    point_class: str = ""  # default: the point key
    unit: str = ""
    name: str = ""
    type: Literal["number", "int", "bool", "str", "any"] = "any"
    scale: float = 1.0
    offset: float = 0.0
    precision: int | None = None
    #: true when the value (or any element collected with [*]) is one of these
    match: list[Any] | None = None
    #: raw value (compared as text) → reading value
    values: dict[str, Any] | None = None
    #: a raw value not in ``values``: a faulty reading, or no reading at all ("skip": event
    #: formats, where one message names one event and leaves the other states as they are)
    unmatched: Literal["fault", "skip"] = "fault"
    #: plausible range of the engineering value; outside → faulty reading, not a value
    min: float | None = None
    max: float | None = None
    #: absent from a message → no reading (False: the message is malformed without it)
    optional: bool = True
    writable: bool = False
    expected_interval: float | None = None

    def __post_init__(self) -> None:
        if self.match is not None and self.values is not None:
            raise ValueError(f"point at {self.path!r}: use match or values, not both")
        if self.scale == 0:
            raise ValueError(f"point at {self.path!r}: scale must not be 0")
        _parse_path(self.path)


class AcceptMap(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Only messages whose ``path`` holds one of ``values`` are this profile's (shared topics).

    Others are not malformed, just not ours (a LoRaWAN network server publishes every
    device type of an application on one topic pattern): ``decode`` returns nothing.
    """

    path: str
    values: list[Any]


class CommandMap(msgspec.Struct, frozen=True, forbid_unknown_fields=True, omit_defaults=True):
    """A command published back to the device.

    ``topic`` and string leaves of ``payload`` are templates: ``{imei}`` (any identity
    namespace) and ``{value}``; a leaf that is exactly ``"{value}"`` keeps the value's type.
    """

    topic: str
    payload: Any = None
    qos: int = 1
    #: accepted values (None: any)
    accepts: list[Any] | None = None


class JsonProfile(msgspec.Struct, frozen=True, forbid_unknown_fields=True, omit_defaults=True):
    name: str
    topics: list[str]
    identity: list[IdentityMap]
    points: dict[str, FieldMap]
    manufacturer: str = ""
    model: str = ""
    description: str = ""
    source: str = ""  # where the format comes from (public codec, documentation)
    timestamp: TimestampMap | None = None
    accept: AcceptMap | None = None
    required: list[str] = []
    commands: dict[str, CommandMap] = {}

    def __post_init__(self) -> None:
        if not self.topics:
            raise ValueError("topics must not be empty")
        if not self.identity:
            raise ValueError("identity must name at least one identifier")
        if not self.points:
            raise ValueError("points must not be empty")
        for path in self.required:
            _parse_path(path)

    def point_specs(self) -> list[PointSpec]:
        specs = [
            PointSpec(
                key=key, point_class=f.point_class or key, unit=f.unit, name=f.name,
                writable=f.writable or key in self.commands,
            )
            for key, f in self.points.items()
        ]
        # A command with no state of its own (e.g. "self_test_start") is still a point people can write.
        specs += [PointSpec(key=k, point_class="command", writable=True) for k in self.commands if k not in self.points]
        return specs


def profile_from_data(data: Any, source: str = "<data>") -> JsonProfile:
    try:
        return msgspec.convert(data, JsonProfile, strict=False)
    except (msgspec.ValidationError, ValueError, TypeError, re.error) as exc:
        raise ProfileError(f"{source}: {exc}") from None


def parse_profile(text: str, filename: str, source: str | None = None) -> JsonProfile:
    source = source or filename
    return profile_from_data(parse_profile_data(text, filename, source, ProfileError), source)


def load_profile(path: str | Path) -> JsonProfile:
    path = Path(path)
    return parse_profile(path.read_text(encoding="utf-8"), path.name, str(path))


def load_profile_resource(package: str, name: str) -> JsonProfile:
    ref = resources.files(package).joinpath(name)
    return parse_profile(ref.read_text(encoding="utf-8"), name, f"{package}/{name}")


# --------------------------------------------------------------------------- paths

_MISSING = object()
_SEGMENT = re.compile(r"([^.\[\]]+)|\[(\d+|\*)\]")


def _parse_path(path: str) -> tuple[str | int, ...]:
    parts: list[str | int] = []
    pos = 0
    text = path.strip()
    if not text:
        raise ValueError("empty path")
    while pos < len(text):
        if text[pos] == ".":
            pos += 1
            continue
        m = _SEGMENT.match(text, pos)
        if m is None:
            raise ValueError(f"bad path {path!r} at {pos}")
        name, index = m.groups()
        parts.append(name if name is not None else ("*" if index == "*" else int(index)))
        pos = m.end()
    return tuple(parts)


def lookup(data: Any, path: str) -> Any:
    """Value at ``path`` (a list when the path collects with ``[*]``), or ``MISSING``."""
    return _walk(data, _parse_path(path))


def _walk(data: Any, parts: tuple[str | int, ...]) -> Any:
    for i, part in enumerate(parts):
        if part == "*":
            if not isinstance(data, list):
                return _MISSING
            out = []
            for item in data:
                got = _walk(item, parts[i + 1:])
                if got is _MISSING:
                    continue
                out.extend(got if isinstance(got, list) and "*" in parts[i + 1:] else [got])
            return out
        if isinstance(part, int):
            if not isinstance(data, list) or part >= len(data):
                return _MISSING
            data = data[part]
        else:
            if not isinstance(data, dict) or part not in data:
                return _MISSING
            data = data[part]
    return data


MISSING = _MISSING

# --------------------------------------------------------------------------- decoding

_TRUE = {"1", "true", "on", "yes"}
_FALSE = {"0", "false", "off", "no"}


def _bad(key: str, f: FieldMap, raw: Any, want: str) -> ValueError:
    return ValueError(f"point {key!r}: expected {want} at {f.path!r}, got {raw!r}")


def _as_number(key: str, f: FieldMap, raw: Any) -> float:
    if isinstance(raw, bool):
        raise _bad(key, f, raw, "a number")
    if isinstance(raw, (int, float)):
        value = float(raw)
    elif isinstance(raw, str):
        try:
            value = float(raw.strip())
        except ValueError:
            raise _bad(key, f, raw, "a number") from None
    else:
        raise _bad(key, f, raw, "a number")
    if not math.isfinite(value):
        raise _bad(key, f, raw, "a finite number")
    return value


def _as_bool(key: str, f: FieldMap, raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, (int, float)) and raw in (0, 1):
        return bool(raw)
    if isinstance(raw, str) and raw.strip().lower() in _TRUE | _FALSE:
        return raw.strip().lower() in _TRUE
    raise _bad(key, f, raw, "a boolean (true/false, 0/1)")


def decode_field(key: str, f: FieldMap, raw: Any) -> Reading | None:
    """One point's reading from its raw value (None: skipped).  ``ValueError`` for a value of the wrong type."""
    if f.match is not None:
        items = raw if isinstance(raw, list) else [raw]
        wanted = {_norm(m) for m in f.match}
        return Reading(point_key=key, value=any(_norm(item) in wanted for item in items))
    if f.values is not None:
        if isinstance(raw, (dict, list)):
            raise _bad(key, f, raw, "a scalar")
        text = _norm(raw)
        for k, v in f.values.items():
            if _norm(k) == text:
                return Reading(point_key=key, value=v)
        if f.unmatched == "skip":
            return None
        return Reading(point_key=key, value=None, fault=f"unknown state {raw!r}")
    if f.type == "bool":
        return Reading(point_key=key, value=_as_bool(key, f, raw))
    if f.type == "str":
        if isinstance(raw, (dict, list)) or raw is None:
            raise _bad(key, f, raw, "text")
        return Reading(point_key=key, value=str(raw))
    if f.type in ("number", "int"):
        value: float | int = _as_number(key, f, raw) * f.scale + f.offset
        if f.precision is not None:
            value = round(value, f.precision)
        if f.type == "int":
            if value != int(value):
                raise _bad(key, f, raw, "an integer")
            value = int(value)
        if (f.min is not None and value < f.min) or (f.max is not None and value > f.max):
            return Reading(point_key=key, value=None, fault=f"out of range: {value:g} not in [{f.min}, {f.max}]")
        return Reading(point_key=key, value=value)
    return Reading(point_key=key, value=raw)


def _norm(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip().lower()


def parse_json(payload: bytes) -> dict[str, Any]:
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"payload is not UTF-8 text (byte {exc.start})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"payload is not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    if not isinstance(data, dict):
        raise ValueError(f"payload must be a JSON object, got {type(data).__name__}")
    return data


def identities(profile: JsonProfile, topic: str, data: dict[str, Any]) -> dict[str, str]:
    """Hardware identifiers named by the message; ``ValueError`` if none or one is malformed."""
    levels = topic.split("/")
    out: dict[str, str] = {}
    for ident in profile.identity:
        if ident.path is not None:
            raw = lookup(data, ident.path)
            where = f"field {ident.path!r}"
        else:
            level = int(ident.topic_level or 0)
            raw = levels[level] if level < len(levels) else _MISSING
            where = f"topic level {level} of {topic!r}"
        if raw is _MISSING or raw is None or raw == "":
            continue
        if isinstance(raw, (dict, list, bool)):
            raise ValueError(f"identity {ident.namespace}: {where} is {raw!r}, not an identifier")
        text = str(raw).strip()
        if not re.fullmatch(ident.pattern, text):
            raise ValueError(f"identity {ident.namespace}: {where} = {text!r} does not match {ident.pattern!r}")
        out[ident.namespace] = text
    if not out:
        wanted = ", ".join(i.path or f"topic level {i.topic_level}" for i in profile.identity)
        raise ValueError(f"no device identity in the message (looked at {wanted})")
    return out


def decode_message(profile: JsonProfile, topic: str, payload: bytes) -> DeviceReport | None:
    """One message → one ``DeviceReport`` (None: not this profile's, see ``accept``).

    Raises ``ValueError`` with the reason for anything malformed.
    """
    data = parse_json(payload)
    if profile.accept is not None:
        found = lookup(data, profile.accept.path)
        items = found if isinstance(found, list) else [found]
        wanted = {_norm(v) for v in profile.accept.values}
        if found is _MISSING or not any(_norm(i) in wanted for i in items):
            return None
    ids = identities(profile, topic, data)
    for path in profile.required:
        if lookup(data, path) is _MISSING:
            raise ValueError(f"required field {path!r} missing")
    ts: float | None = None
    if profile.timestamp is not None:
        raw_ts = lookup(data, profile.timestamp.path)
        if raw_ts is not _MISSING and raw_ts is not None:
            if isinstance(raw_ts, bool) or not isinstance(raw_ts, (int, float)) or not math.isfinite(raw_ts):
                raise ValueError(f"timestamp at {profile.timestamp.path!r} is {raw_ts!r}, not epoch {profile.timestamp.unit}")
            ts = float(raw_ts) / (1000.0 if profile.timestamp.unit == "ms" else 1.0)
            if ts <= 0:
                ts = None  # devices without a clock send 0: use the receive time
    readings: list[Reading] = []
    for key, f in profile.points.items():
        raw = lookup(data, f.path)
        if raw is _MISSING or (raw is None and f.match is None):
            if not f.optional:
                raise ValueError(f"point {key!r}: field {f.path!r} missing")
            continue
        reading = decode_field(key, f, raw)
        if reading is None:
            continue
        readings.append(msgspec.structs.replace(reading, ts=ts) if ts is not None else reading)
    if not readings:
        raise ValueError(f"nothing mappable: none of the fields of profile {profile.name!r} is in the message")
    info = DeviceInfo(identifiers=ids, manufacturer=profile.manufacturer, model=profile.model or profile.name)
    return DeviceReport(identifiers=ids, readings=readings, info=info)


def _fill(template: Any, names: dict[str, Any], value: Any) -> Any:
    if isinstance(template, str):
        if template == "{value}":
            return value
        return template.format_map({**names, "value": value})
    if isinstance(template, dict):
        return {k: _fill(v, names, value) for k, v in template.items()}
    if isinstance(template, list):
        return [_fill(v, names, value) for v in template]
    return template


def encode_command(profile: JsonProfile, identifiers: dict[str, str], key: str, value: Any) -> tuple[str, bytes, int]:
    """(topic, payload, qos) of a command; ``ValueError`` if the profile cannot send it."""
    cmd = profile.commands.get(key)
    if cmd is None:
        can = sorted(profile.commands) or "none"
        raise ValueError(f"profile {profile.name!r} has no command {key!r} (commands: {can})")
    if cmd.accepts is not None and _norm(value) not in {_norm(a) for a in cmd.accepts}:
        raise ValueError(f"command {key!r} accepts {cmd.accepts}, got {value!r}")
    try:
        topic = cmd.topic.format_map({**identifiers, "value": value})
        body = _fill(cmd.payload, identifiers, value)
    except KeyError as exc:
        raise ValueError(f"command {key!r} needs identifier {exc.args[0]!r}, device has {sorted(identifiers)}") from None
    payload = body.encode() if isinstance(body, str) else json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
    return topic, payload, cmd.qos


# --------------------------------------------------------------------------- driver


class JsonDeviceOptions(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """Per-device options of a profile-driven push driver (nothing is needed: identity is in the site file)."""

    name: str = ""


class JsonProfileDriver(PushDriver):
    """A push driver driven entirely by a ``JsonProfile``.

    Subclass with ``type_key`` and ``profile`` (``make_driver`` does it), one
    driver type per payload format: the core runs one instance per (transport,
    driver type) and hands it every message on the profile's topics.
    """

    type_key: ClassVar[str] = "json_profile"
    Options: ClassVar[type[msgspec.Struct]] = JsonDeviceOptions
    transports: ClassVar[tuple[str, ...]] = ("mqtt",)
    profile: ClassVar[JsonProfile]

    def subscriptions(self) -> list[str]:
        return list(self.profile.topics)

    def decode(self, topic: str, payload: bytes) -> list[DeviceReport]:
        report = decode_message(self.profile, topic, payload)
        return [report] if report is not None else []

    def points_for(self, report: DeviceReport) -> list[PointSpec]:
        return self.profile.point_specs()

    async def write(self, identifiers: dict[str, str], point_key: str, value: Any) -> None:
        topic, payload, qos = encode_command(self.profile, identifiers, point_key, value)
        transport = self.ctx.transport
        if not isinstance(transport, MessageTransport):
            raise RuntimeError(f"{self.type_key}: no MQTT transport to publish {point_key!r} on")
        await transport.publish(topic, payload, qos=qos)


def make_driver(profile: JsonProfile, type_key: str, base: type[JsonProfileDriver] = JsonProfileDriver) -> type[JsonProfileDriver]:
    """A driver class for one payload profile (``smoke.nb_carrier`` …)."""
    name = "".join(part.capitalize() for part in re.split(r"[^0-9A-Za-z]+", type_key)) + "Driver"
    return type(name, (base,), {"type_key": type_key, "profile": profile, "__doc__": profile.description or None})


__all__ = [
    "AcceptMap",
    "CommandMap",
    "FieldMap",
    "IdentityMap",
    "JsonDeviceOptions",
    "JsonProfile",
    "JsonProfileDriver",
    "MISSING",
    "ProfileError",
    "TimestampMap",
    "decode_field",
    "decode_message",
    "encode_command",
    "identities",
    "load_profile",
    "load_profile_resource",
    "lookup",
    "make_driver",
    "parse_json",
    "parse_profile",
    "profile_from_data",
]
