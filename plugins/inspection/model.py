"""Request bodies of the JSON API (decoded with msgspec: a wrong field is a clear 400)."""

from __future__ import annotations

import re
from enum import StrEnum

import msgspec

from .config import TagKind
from .hazards import Action, Severity

ID = re.compile(r"^[A-Za-z0-9_.:\-]{1,64}$")


class Method(StrEnum):
    QR = "qr"
    NFC = "nfc"
    RFID = "rfid"
    MANUAL = "manual"  # code typed in, or a checkpoint picked from the list


class Result(StrEnum):
    NORMAL = "normal"
    FAULT = "fault"


class In(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    pass


class TagIn(In):
    kind: TagKind
    code: str


class ItemResult(In):
    item: str
    result: Result
    note: str = ""
    major: bool = False  # a fault that is a major hazard (重大火灾隐患)


class RecordIn(In):
    id: str  # client-generated (ULID/UUID): sending it again is harmless
    checkpoint: str = ""  # the checkpoint key, or:
    tag: TagIn | None = None  # the tag that was scanned
    ts: float | None = None  # when, epoch seconds (default: when received)
    method: Method = Method.MANUAL
    results: list[ItemResult] = []
    note: str = ""
    photos: list[str] = []  # ids of photos uploaded first (PUT /api/photos/{id})


class HazardIn(In):
    description: str
    id: str | None = None
    checkpoint: str = ""
    location: str = ""  # a site-file place key, when there is no checkpoint
    item: str = ""
    severity: Severity = Severity.GENERAL
    major_criteria: str = ""  # which GB 35181 criterion makes it major
    responsible: str = ""
    deadline: float | str | None = None  # epoch s or ISO 8601; default from inspection.hazards
    source: str = "manual"  # manual | alarm | report
    source_ref: str = ""  # alarm id, report finding id
    photos: list[str] = []


class ActionIn(In):
    action: Action
    id: str | None = None  # client-generated: a resend does not act twice
    note: str = ""
    photos: list[str] = []
    responsible: str = ""
    deadline: float | str | None = None


class DutyIn(In):
    id: str
    shift_start: float | str
    shift_end: float | str
    officers: list[str]
    unit: str = ""
    handover: str = ""
    notes: str = ""
    alarms_handled: int = 0
