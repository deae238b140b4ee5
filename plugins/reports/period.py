"""Report periods: ``2026-11`` (month), ``2026-W46`` (ISO week), ``2026-Q4`` (quarter), in the site's timezone."""

from __future__ import annotations

import datetime as dt
import re
from enum import StrEnum
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec


class PeriodError(ValueError):
    """A period text that names no period (or one that has not begun)."""


class PeriodKind(StrEnum):
    WEEK = "week"
    MONTH = "month"
    QUARTER = "quarter"
    WINDOW = "window"  # a trailing window (the live score)


class Period(msgspec.Struct, frozen=True):
    kind: PeriodKind
    label: str  # as given, normalised: 2026-11, 2026-W46, 2026-Q4
    start: float  # epoch seconds, inclusive
    end: float  # epoch seconds, exclusive (clipped to "now" for a period still running)
    tz: str
    partial: bool = False  # the period had not ended when the report was made

    @property
    def seconds(self) -> float:
        return self.end - self.start

    @property
    def days(self) -> float:
        return self.seconds / 86400.0

    def local(self, ts: float) -> dt.datetime:
        return dt.datetime.fromtimestamp(ts, ZoneInfo(self.tz))


_MONTH = re.compile(r"^(\d{4})-(\d{1,2})$")
_WEEK = re.compile(r"^(\d{4})-?W(\d{1,2})$", re.I)
_QUARTER = re.compile(r"^(\d{4})-?Q([1-4])$", re.I)


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise PeriodError(f"unknown timezone {name!r}") from None


def parse_period(text: str, tz: str = "Asia/Shanghai", now: float | None = None) -> Period:
    """Parse ``text``; the period must have begun (``now`` defaults to the clock)."""
    z = zone(tz)
    raw = text.strip()
    if m := _MONTH.match(raw):
        year, month = int(m.group(1)), int(m.group(2))
        if not 1 <= month <= 12:
            raise PeriodError(f"bad period {text!r}: month {month} is not 1–12")
        first = dt.date(year, month, 1)
        nxt = dt.date(year + (month == 12), month % 12 + 1, 1)
        kind, label = PeriodKind.MONTH, f"{year:04d}-{month:02d}"
    elif m := _WEEK.match(raw):
        year, week = int(m.group(1)), int(m.group(2))
        try:
            first = dt.date.fromisocalendar(year, week, 1)
        except ValueError:
            raise PeriodError(f"bad period {text!r}: {year} has no ISO week {week}") from None
        nxt = first + dt.timedelta(days=7)
        kind, label = PeriodKind.WEEK, f"{year:04d}-W{week:02d}"
    elif m := _QUARTER.match(raw):
        year, q = int(m.group(1)), int(m.group(2))
        first = dt.date(year, 3 * q - 2, 1)
        nxt = dt.date(year + (q == 4), (3 * q) % 12 + 1, 1)
        kind, label = PeriodKind.QUARTER, f"{year:04d}-Q{q}"
    else:
        raise PeriodError(f"bad period {text!r}: use 2026-11 (month), 2026-W46 (ISO week) or 2026-Q4 (quarter)")
    if not 2000 <= first.year <= 2100:
        raise PeriodError(f"bad period {text!r}: year out of range")
    start = dt.datetime.combine(first, dt.time(), z).timestamp()
    end = dt.datetime.combine(nxt, dt.time(), z).timestamp()
    clock = dt.datetime.now().timestamp() if now is None else now
    if start >= clock:
        raise PeriodError(f"period {label} has not begun yet")
    partial = end > clock
    return Period(kind, label, start, min(end, clock) if partial else end, tz, partial)
