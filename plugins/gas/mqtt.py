"""MQTT JSON gas alarms: a push driver whose payload mapping is a data profile.

A profile (``profiles/*.yaml`` with ``format: json``) says which topics to
subscribe to, where the device identity, the timestamp and each point are in
the JSON, how raw values map to point values, and how to send commands.
Rules of the mapping:

* a path that is absent in a message gives **no** reading (an event-only message
  does not reset the concentration to zero);
* ``sentinels`` turn raw values into faults ("-1": sensor fault), never readings;
* ``equals`` makes a boolean point (status code in a list); ``map`` translates
  raw values (compared as text); a raw value outside ``map`` is a fault
  ``unknown_state_<raw>``;
* a message without the identity, or not a JSON object, is rejected with the
  reason (the core quarantines it; nothing is dropped silently).
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

import msgspec

from firebus.sdk import DeviceInfo, DeviceReport, PointSpec, PushDriver, Reading
from firebus.sdk.channels import link_wiring_faults, shipped_profiles
from firebus.sdk.modbus import ProfileError

PROFILE_PACKAGE = "firebus.plugins.gas.profiles"


class JsonPoint(msgspec.Struct, frozen=True, forbid_unknown_fields=True, omit_defaults=True):
    key: str
    point_class: str
    path: str | None = None  # dotted path; None: a command-only point (never reported)
    name: str = ""
    unit: str = ""
    scale: float = 1.0
    offset: float = 0.0
    precision: int | None = None
    sentinels: dict[str, str] = {}
    equals: list[Any] | None = None
    map: dict[str, Any] = {}
    writable: bool = False


class JsonCommand(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    topic: str  # template: {<identity namespace>} e.g. {serial}
    payload: Any  # JSON template; the string "{value}" anywhere is replaced
    values: dict[str, Any] = {}  # point value (as lower-case text) -> what to send
    qos: int = 1


class Timestamp(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    path: str
    scale: float = 1.0  # 0.001 for milliseconds


class JsonProfile(msgspec.Struct, frozen=True, forbid_unknown_fields=True, omit_defaults=True):
    name: str
    topics: list[str]
    identity: dict[str, str]  # namespace -> path ("topic:1" = second topic level)
    points: list[JsonPoint]
    format: str = "json"
    manufacturer: str = ""
    model: str = ""
    description: str = ""
    timestamp: Timestamp | None = None
    commands: dict[str, JsonCommand] = {}

    def __post_init__(self) -> None:
        if self.format != "json":
            raise ValueError(f"format must be 'json', got {self.format!r}")
        if not self.identity or not self.topics:
            raise ValueError("a JSON profile needs topics and an identity")
        keys = [p.key for p in self.points]
        if len(set(keys)) != len(keys):
            raise ValueError(f"point keys repeat: {keys}")
        for key in self.commands:
            point = next((p for p in self.points if p.key == key), None)
            if point is None or not point.writable:
                raise ValueError(f"command {key!r} needs a writable point of that key")
        for p in self.points:
            if p.writable and p.key not in self.commands:
                raise ValueError(f"writable point {p.key!r} has no command")
            if p.path is None and not p.writable:
                raise ValueError(f"point {p.key!r} has no path")


def load_json_profile(name_or_path: str) -> JsonProfile:
    """A shipped JSON profile by name, or a file path."""
    import yaml
    from importlib import resources
    from pathlib import Path

    if name_or_path in shipped_profiles(PROFILE_PACKAGE):
        text = resources.files(PROFILE_PACKAGE).joinpath(name_or_path + ".yaml").read_text(encoding="utf-8")
        source = f"{PROFILE_PACKAGE}/{name_or_path}.yaml"
    else:
        path = Path(name_or_path)
        if not path.is_file():
            raise ProfileError(f"unknown JSON profile {name_or_path!r} (shipped: {shipped_profiles(PROFILE_PACKAGE)})")
        text, source = path.read_text(encoding="utf-8"), str(path)
    try:
        return msgspec.convert(yaml.safe_load(text), JsonProfile, strict=False)
    except (msgspec.ValidationError, ValueError, yaml.YAMLError) as exc:
        raise ProfileError(f"{source}: {exc}") from None


class GasMqttOptions(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """One JSON profile per (MQTT transport, driver): the first configured device's options win."""

    profile: str = "household_json"

    def __post_init__(self) -> None:
        load_json_profile(self.profile)  # a bad name or file fails at file:line


_MISSING = object()


