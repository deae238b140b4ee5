"""When a scheduled report is due, and which period it covers (pure; site timezone)."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from .config import ScheduleKind
from .validate import parse_hhmm


def _first_day(kind: ScheduleKind, d: dt.date) -> dt.date:
    """The first day of the period holding ``d``."""
    if kind is ScheduleKind.WEEKLY:
        return d - dt.timedelta(days=d.isoweekday() - 1)
    if kind is ScheduleKind.MONTHLY:
        return d.replace(day=1)
    return dt.date(d.year, (d.month - 1) // 3 * 3 + 1, 1)


def _next_first(kind: ScheduleKind, d: dt.date) -> dt.date:
    if kind is ScheduleKind.WEEKLY:
        return d + dt.timedelta(days=7)
    months = 1 if kind is ScheduleKind.MONTHLY else 3
    m = d.month - 1 + months
    return dt.date(d.year + m // 12, m % 12 + 1, 1)


def label_before(kind: ScheduleKind, first: dt.date) -> str:
    """The label of the period that ends where the one starting on ``first`` begins."""
    prev = first - dt.timedelta(days=1)
    if kind is ScheduleKind.WEEKLY:
        y, w, _ = prev.isocalendar()
        return f"{y:04d}-W{w:02d}"
    if kind is ScheduleKind.MONTHLY:
        return f"{prev.year:04d}-{prev.month:02d}"
    return f"{prev.year:04d}-Q{(prev.month - 1) // 3 + 1}"


def next_due(kind: ScheduleKind, at: str, tz: str, after: float) -> tuple[float, str]:
    """The first due time strictly after ``after`` and the label of the period it reports.

    Due = ``at`` local time on the first day of a period (Monday, the 1st, the 1st of
    Jan/Apr/Jul/Oct); the report covers the period just ended.
    """
    z = ZoneInfo(tz)
    h, m = parse_hhmm(at)
    first = _first_day(kind, dt.datetime.fromtimestamp(after, z).date())
    while True:
        due = dt.datetime.combine(first, dt.time(h, m), z).timestamp()
        if due > after:
            return due, label_before(kind, first)
        first = _next_first(kind, first)
