"""The ``inspection:`` section of the site file, validated with the path of each problem.

Example (every key, with its default, is in docs/plugins/inspection.md)::

    inspection:
      unit_class: key_unit          # key_unit | crowded | other: default plan frequency
      items: {extinguisher: {frequency: monthly}}
      checkpoints:
        - key: cp-a1
          location: room-a
          tags: [{kind: qr, code: FB-A1}, {kind: nfc, code: "04:A2:19:7C"}]
          items: [extinguisher, fire_door]
      plans:
        - {key: daily-a, checkpoints: [cp-a1], schedule: {every: daily, at: "08:00", within: 10h}}
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Any

import msgspec

from .catalogue import DEFAULT_CATALOGUE, CatalogueItem, Frequency


class ConfigError(ValueError):
    """``path: message`` with ``path`` relative to the site file (``inspection.plans[0].schedule``)."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path, self.message = path, message


class TagKind(StrEnum):
    QR = "qr"
    NFC = "nfc"  # NFC tag UID (NTAG serial) as the reader prints it
    RFID = "rfid"  # UHF/LF RFID tag id read by a fixed or handheld reader


class UnitClass(StrEnum):
    KEY_UNIT = "key_unit"  # 消防安全重点单位: daily patrol
    CROWDED = "crowded"  # 公众聚集场所: every 2 h while open
    OTHER = "other"  # weekly


class Strict(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    pass


class Tag(Strict):
    kind: TagKind
    code: str


class Checkpoint(Strict):
    key: str
    location: str  # site-file location (or floor/building/unit) key
    name: str = ""
    tags: list[Tag] = []
    items: list[str] = []


class Schedule(Strict):
    every: str = ""  # "daily" | "weekly" | "monthly" | "<n>h" ("" → from unit_class)
    at: str = "08:00"  # first start of the day, HH:MM in the site's time zone
    weekday: int = 1  # weekly: ISO weekday, 1 = Monday
    day: int = 1  # monthly: day of month (1–28)
    hours: str = ""  # "<n>h" only: "HH:MM-HH:MM" when tasks are made (opening hours); "" = all day
    within: str = ""  # how long a task stays open ("" → until the next one starts)


class Plan(Strict):
    key: str
    checkpoints: list[str]
    name: str = ""
    schedule: Schedule = Schedule()
    role: str = "duty_officer"  # who patrols: a panel role; the unit comes from the checkpoints
    enabled: bool = True


class ItemOverride(Strict):
    frequency: Frequency | None = None
    name_zh: str | None = None
    name_en: str | None = None
    hint_zh: str | None = None
    hint_en: str | None = None


class Hazards(Strict):
    deadline: str = "7d"  # default rectification deadline for a general hazard
    major_deadline: str = "3d"  # … for a major hazard (重大火灾隐患, GB 35181)
    urge_every: str = "24h"  # while overdue, an urge (催促) is recorded this often
    escalate_after: str = "24h"  # overdue this long: escalated to supervisors
    escalate_severity: str = "fault"  # severity of the escalated alarm (route supervisors on it)


class InspectionConfig(Strict):
    unit_class: UnitClass = UnitClass.KEY_UNIT
    open_hours: str = "09:00-21:00"  # crowded places: when the 2-hourly patrol runs
    items: dict[str, ItemOverride] = {}
    checkpoints: list[Checkpoint] = []
    plans: list[Plan] = []
    hazards: Hazards = Hazards()
    tick: str = "5m"  # longest sleep of the scheduler (it also wakes at every deadline and change)


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d)\s*$")
_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
_EVERY_H = re.compile(r"^(\d{1,2})h$")
ROLES = ("admin", "integrator", "unit_manager", "duty_officer", "supervisor")
SEVERITIES = {"info": 10, "supervisory": 20, "fault": 30, "pre_alarm": 40, "alarm": 50}


