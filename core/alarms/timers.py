"""The engine's timers: the SDK's keyed timer queue (shared with the notify plugin), and
arming it — one timer per key, moved or cancelled when a rule's wake-up moves.

What a timer does when it fires is ``dispatch.py``'s ``_fire_timer``.
"""

from __future__ import annotations

from typing import Any

from firebus.sdk.timers import Timer, TimerQueue

from .state import EngineState

__all__ = ["Timer", "TimerArming", "TimerQueue"]


class TimerArming(EngineState):
    """Set, move or cancel the engine's keyed timers."""

    def _arm_rule(self, rule_key: str, scope: str, due: float | None) -> None:
        self._arm(f"rule:{rule_key}:{scope}", "rule", due, {"rule": rule_key, "scope": scope} if due else {})

    def _arm(self, key: str, kind: str, due: float | None, data: dict[str, Any]) -> None:
        current = self.timers.get(key)
        if due is None:
            if current is not None:
                self.timers.cancel(key)
            return
        if current is not None and current.due == due:
            return
        self.timers.set(Timer(key=key, kind=kind, due=due, data=data))