def _get(data: Any, path: str, topic: str) -> Any:
    if path.startswith("topic:"):
        parts = topic.split("/")
        index = int(path[6:])
        return parts[index] if index < len(parts) else _MISSING
    for part in path.split("."):
        if isinstance(data, dict):
            data = data.get(part, _MISSING)
        elif isinstance(data, list) and part.isdigit() and int(part) < len(data):
            data = data[int(part)]
        else:
            return _MISSING
        if data is _MISSING:
            return _MISSING
    return data


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def decode_point(p: JsonPoint, raw: Any) -> Reading:
    if _text(raw) in p.sentinels:
        return Reading(point_key=p.key, value=None, fault=p.sentinels[_text(raw)])
    if p.equals is not None:
        return Reading(point_key=p.key, value=_text(raw) in {_text(v) for v in p.equals})
    if p.map:
        if _text(raw) not in p.map:
            return Reading(point_key=p.key, value=None, fault=f"unknown_state_{_text(raw)}")
        return Reading(point_key=p.key, value=p.map[_text(raw)])
    if isinstance(raw, bool) or not isinstance(raw, (int, float)):
        if isinstance(raw, str):
            return Reading(point_key=p.key, value=raw)
        return Reading(point_key=p.key, value=None, fault=f"not_a_value_{type(raw).__name__}")
    value: float = raw * p.scale + p.offset
    if p.precision is not None:
        value = round(value, p.precision)
    elif isinstance(raw, int) and p.scale == 1 and p.offset == 0:
        return Reading(point_key=p.key, value=raw)
    return Reading(point_key=p.key, value=value)


class GasMqttDriver(PushDriver):
    """Household / wireless gas alarms publishing JSON; commands (close valve) published back."""

    type_key: ClassVar[str] = "gas.mqtt_json"
    Options: ClassVar[type[msgspec.Struct]] = GasMqttOptions
    transports: ClassVar[tuple[str, ...]] = ("mqtt",)

    def __init__(self, options: msgspec.Struct, ctx: Any) -> None:
        super().__init__(options, ctx)
        self.profile = load_json_profile(options.profile)  # type: ignore[attr-defined]
        self._specs = [
            PointSpec(key=p.key, point_class=p.point_class, unit=p.unit, name=p.name, writable=p.writable)
            for p in self.profile.points
        ]
        self._keys = frozenset(p.key for p in self.profile.points)

    def subscriptions(self) -> list[str]:
        return list(self.profile.topics)

    def decode(self, topic: str, payload: bytes) -> list[DeviceReport]:
        try:
            data = json.loads(payload)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ValueError(f"not JSON: {exc}") from None
        if not isinstance(data, dict):
            raise ValueError(f"expected a JSON object, got {type(data).__name__}")
        identifiers = {}
        for namespace, path in self.profile.identity.items():
            value = _get(data, path, topic)
            if value is _MISSING or value in (None, ""):
                raise ValueError(f"no device identity: {path!r} missing")
            identifiers[namespace] = str(value)
        ts = None
        if self.profile.timestamp is not None:
            raw_ts = _get(data, self.profile.timestamp.path, topic)
            if isinstance(raw_ts, (int, float)) and not isinstance(raw_ts, bool):
                ts = raw_ts * self.profile.timestamp.scale
        readings = []
        for p in self.profile.points:
            if p.path is None:
                continue
            raw = _get(data, p.path, topic)
            if raw is _MISSING or raw is None:
                continue
            r = decode_point(p, raw)
            readings.append(msgspec.structs.replace(r, ts=ts) if ts is not None else r)
        # A sensor-fault flag in the same message makes the concentration a fault.
        readings = link_wiring_faults(readings, self._keys)
        info = DeviceInfo(identifiers=identifiers, manufacturer=self.profile.manufacturer, model=self.profile.model)
        return [DeviceReport(identifiers=identifiers, readings=readings, info=info)]

    def points_for(self, report: DeviceReport) -> list[PointSpec]:
        return list(self._specs)

    async def write(self, identifiers: dict[str, str], point_key: str, value: Any) -> None:
        command = self.profile.commands.get(point_key)
        if command is None:
            raise ValueError(f"{self.type_key}: point {point_key!r} is not writable in profile {self.profile.name!r}")
        sent = command.values.get(_text(value).lower(), value) if command.values else value
        try:
            topic = command.topic.format(**identifiers)
        except KeyError as exc:
            raise ValueError(f"command topic {command.topic!r} needs identifier {exc}") from None
        body = json.dumps(_fill(command.payload, sent)).encode()
        await self.ctx.transport.publish(topic, body, qos=command.qos, retain=False)


def _fill(template: Any, value: Any) -> Any:
    if template == "{value}":
        return value
    if isinstance(template, str):
        return template.replace("{value}", _text(value))
    if isinstance(template, dict):
        return {k: _fill(v, value) for k, v in template.items()}
    if isinstance(template, list):
        return [_fill(v, value) for v in template]
    return template