def duration(text: str | float | int, path: str) -> float:
    """``"90s"``, ``"30m"``, ``"2h"``, ``"7d"`` or a number of seconds → seconds."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        return float(text)
    m = _DURATION.match(str(text))
    if not m:
        raise ConfigError(path, f"{text!r} is not a duration (e.g. 90s, 30m, 2h, 7d)")
    return float(m.group(1)) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(2)]


def hhmm(text: str, path: str) -> int:
    """``"08:30"`` → minutes after midnight."""
    m = _HHMM.match(text)
    if not m:
        raise ConfigError(path, f"{text!r} is not a time of day HH:MM (24 h)")
    return int(m.group(1)) * 60 + int(m.group(2))


def hour_range(text: str, path: str) -> tuple[int, int]:
    start, sep, end = text.partition("-")
    if not sep:
        raise ConfigError(path, f"{text!r} is not a range HH:MM-HH:MM")
    lo, hi = hhmm(start.strip(), path), hhmm(end.strip(), path)
    if hi <= lo:
        raise ConfigError(path, f"{text!r}: the end must be after the start (same day)")
    return lo, hi


def every_hours(every: str) -> int | None:
    m = _EVERY_H.match(every)
    return int(m.group(1)) if m else None


def _msgspec_path(message: str) -> tuple[str, str]:
    """msgspec says ``Expected `str`, got `int` - at `$.plans[0].key```: split path and text."""
    text, sep, where = message.rpartition(" - at `")
    if not sep:
        return "", message
    path = where.rstrip("`").removeprefix("$")
    unknown = re.match(r"Object contains unknown field `([^`]*)`", text)
    if unknown:
        return f"{path}.{unknown.group(1)}", "unknown field (see docs/plugins/inspection.md)"
    return path, text


def catalogue(cfg: InspectionConfig) -> dict[str, CatalogueItem]:
    """The default catalogue with the site's overrides applied."""
    out = dict(DEFAULT_CATALOGUE)
    for key, o in cfg.items.items():
        base = out.get(key) or CatalogueItem(key=key, name_zh=key, name_en=key, frequency=Frequency.DAILY)
        changes = {f: getattr(o, f) for f in ItemOverride.__struct_fields__ if getattr(o, f) is not None}
        out[key] = msgspec.structs.replace(base, **changes)
    return out


def location_units(site: dict[str, Any]) -> dict[str, str]:
    """Every place key of the site file (unit, building, floor, location) → its unit key."""
    out: dict[str, str] = {}
    for unit in site.get("units") or []:
        if not isinstance(unit, dict) or "key" not in unit:
            continue
        ukey = str(unit["key"])
        out[ukey] = ukey
        for b in unit.get("buildings") or []:
            if isinstance(b, dict) and "key" in b:
                out[str(b["key"])] = ukey
                for f in b.get("floors") or []:
                    if isinstance(f, dict) and "key" in f:
                        out[str(f["key"])] = ukey
                        for loc in f.get("locations") or []:
                            if isinstance(loc, dict) and "key" in loc:
                                out[str(loc["key"])] = ukey
    return out


