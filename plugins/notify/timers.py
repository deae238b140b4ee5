"""The notify plugin's timers: one queue on the core's clock, three kinds of key.

* ``esc|<alarm>|<route>`` — the next escalation step of an alarm on a route is due;
* ``digest|<recipient>|<channel>`` — a rate-limit window has passed: send what was held as one digest;
* ``purge|`` — daily housekeeping of the outbox and of channels that keep state.

The timers keep no state of their own: they are re-armed at start from the
escalation rows and the held outbox rows (``NotifyService.run``).
"""

from __future__ import annotations

from typing import Any

from firebus.sdk.timers import Timer, TimerQueue

PURGE = "purge|"


def escalation_key(alarm_id: str, route: str) -> str:
    return f"esc|{alarm_id}|{route}"


def digest_key(recipient: str, channel: str) -> str:
    return f"digest|{recipient}|{channel}"


class NotifyTimers(TimerQueue):
    def __init__(self, clock: Any) -> None:
        super().__init__(clock, "notify")

    def arm(self, key: str, due: float) -> None:
        """Set (or move) the timer ``key`` to ``due``."""
        self.set(Timer(key=key, kind="notify", due=due))
