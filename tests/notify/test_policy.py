"""Quiet hours and the flood limiter: pure logic."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from firebus.plugins.notify.config import Person, QuietHours, Role
from firebus.plugins.notify.policy import RateLimiter, quiet_until

TZ = ZoneInfo("Asia/Shanghai")


def at(day: int, hour: int, minute: int = 0) -> float:
    return dt.datetime(2027, 3, day, hour, minute, tzinfo=TZ).timestamp()  # 2027-03-01 is a Monday


def person(*windows: QuietHours) -> Person:
    return Person(name="p", roles=[Role.DUTY_OFFICER], quiet_hours=list(windows))


def test_window_across_midnight() -> None:
    p = person(QuietHours(start="22:00", end="07:00"))
    assert quiet_until(p, at(1, 23), TZ) == at(2, 7)
    assert quiet_until(p, at(2, 6, 59), TZ) == at(2, 7)
    assert quiet_until(p, at(2, 7), TZ) is None
    assert quiet_until(p, at(2, 21, 59), TZ) is None


def test_weekday_filter_applies_to_the_day_the_window_starts() -> None:
    p = person(QuietHours(start="22:00", end="07:00", days=[5]))  # Friday night only
    assert quiet_until(p, at(5, 23), TZ) == at(6, 7)  # Friday 23:00
    assert quiet_until(p, at(6, 3), TZ) == at(6, 7)  # Saturday 03:00 is still Friday's night
    assert quiet_until(p, at(6, 23), TZ) is None  # Saturday night is not quiet


def test_no_windows_never_quiet() -> None:
    assert quiet_until(person(), at(1, 3), TZ) is None


def test_limiter_admits_the_first_burst_then_holds_until_the_window_ends() -> None:
    limiter = RateLimiter(burst=2, window_s=60)
    assert [limiter.admit("p", "sms", t) for t in (0, 1, 2, 59)] == [True, True, False, False]
    assert limiter.window_end("p", "sms", 59) == 60
    assert limiter.admit("p", "sms", 60) is True  # a new window: first message goes at once
    assert limiter.admit("q", "sms", 2) is True  # per recipient
    assert limiter.admit("p", "mail", 2) is True  # and per channel
