"""Fire first, in the event loop too: telemetry is held off while a fire or gas alarm is handled.

Queues are not the only place an alarm can wait.  At full ingest the event loop
is busy with telemetry, and every step of an alarm's path (evaluation, its
transition's commit, notify's outbox writes, the HTTP POST) waits for its turn
behind telemetry callbacks.  So when a life-safety entry is queued — a change
of a fire or gas detector's alarm point, or a fire or gas ``AlarmEvent`` — the
transports stop taking telemetry for ``hold_s`` (renewed by the next such
entry); the broker keeps what waits.  Only a busy loop is held
(a transport holding ``busy_held`` telemetry messages or more): a quiet one
serves the alarm at once.  A hold never lasts more than ``max_hold_s`` in a
row: then telemetry flows for ``breather_s`` (a flapping detector must not
silence everything else).  Other alarm
categories (electrical, faults) travel the alarm lanes of the queues but do not
hold telemetry: a storm of them is telemetry-driven and must not starve itself.
Counted in ``metrics()``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Iterable

from firebus.sdk.events import AlarmEvent, Event, StateChanged
from firebus.sdk.vocab import AlarmCategory

log = logging.getLogger(__name__)

LIFE_SAFETY = frozenset({AlarmCategory.FIRE, AlarmCategory.GAS})
_FIRE_POINTS = frozenset({"smoke", "heat", "flame", "fire"})


def life_safety(event: Event) -> bool:
    """A fire or gas alarm's own entry (its detector's alarm point, or its transition)."""
    data = event.data
    if type(data) is StateChanged:
        cls = data.point_class
        return cls in _FIRE_POINTS or (cls.startswith("gas") and "alarm" in cls)
    return type(data) is AlarmEvent and data.category in LIFE_SAFETY


class AlarmPriority:
    def __init__(self, transports: Iterable[Any] = (), *, hold_s: float = 0.3, max_hold_s: float = 30.0,
                 breather_s: float = 1.0, busy_held: int = 1000) -> None:
        self.transports = [t for t in transports if hasattr(t, "hold_telemetry")]
        self.hold_s = hold_s
        self.max_hold_s = max_hold_s
        self.breather_s = breather_s
        #: hold only when the loop is busy with telemetry: this many telemetry messages in hand
        self.busy_held = busy_held
        self._until = 0.0
        self._since = 0.0
        self._holding = False
        self._breathe_until = 0.0
        self._timer: asyncio.TimerHandle | None = None
        self.holds = 0
        self.held_s = 0.0

    def add(self, transport: Any) -> None:
        if hasattr(transport, "hold_telemetry"):
            self.transports.append(transport)

    def urgent(self, events: list[Event]) -> None:
        """The store's hook for alarm-lane entries: boost if one is a fire or gas alarm's."""
        if self.transports and any(life_safety(e) for e in events):
            self.boost()

    def boost(self) -> None:
        """Fire or gas alarm work is here: hold telemetry off for a moment (or a moment longer)."""
        if not self.transports:
            return
        now = time.monotonic()
        if now < self._breathe_until:
            return
        if not self._holding and not any(self._busy(t) for t in self.transports):
            return  # a quiet loop serves the alarm at once; holding would only delay telemetry
        self._until = now + self.hold_s
        if not self._holding:
            self._holding = True
            self._since = now
            self.holds += 1
            for t in self.transports:
                try:
                    t.hold_telemetry(True)
                except Exception:
                    log.exception("priority: holding telemetry on %s failed", getattr(t, "key", t))
            self._arm(self.hold_s)

    def _busy(self, transport: Any) -> bool:
        load = getattr(transport, "telemetry_load", None)
        return load is None or load() >= self.busy_held

    def _arm(self, delay: float) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        self._timer = loop.call_later(max(0.001, delay), self._check)

    def _check(self) -> None:
        self._timer = None
        if not self._holding:
            return
        now = time.monotonic()
        if now >= self._until or now - self._since >= self.max_hold_s:
            if now - self._since >= self.max_hold_s:
                self._breathe_until = now + self.breather_s
            self.release()
        else:
            self._arm(min(self._until, self._since + self.max_hold_s) - now)

    def release(self) -> None:
        if not self._holding:
            return
        self._holding = False
        self.held_s += time.monotonic() - self._since
        for t in self.transports:
            try:
                t.hold_telemetry(False)
            except Exception:
                log.exception("priority: releasing telemetry on %s failed", getattr(t, "key", t))
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def metrics(self) -> dict[str, Any]:
        return {"holding": self._holding, "holds": self.holds, "held_s": round(self.held_s, 3)}