def load_config(section: dict[str, Any] | None, site: dict[str, Any] | None = None) -> InspectionConfig:
    """Convert and cross-check the section; raises ``ConfigError`` naming the first problem."""
    p = "inspection"
    try:
        cfg = msgspec.convert(section or {}, InspectionConfig, strict=False)
    except msgspec.ValidationError as exc:
        path, message = _msgspec_path(str(exc))
        raise ConfigError(p + path, message) from None
    places = location_units(site or {})
    items = catalogue(cfg)
    duration(cfg.tick, f"{p}.tick")
    hour_range(cfg.open_hours, f"{p}.open_hours")
    for name in ("deadline", "major_deadline", "urge_every", "escalate_after"):
        if duration(getattr(cfg.hazards, name), f"{p}.hazards.{name}") <= 0:
            raise ConfigError(f"{p}.hazards.{name}", "must be more than 0")
    if cfg.hazards.escalate_severity not in SEVERITIES:
        raise ConfigError(f"{p}.hazards.escalate_severity", f"one of {', '.join(SEVERITIES)}")
    seen_cp: set[str] = set()
    seen_tag: dict[tuple[str, str], str] = {}
    for i, cp in enumerate(cfg.checkpoints):
        at = f"{p}.checkpoints[{i}]"
        if not cp.key.strip():
            raise ConfigError(f"{at}.key", "must not be empty")
        if cp.key in seen_cp:
            raise ConfigError(f"{at}.key", f"checkpoint {cp.key!r} is defined twice")
        seen_cp.add(cp.key)
        if site is not None and cp.location not in places:
            raise ConfigError(f"{at}.location", f"no unit, building, floor or location {cp.location!r} in the site file")
        for j, tag in enumerate(cp.tags):
            code = normalise_code(tag.kind, tag.code)
            if not code:
                raise ConfigError(f"{at}.tags[{j}].code", "must not be empty")
            other = seen_tag.get((tag.kind, code))
            if other is not None:
                raise ConfigError(f"{at}.tags[{j}].code", f"{tag.kind} {tag.code!r} is already checkpoint {other!r}'s")
            seen_tag[(tag.kind, code)] = cp.key
        for j, item in enumerate(cp.items):
            if item not in items:
                raise ConfigError(f"{at}.items[{j}]", f"unknown item {item!r} (known: {', '.join(sorted(items))})")
    seen_plan: set[str] = set()
    for i, plan in enumerate(cfg.plans):
        at = f"{p}.plans[{i}]"
        if plan.key in seen_plan:
            raise ConfigError(f"{at}.key", f"plan {plan.key!r} is defined twice")
        seen_plan.add(plan.key)
        if not plan.checkpoints:
            raise ConfigError(f"{at}.checkpoints", "a plan needs at least one checkpoint")
        units = set()
        for j, key in enumerate(plan.checkpoints):
            if key not in seen_cp:
                raise ConfigError(f"{at}.checkpoints[{j}]", f"no checkpoint {key!r}")
            cp = next(c for c in cfg.checkpoints if c.key == key)
            units.add(places.get(cp.location))
        if site is not None and len(units) > 1:
            raise ConfigError(f"{at}.checkpoints", "a plan's checkpoints must all be in one unit")
        if plan.role not in ROLES:
            raise ConfigError(f"{at}.role", f"unknown role {plan.role!r} (one of {', '.join(ROLES)})")
        check_schedule(plan.schedule, f"{at}.schedule")
    return cfg


def check_schedule(s: Schedule, at: str) -> None:
    if s.every and s.every not in ("daily", "weekly", "monthly") and every_hours(s.every) is None:
        raise ConfigError(f"{at}.every", f"{s.every!r}: one of daily, weekly, monthly or <n>h (e.g. 2h)")
    n = every_hours(s.every)
    if n is not None and not 1 <= n <= 24:
        raise ConfigError(f"{at}.every", "between 1h and 24h")
    hhmm(s.at, f"{at}.at")
    if not 1 <= s.weekday <= 7:
        raise ConfigError(f"{at}.weekday", "ISO weekday 1 (Monday) … 7 (Sunday)")
    if not 1 <= s.day <= 28:
        raise ConfigError(f"{at}.day", "day of month 1 … 28 (every month has it)")
    if s.hours:
        hour_range(s.hours, f"{at}.hours")
    if s.within and duration(s.within, f"{at}.within") <= 0:
        raise ConfigError(f"{at}.within", "must be more than 0")


def normalise_code(kind: str, code: str) -> str:
    """Tag codes compare without case, spaces, ':' or '-' for NFC/RFID UIDs; QR codes exactly (trimmed)."""
    code = str(code).strip()
    if kind in (TagKind.NFC, TagKind.RFID):
        return re.sub(r"[\s:\-]", "", code).upper()
    return code
