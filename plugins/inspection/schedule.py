"""Plan schedules → task windows, and item periods, in the site's time zone (pure functions).

A task is one occurrence of a plan: ``[start, due)``.  Occurrences are computed in
local wall time (a daily 08:00 patrol stays at 08:00 across DST changes) and
stored as epoch seconds.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import msgspec

from .catalogue import Frequency
from .config import Plan, Schedule, UnitClass, duration, every_hours, hhmm, hour_range


class Window(msgspec.Struct, frozen=True):
    start: float
    due: float


def effective(schedule: Schedule, unit_class: UnitClass, open_hours: str) -> Schedule:
    """Fill ``every`` (and opening hours) from the unit class when the plan leaves it out."""
    if schedule.every:
        return schedule
    if unit_class is UnitClass.CROWDED:  # GB 25201: every 2 h while open (recalled, [UNVERIFIED])
        return msgspec.structs.replace(schedule, every="2h", hours=schedule.hours or open_hours)
    return msgspec.structs.replace(schedule, every="daily" if unit_class is UnitClass.KEY_UNIT else "weekly")


def _local(day: dt.date, minutes: int, tz: ZoneInfo) -> float:
    return dt.datetime(day.year, day.month, day.day, minutes // 60, minutes % 60, tzinfo=tz).timestamp()


def _add_month(day: dt.date) -> dt.date:
    return dt.date(day.year + (day.month == 12), day.month % 12 + 1, day.day)


def _starts_on(s: Schedule, day: dt.date, tz: ZoneInfo) -> list[tuple[float, float]]:
    """(start, default due) of the occurrences that begin on local ``day``."""
    at = hhmm(s.at, "at")
    n = every_hours(s.every)
    if n is not None:
        step = n * 60
        if s.hours:
            lo, hi = hour_range(s.hours, "hours")
            slots = list(range(lo, hi, step))
        else:
            slots = sorted({(at + k * step) % 1440 for k in range(0, 1440 // step + 1)})
        return [(_local(day, m, tz), _local(day, m, tz) + step * 60) for m in slots]
    if s.every == "daily":
        start = _local(day, at, tz)
        return [(start, _local(day + dt.timedelta(days=1), at, tz))]
    if s.every == "weekly":
        if day.isoweekday() != s.weekday:
            return []
        return [(_local(day, at, tz), _local(day + dt.timedelta(days=7), at, tz))]
    if s.every == "monthly":
        if day.day != s.day:
            return []
        return [(_local(day, at, tz), _local(_add_month(day), at, tz))]
    raise ValueError(f"unknown schedule {s.every!r}")


def windows(s: Schedule, tz: ZoneInfo, after: float, until: float) -> list[Window]:
    """Occurrences with ``after < start <= until``, oldest first (``s`` already effective)."""
    within = duration(s.within, "within") if s.within else None
    first = dt.datetime.fromtimestamp(after, tz).date() - dt.timedelta(days=1)
    last = dt.datetime.fromtimestamp(until, tz).date()
    out: list[Window] = []
    day = first
    while day <= last:
        for start, due in _starts_on(s, day, tz):
            if after < start <= until:
                out.append(Window(start, start + within if within else due))
        day += dt.timedelta(days=1)
    return out


def next_start(s: Schedule, tz: ZoneInfo, after: float) -> float | None:
    """The first occurrence after ``after`` (looks up to 62 days ahead)."""
    found = windows(s, tz, after, after + 62 * 86400)
    return found[0].start if found else None


def task_id(plan: Plan, start: float) -> str:
    return f"{plan.key}@{int(start)}"


def period_start(freq: Frequency, ts: float, tz: ZoneInfo) -> float:
    """Start of the period of ``freq`` that contains ``ts`` (an item checked since then is done)."""
    local = dt.datetime.fromtimestamp(ts, tz)
    day = local.date()
    if freq is Frequency.EVERY_2H:
        return ts - 2 * 3600  # a rolling 2 h: the crowded-place patrol interval
    if freq is Frequency.DAILY:
        start = day
    elif freq is Frequency.WEEKLY:
        start = day - dt.timedelta(days=day.isoweekday() - 1)
    elif freq is Frequency.MONTHLY:
        start = day.replace(day=1)
    elif freq is Frequency.QUARTERLY:
        start = dt.date(day.year, (day.month - 1) // 3 * 3 + 1, 1)
    else:
        start = dt.date(day.year, 1, 1)
    return _local(start, 0, tz)


def month_bounds(month: str, tz: ZoneInfo) -> tuple[float, float]:
    """``"2026-11"`` → [first midnight, next first midnight) in the site's zone."""
    try:
        year, mon = (int(x) for x in month.split("-"))
        first = dt.date(year, mon, 1)
    except ValueError:
        raise ValueError(f"{month!r} is not a month YYYY-MM") from None
    return _local(first, 0, tz), _local(_add_month(first), 0, tz)
