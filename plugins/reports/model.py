"""The records a report is built from, as the data source hands them over.

Plain msgspec Structs (they go into the JSON report as they are), except the
rollup series, which are numpy arrays for speed (``Series``).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import msgspec
import numpy as np


class Resolution(StrEnum):
    """The rollup tables the core keeps (``readings_5m``, ``readings_1h``)."""

    FIVE_MIN = "5m"
    HOUR = "1h"

    @property
    def seconds(self) -> int:
        return 300 if self is Resolution.FIVE_MIN else 3600


class Place(msgspec.Struct, frozen=True):
    """A unit (联网单位), building, floor or location."""

    id: str
    kind: str
    key: str
    name: str = ""
    parent_id: str | None = None

    @property
    def label(self) -> str:
        return self.name or self.key


class DeviceRef(msgspec.Struct, frozen=True):
    id: str
    name: str
    unit_id: str | None = None
    location_id: str | None = None
    driver: str = ""
    model: str = ""
    created_at: float = 0.0


class PointRef(msgspec.Struct, frozen=True):
    """A measured point with the alarm settings that apply to it (None: no threshold rule)."""

    id: str
    device_id: str
    key: str
    point_class: str
    unit: str = ""
    name: str = ""
    setting: float | None = None  # the alarm level (报警设定值)
    pre_setting: float | None = None  # the pre-alarm level (预警), if any

    @property
    def label(self) -> str:
        return self.name or self.key


class AlarmRecord(msgspec.Struct, frozen=True, omit_defaults=True):
    """One alarm as it stands (the ``alarms`` row and its JSON)."""

    id: str
    category: str
    severity: int
    start_ts: float
    device_id: str | None = None
    point_id: str | None = None
    location_id: str | None = None
    rule: str = ""
    rule_type: str = ""
    active: bool = False
    acknowledged: bool = False
    ack_ts: float | None = None
    ack_by: str | None = None
    clear_ts: float | None = None
    verdict: str | None = None
    message: str = ""
    message_zh: str = ""
    first_value: float | None = None
    peak_value: float | None = None


class TransitionRecord(msgspec.Struct, frozen=True, omit_defaults=True):
    """One line of ``alarm_history``."""

    alarm_id: str
    ts: float
    transition: str
    actor_kind: str = ""
    actor: str = ""


class Interval(msgspec.Struct, frozen=True):
    """A device's outage (``end`` None: still offline)."""

    device_id: str
    start: float
    end: float | None = None


class Hazard(msgspec.Struct, frozen=True, omit_defaults=True):
    """A recorded fire hazard (隐患) and its rectification (issue 20, hazards and inspection)."""

    id: str
    title: str
    found_ts: float
    major: bool = False  # judged a major fire hazard (重大火灾隐患, GB 35181)
    due_ts: float | None = None  # rectification deadline
    closed_ts: float | None = None
    device_id: str | None = None
    location_id: str | None = None


class InspectionStats(msgspec.Struct, frozen=True):
    """Inspection tasks due in the period and how many were done (巡检完成率)."""

    due: int
    done: int

    @property
    def completion(self) -> float:
        return self.done / self.due if self.due else 1.0


@dataclass(frozen=True, slots=True)
class Series:
    """One point's rollup rows for a time range, bucket order (epoch seconds of each bucket's start)."""

    bucket: np.ndarray  # int64
    n: np.ndarray  # int64
    mean: np.ndarray  # float64
    min: np.ndarray
    max: np.ndarray
    last: np.ndarray

    @staticmethod
    def empty() -> "Series":
        z = np.zeros(0)
        return Series(np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), z, z, z, z)

    @staticmethod
    def from_rows(rows: list[tuple[int, int, float, float, float, float]]) -> "Series":
        if not rows:
            return Series.empty()
        a = np.array(rows, dtype=np.float64)
        return Series(a[:, 0].astype(np.int64), a[:, 1].astype(np.int64), a[:, 2], a[:, 3], a[:, 4], a[:, 5])

    def __len__(self) -> int:
        return int(self.bucket.shape[0])
