"""Typed event payloads that travel on the core's event bus.

Every payload is a msgspec ``Struct`` tagged with its type name, so events
serialise to JSON for the event log, the panel's stream and upstream links
without hand-written encoders.  ``lane`` says whether a payload travels on the
priority lane (alarm-class: never dropped, delivered before telemetry).
"""

from __future__ import annotations

import time
from enum import StrEnum
from typing import Any, ClassVar

import msgspec

from .context import Context
from .vocab import AlarmCategory, Availability, Severity


class Lane(StrEnum):
    ALARM = "alarm"  # never dropped, delivered first
    TELEMETRY = "telemetry"  # bounded, may be shed under overload


class Payload(msgspec.Struct, tag=True, kw_only=True, omit_defaults=True):
    """Base of every bus payload.  Subclasses set ``lane`` if they are alarm-class."""

    lane: ClassVar[Lane] = Lane.TELEMETRY
    persist: ClassVar[bool] = False  # also written to the append-only event log


class StateChanged(Payload):
    """A point's value changed (or it reported for the first time)."""

    point_id: str
    device_id: str
    point_key: str
    point_class: str
    ts: float  # device or receive time, epoch seconds
    old_value: Any = None
    new_value: Any = None
    fault: str | None = None  # set when the device flagged the value invalid


class StateReported(Payload):
    """An identical value was reported again: only ``last_reported`` moved.

    Delivered only to subscribers that ask for it by type (not to catch-alls),
    so polled sensors that repeat a value do not flood listeners.
    """

    point_id: str
    ts: float
    value: Any = None


class AvailabilityChanged(Payload):
    """A device became reachable or unreachable."""

    lane: ClassVar[Lane] = Lane.ALARM
    persist: ClassVar[bool] = True
    device_id: str
    availability: Availability
    reason: str = ""


class LinkChanged(Payload):
    """A transport link (broker connection, Modbus line) went down or came back."""

    lane: ClassVar[Lane] = Lane.ALARM
    persist: ClassVar[bool] = True
    transport: str
    up: bool
    reason: str = ""


class AlarmTransition(StrEnum):
    NEW = "new"
    UPDATE = "update"
    ACKNOWLEDGED = "acknowledged"
    SILENCED = "silenced"
    CLEARED = "cleared"
    VERDICT = "verdict"
    ESCALATE = "escalate"


class AlarmEvent(Payload):
    """A change in an alarm's life.  One ``alarm_id`` for the alarm's whole life."""

    lane: ClassVar[Lane] = Lane.ALARM
    persist: ClassVar[bool] = True
    alarm_id: str
    transition: AlarmTransition
    category: AlarmCategory
    severity: Severity
    rule: str
    device_id: str | None = None
    point_id: str | None = None
    unit_id: str | None = None
    location_id: str | None = None
    value: Any = None
    message: str = ""
    status: str = ""
    count: int = 1
    escalation_step: int = 0
    ts: float = msgspec.field(default_factory=time.time)


class CommandRequested(Payload):
    """Ask a device to write a point (close a valve, start a pump, set a threshold)."""

    lane: ClassVar[Lane] = Lane.ALARM
    persist: ClassVar[bool] = True
    command_id: str
    device_id: str
    point_key: str
    value: Any = None
    reason: str = ""


class CommandResult(Payload):
    lane: ClassVar[Lane] = Lane.ALARM
    persist: ClassVar[bool] = True
    command_id: str
    device_id: str
    point_key: str
    ok: bool
    error: str = ""


class NotificationResult(Payload):
    """Outcome of one delivery attempt of one notification."""

    persist: ClassVar[bool] = True
    notification_id: str
    channel: str
    recipient: str
    ok: bool
    attempt: int = 1
    error: str = ""


class RegistryAction(StrEnum):
    CREATE = "create"
    UPDATE = "update"
    REMOVE = "remove"
    RESTORE = "restore"


class RegistryUpdated(Payload):
    """The device/point/place registry changed; ``changes`` maps field → old value."""

    persist: ClassVar[bool] = True
    registry: str  # "device" | "point" | "place"
    action: RegistryAction
    entry_id: str
    changes: dict[str, Any] = msgspec.field(default_factory=dict)


class PayloadQuarantined(Payload):
    """A payload could not be decoded or mapped; it was kept with the reason."""

    persist: ClassVar[bool] = True
    source: str
    reason: str
    quarantine_id: int | None = None


class Event(msgspec.Struct, frozen=True, omit_defaults=True):
    """The envelope: payload + context + time fired."""

    data: Payload
    context: Context = msgspec.field(default_factory=Context)
    time_fired: float = msgspec.field(default_factory=time.time)

    @property
    def type(self) -> str:
        return type(self.data).__name__

    @property
    def lane(self) -> Lane:
        return self.data.lane
