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
    """Base of every bus payload.  Subclasses set ``lane`` if they are alarm-class.

    ``persist`` payloads are *journal entries*: the core commits them to the durable
    journal first and delivers them to subscribers once committed, each with its
    sequence number (``Event.seq``).  Others (``StateReported``) are live-only.
    ``journal_key`` names the field that says what the entry is about (indexed).
    """

    lane: ClassVar[Lane] = Lane.TELEMETRY
    persist: ClassVar[bool] = False  # a journal entry (durable, numbered), not only a live event
    journal_key: ClassVar[str] = ""


class StateChanged(Payload):
    """A point's value changed (or it reported for the first time).

    A journal entry.  Its lane is the point's: alarm-class points (smoke, gas alarm,
    status bits …) and readings that came in on the alarm lane travel on
    ``Lane.ALARM`` (``Event.lane``).  ``late`` marks a reading older than the point's
    current state (buffered upload, redelivery): stored as history, not a change of
    the present — subscribers that track the present skip it.
    """

    persist: ClassVar[bool] = True
    journal_key: ClassVar[str] = "point_id"
    point_id: str
    device_id: str
    point_key: str
    point_class: str
    ts: float  # device or receive time, epoch seconds
    old_value: Any = None
    new_value: Any = None
    fault: str | None = None  # set when the device flagged the value invalid
    late: bool = False


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
    journal_key: ClassVar[str] = "device_id"
    device_id: str
    availability: Availability
    reason: str = ""


class LinkChanged(Payload):
    """A transport link (broker connection, Modbus line) went down or came back."""

    lane: ClassVar[Lane] = Lane.ALARM
    persist: ClassVar[bool] = True
    journal_key: ClassVar[str] = "transport"
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
    journal_key: ClassVar[str] = "alarm_id"
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
    message_zh: str = ""
    status: str = ""
    count: int = 1
    escalation_step: int = 0
    ts: float = msgspec.field(default_factory=time.time)
    #: when it happened, if before it was recorded: an alarm a late reading showed (补报, a
    #: detector's buffered upload after its link came back), epoch seconds; None otherwise
    occurred_ts: float | None = None


class ConditionReported(Payload):
    """A plugin's own alarm condition came (``active``) or went: a missed patrol, an overdue
    hazard rectification.  The alarm engine owns the alarm it raises (board, acknowledge,
    escalation, ``AlarmEvent`` to notify and the uplink): one alarm per (source, subject,
    key, category) while active; a repeat while active changes nothing, ``active=False``
    clears it.  ``unit_id`` / ``location_id`` are registry place ids (scoping, routing).
    """

    lane: ClassVar[Lane] = Lane.ALARM
    persist: ClassVar[bool] = True
    journal_key: ClassVar[str] = "subject"
    source: str  # the plugin's name
    subject: str  # what it is about, unique within the source ("task:…", "hazard:…")
    key: str  # which condition of the subject ("missed", "overdue", "escalated")
    active: bool
    category: AlarmCategory = AlarmCategory.SUPERVISORY
    severity: Severity = Severity.SUPERVISORY
    unit_id: str | None = None
    location_id: str | None = None
    value: Any = None
    message: str = ""
    message_zh: str = ""


class UnitScored(Payload):
    """A unit's live health score or grade changed (the reports plugin's live health check).

    A journal entry, so a consumer that starts later (the supervision views, a centre
    through federation) has the current rating of every unit without asking the plugin
    that computes it.  ``score`` is 0–100 (higher is safer), ``grade`` the band it falls
    in (A–D, the reports' ``scoring`` bands); ``unit_id`` is the registry place id.
    """

    persist: ClassVar[bool] = True
    journal_key: ClassVar[str] = "unit_id"
    unit_id: str
    unit_key: str
    score: float
    grade: str
    window_days: float = 30.0  # the span of monitoring data behind the score
    ts: float = msgspec.field(default_factory=time.time)


class VideoTrackChanged(Payload):
    """A camera's tracker started, updated or ended a flame or smoke track (Frigate-style).

    Live only (the bus, not the journal): what raises and clears a video alarm is the
    camera's ``flame``/``smoke`` point, which is journaled like any reading; these events
    say *where in the picture* and how sure, for live views and vendor integrations.
    ``kind`` is ``new`` (the track was confirmed, K of N frames), ``update`` (score rose or
    the box moved; at most one a second) or ``end`` (no detection for ``end_after`` s).
    ``box`` is (x1, y1, x2, y2) normalised to 0…1 of the frame; times are epoch seconds.
    """

    device_id: str  # the camera (a video.camera device)
    track_id: str
    kind: str  # new | update | end
    label: str  # fire | smoke
    score: float
    top_score: float
    box: tuple[float, float, float, float]
    first_seen: float
    last_seen: float
    end_time: float | None = None


class CommandRequested(Payload):
    """Ask a device to write a point (close a valve, start a pump, set a threshold)."""

    lane: ClassVar[Lane] = Lane.ALARM
    persist: ClassVar[bool] = True
    journal_key: ClassVar[str] = "device_id"
    command_id: str
    device_id: str
    point_key: str
    value: Any = None
    reason: str = ""


class CommandResult(Payload):
    lane: ClassVar[Lane] = Lane.ALARM
    persist: ClassVar[bool] = True
    journal_key: ClassVar[str] = "device_id"
    command_id: str
    device_id: str
    point_key: str
    ok: bool
    error: str = ""


class NotificationResult(Payload):
    """Outcome of one delivery attempt of one notification."""

    persist: ClassVar[bool] = True
    journal_key: ClassVar[str] = "notification_id"
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
    """The device/point/place registry changed; ``changes`` maps field → old value.

    Alarm lane: a device's identity is recorded no later than anything it reports.
    """

    lane: ClassVar[Lane] = Lane.ALARM
    persist: ClassVar[bool] = True
    journal_key: ClassVar[str] = "entry_id"
    registry: str  # "device" | "point" | "place"
    action: RegistryAction
    entry_id: str
    changes: dict[str, Any] = msgspec.field(default_factory=dict)


class PayloadQuarantined(Payload):
    """A payload could not be decoded or mapped; it was kept with the reason."""

    persist: ClassVar[bool] = True
    journal_key: ClassVar[str] = "source"
    source: str
    reason: str
    quarantine_id: int | None = None


class Event(msgspec.Struct, omit_defaults=True, gc=False):
    """The envelope: payload + context + time fired, and for journal entries the seq.

    ``seq`` is assigned when the entry commits (monotonic per site, in commit order;
    0 for live-only events and entries not yet committed).  ``durable`` is False
    only for an alarm-lane entry released to subscribers while the store refuses
    writes: it will be delivered once more, durable and numbered, when it commits
    (the journal's subscriptions hand each entry to a consumer once).
    ``lane`` defaults to the payload type's lane; a state change of an alarm-class
    point sets ``Lane.ALARM``.
    """

    data: Payload
    context: Context = msgspec.field(default_factory=Context)
    time_fired: float = msgspec.field(default_factory=time.time)
    seq: int = 0
    durable: bool = True
    lane: Lane | None = None

    def __post_init__(self) -> None:
        if self.lane is None:
            self.lane = self.data.lane

    @property
    def type(self) -> str:
        return type(self.data).__name__

    @property
    def ref(self) -> str:
        """The id lineage refers to: the context's, or ``j<seq>`` for a state change
        (state changes share one context per device; their seq is their identity)."""
        return self.context.id or f"j{self.seq}"
