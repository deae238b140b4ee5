"""The engine's timers are the SDK's keyed timer queue (shared with the notify plugin)."""

from firebus.sdk.timers import Timer, TimerQueue

__all__ = ["Timer", "TimerQueue"]
