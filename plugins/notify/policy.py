"""Quiet hours and per-recipient rate limiting: pure logic over the clock's time."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from .config import Person, QuietHours, parse_hhmm


def quiet_until(person: Person, now: float, tz: dt.tzinfo) -> float | None:
    """If ``now`` is inside one of the person's quiet windows, when that window ends; else None."""
    local = dt.datetime.fromtimestamp(now, tz)
    ends = [end for qh in person.quiet_hours if (end := _window_end(qh, local)) is not None]
    return max(ends).timestamp() if ends else None


def _window_end(qh: QuietHours, local: dt.datetime) -> dt.datetime | None:
    start, end = parse_hhmm(qh.start), parse_hhmm(qh.end)
    if start == end:
        return None
    # The window that could contain ``local`` started today or (spanning midnight) yesterday.
    for days_back in (0, 1):
        day = (local - dt.timedelta(days=days_back)).date()
        if qh.days and day.isoweekday() not in qh.days:
            continue
        begin = dt.datetime.combine(day, start, local.tzinfo)
        finish = dt.datetime.combine(day if end > start else day + dt.timedelta(days=1), end, local.tzinfo)
        if begin <= local < finish:
            return finish
    return None


@dataclass
class _Window:
    start: float
    count: int = 0


class RateLimiter:
    """A fixed window per (recipient, channel) that starts with the first message.

    The first ``burst`` messages of a window go out; the rest are held and the
    caller sends a digest when the window closes (``window_end``).  The window
    starts at the first message, so the first message after a quiet spell is
    never held: a flood can delay the tenth message, never the first.
    """

    def __init__(self, burst: int, window_s: float) -> None:
        self.burst = burst
        self.window_s = window_s
        self._windows: dict[tuple[str, str], _Window] = {}

    def admit(self, recipient: str, channel: str, now: float) -> bool:
        key = (recipient, channel)
        window = self._windows.get(key)
        if window is None or now >= window.start + self.window_s:
            window = self._windows[key] = _Window(start=now)
        if window.count < self.burst:
            window.count += 1
            return True
        return False

    def would_admit(self, recipient: str, channel: str, now: float) -> bool:
        window = self._windows.get((recipient, channel))
        return window is None or now >= window.start + self.window_s or window.count < self.burst

    def window_end(self, recipient: str, channel: str, now: float) -> float:
        window = self._windows.get((recipient, channel))
        return window.start + self.window_s if window is not None else now


def admit_all(limiters: list[RateLimiter], recipient: str, channel: str, now: float) -> bool:
    """Admitted only if every limiter admits (the site's and the vendor's); none counts a refusal."""
    if not all(lim.would_admit(recipient, channel, now) for lim in limiters):
        return False
    for lim in limiters:
        lim.admit(recipient, channel, now)
    return True
