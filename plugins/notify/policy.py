"""Quiet hours and per-recipient rate limiting: pure logic over the clock's time."""

from __future__ import annotations

import datetime as dt
from collections import deque
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


class SendPacer:
    """A channel's own request limit (a group robot: 20 messages a minute), as sliding windows.

    Unlike ``RateLimiter`` nothing is held back or digested: a row that finds no room waits
    in the outbox, ``pending``, until the oldest send of the window leaves it, and rows keep
    their priority order (fire first).  Going over is worse than waiting: DingTalk throttles
    a robot that sent more than 20 in a minute for 10 minutes, WeCom refuses (errcode 45009)
    and the outbox would back the whole channel off.
    """

    def __init__(self, limits: list[tuple[int, float]]) -> None:
        self.limits = [(int(count), float(window)) for count, window in limits if count > 0 and window > 0]
        longest = max((count for count, _ in self.limits), default=0)
        self._sent: deque[float] = deque(maxlen=longest or 1)
        self.waits = 0  # times a send had to wait for room

    def delay(self, now: float) -> float:
        """Seconds until one more request fits every window (0: now)."""
        wait = 0.0
        for count, window in self.limits:
            if len(self._sent) >= count:
                wait = max(wait, self._sent[-count] + window - now)
        return max(0.0, wait)

    def room(self, now: float) -> int:
        """Requests that would fit every window now."""
        free = [count - sum(1 for t in list(self._sent)[-count:] if t > now - window)
                for count, window in self.limits]
        return max(0, min(free)) if free else 1 << 30

    def take(self, now: float) -> None:
        if self.limits:
            self._sent.append(now)
