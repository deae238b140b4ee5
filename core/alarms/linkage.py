"""Linkage (联动): declarative actions on alarm transitions.

A linkage rule says *when* (categories, transitions, minimum severity, rules,
devices, locations, units) and *what* (a list of actions).  Actions are typed:

* ``write_point``: write a device point through its driver (close the gas valve,
  start the exhaust fan, start the fire pump) via ``core.write_point``;
* ``mqtt_publish``: publish a message (to a building-management system, a sounder
  controller) through the handler the core provides for it;
* ``snapshot``: ask a camera for a picture, through the video plugin's handler.

Every run is recorded (pending → ok / error, attempts, context) before it
starts, runs in the background with a timeout, and can only fail itself: an
exception is written to the record, never raised into the engine.  A run still
pending when the process died is run again on start (safety actions are
idempotent writes: "close the valve" twice leaves it closed).

GB 50116-2013 9.1.6: electrical-fire monitoring should not cut power by itself.
A ``write_point`` that trips a breaker is therefore only ever what someone put in
the site file; firebus ships no such linkage.
"""

from __future__ import annotations

from typing import Any, Awaitable, Callable

import msgspec

from firebus.sdk import AlarmCategory, AlarmTransition, Context, Severity

from .model import Alarm


class WritePoint(msgspec.Struct, frozen=True, tag="write_point", forbid_unknown_fields=True):
    point_key: str
    value: Any
    device_id: str | None = None  # None: the alarm's own device
    timeout: float = 10.0


class MqttPublish(msgspec.Struct, frozen=True, tag="mqtt_publish", forbid_unknown_fields=True):
    topic: str  # may use {alarm_id} {category} {device_id} {location_id} {unit_id} {rule}
    payload: Any = None  # None: the AlarmEvent as JSON
    qos: int = 1
    retain: bool = False
    timeout: float = 10.0


class Snapshot(msgspec.Struct, frozen=True, tag="snapshot", forbid_unknown_fields=True):
    camera: str
    timeout: float = 10.0


Action = WritePoint | MqttPublish | Snapshot


class Match(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """All given fields must match; an empty list matches anything."""

    transitions: list[AlarmTransition] = msgspec.field(default_factory=lambda: [AlarmTransition.NEW])
    categories: list[AlarmCategory] = []
    min_severity: Severity | None = None
    rules: list[str] = []  # rule keys (a "key:group" alarm matches its key too)
    #: site-file keys (``fire-pump-2``) or registry ids; ``firebus check`` refuses a key that
    #: names nothing.  A place matches alarms anywhere inside it (a building: all its rooms).
    devices: list[str] = []
    locations: list[str] = []
    units: list[str] = []

    def matches(self, alarm: Alarm, transition: AlarmTransition) -> bool:
        if self.transitions and transition not in self.transitions:
            return False
        if self.categories and alarm.category not in self.categories:
            return False
        if self.min_severity is not None and alarm.severity < self.min_severity:
            return False
        if self.rules and alarm.rule not in self.rules and alarm.rule.split(":", 1)[0] not in self.rules:
            return False
        if self.devices and alarm.device_id not in self.devices:
            return False
        if self.locations and alarm.location_id not in self.locations:
            return False
        if self.units and alarm.unit_id not in self.units:
            return False
        return True


class LinkageRule(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    name: str
    when: Match
    actions: list[Action]
    enabled: bool = True


#: ``handler(action, alarm, context) -> None``; raise to report failure.
ActionHandler = Callable[[Any, Alarm, Context], Awaitable[None]]


def render_topic(template: str, alarm: Alarm) -> str:
    fields = {
        "alarm_id": alarm.id,
        "category": str(alarm.category),
        "device_id": alarm.device_id or "-",
        "location_id": alarm.location_id or "-",
        "unit_id": alarm.unit_id or "-",
        "rule": alarm.rule,
    }
    try:
        return template.format(**fields)
    except (KeyError, IndexError, ValueError) as exc:
        raise ValueError(f"topic template {template!r}: {exc}") from None


def make_write_point_handler(core: Any) -> ActionHandler:
    async def write_point(action: WritePoint, alarm: Alarm, context: Context) -> None:
        device_id = action.device_id or alarm.device_id
        if device_id is None:
            raise ValueError(f"write_point {action.point_key!r}: the alarm has no device; set device_id")
        await core.write_point(device_id, action.point_key, action.value, context)

    return write_point


#: ``publish(topic, payload, qos, retain)``: the core's MQTT transport (or any broker client).
MqttPublisher = Callable[[str, bytes, int, bool], Awaitable[None]]

_json = msgspec.json.Encoder()


def make_mqtt_publish_handler(publish: MqttPublisher) -> ActionHandler:
    """An ``mqtt_publish`` handler on top of a publish function.

    With no ``payload`` the message is the alarm itself plus its context ids, so the
    receiver can quote them back (lineage across systems).
    """

    async def mqtt_publish(action: MqttPublish, alarm: Alarm, context: Context) -> None:
        topic = render_topic(action.topic, alarm)
        if action.payload is None:
            body = _json.encode({"alarm": alarm, "context_id": context.id, "parent_id": context.parent_id})
        elif isinstance(action.payload, str):
            body = action.payload.encode()
        else:
            body = _json.encode(action.payload)
        await publish(topic, body, action.qos, action.retain)

    return mqtt_publish
