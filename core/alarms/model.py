"""The alarm record and its statuses.

Statuses follow ThingsBoard's four, derived from two facts (is the condition
still there? has a person acknowledged it?): an alarm leaves the board only
once it is both cleared and acknowledged, so nobody misses one that came and
went while the room was empty.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, NamedTuple

import msgspec

from firebus.sdk import AlarmCategory, Severity


class AlarmStatus(StrEnum):
    ACTIVE_UNACK = "active_unack"
    ACTIVE_ACK = "active_ack"
    CLEARED_UNACK = "cleared_unack"
    CLEARED_ACK = "cleared_ack"


class Verdict(StrEnum):
    """What a fire alarm turned out to be (for false-alarm statistics, 误报率)."""

    REAL_FIRE = "real_fire"
    FALSE_ALARM = "false_alarm"
    TEST = "test"


class AlarmError(Exception):
    """An operator action that cannot apply (unknown alarm, wrong state)."""


class AlarmNotFound(AlarmError, LookupError):
    pass


def status_of(active: bool, acknowledged: bool) -> AlarmStatus:
    if active:
        return AlarmStatus.ACTIVE_ACK if acknowledged else AlarmStatus.ACTIVE_UNACK
    return AlarmStatus.CLEARED_ACK if acknowledged else AlarmStatus.CLEARED_UNACK


class Alarm(msgspec.Struct, kw_only=True, omit_defaults=True):
    """One alarm for its whole life.  ``dedup_key`` = subject|rule|category."""

    id: str
    dedup_key: str
    subject: str  # point id, "device:<id>" or "location:<id>"
    rule: str  # rule key, plus ":group" for a sub-condition (a status bit)
    rule_type: str
    category: AlarmCategory
    severity: Severity
    peak_severity: Severity
    point_id: str | None = None
    device_id: str | None = None
    location_id: str | None = None
    unit_id: str | None = None
    message: str = ""
    message_zh: str = ""
    first_value: Any = None
    last_value: Any = None
    peak_value: Any = None
    count: int = 1
    active: bool = True
    acknowledged: bool = False
    silenced: bool = False
    status: AlarmStatus = AlarmStatus.ACTIVE_UNACK
    start_ts: float = 0.0
    last_ts: float = 0.0
    ack_ts: float | None = None
    ack_by: str | None = None
    clear_ts: float | None = None
    cleared_by: str | None = None
    silence_ts: float | None = None
    silenced_by: str | None = None
    verdict: Verdict | None = None
    verdict_ts: float | None = None
    verdict_by: str | None = None
    verdict_note: str = ""
    escalation_step: int = 0
    escalation_due: float | None = None  # when the next reminder is due (None: none armed)
    late: bool = False  # recorded from a reading that came after newer ones (补报): start_ts is when it happened
    #: On the readings' own clock (the device's, not the engine's): the first reading that
    #: showed the alarm and the last that showed or cleared it.  A late reading inside this
    #: window is of this alarm — a redelivery of one already told raises nothing (late.py).
    first_reading_ts: float | None = None
    last_reading_ts: float | None = None
    ended_by_reading: bool = False  # last_reading_ts is a reading that showed it gone
    context_id: str = ""  # the context of the NEW event; parent of everything the alarm causes
    parent_context_id: str | None = None  # the reading (or timer) that raised it

    @property
    def open(self) -> bool:
        """Still on the board: active, or cleared but not yet acknowledged."""
        return self.active or not self.acknowledged

    def reading_window(self, now: float) -> tuple[float, float]:
        """When the alarm held on its readings' clock; the engine's times where no reading said."""
        if self.first_reading_ts is not None and self.last_reading_ts is not None:
            return self.first_reading_ts, self.last_reading_ts
        return self.start_ts, self.clear_ts if self.clear_ts is not None else now

    def saw_reading(self, ts: float | None) -> None:
        """A reading at ``ts`` (device clock) showed the alarm, or cleared it."""
        if ts is None:
            return
        if self.first_reading_ts is None or ts < self.first_reading_ts:
            self.first_reading_ts = ts
        if self.last_reading_ts is None or ts > self.last_reading_ts:
            self.last_reading_ts = ts

    def refresh_status(self) -> None:
        self.status = status_of(self.active, self.acknowledged)


class Episode(NamedTuple):
    """An alarm's episode that is over, on its readings' clock (late.py)."""

    start: float
    end: float
    alarm_id: str
    closed: bool  # ``end`` is a reading that showed the condition gone (not a person's reset, a timer)


class Transition(msgspec.Struct, kw_only=True, omit_defaults=True):
    """One line of an alarm's history: what happened, who did it, when, in which context."""

    alarm_id: str
    ts: float
    transition: str
    actor_kind: str
    actor: str
    detail: dict[str, Any] = msgspec.field(default_factory=dict)
    context_id: str = ""
    parent_id: str | None = None


class LinkageRecord(msgspec.Struct, kw_only=True, omit_defaults=True):
    """One linkage action run for one alarm transition, with its outcome."""

    id: str
    alarm_id: str
    rule: str  # the linkage rule's name
    action: dict[str, Any]
    transition: str
    ts: float
    ok: bool | None = None  # None while pending (re-run after a restart)
    error: str = ""
    attempts: int = 0
    done_ts: float | None = None
    context_id: str = ""
    parent_id: str | None = None
