"""Generic alarm rule types, ready to configure or subclass.

A plugin registers them (or subclasses with its own ``type_key`` and defaults)
from ``firebus_register_rules``.  See ``docs/alarms.md``.
"""

from __future__ import annotations

from .confirm import ConfirmOptions, MultiDetectorRule
from .demand import DemandFeedbackRule, DemandOptions
from .heartbeat import HeartbeatOptions, HeartbeatRule
from .rate import RateOfRiseRule, RateOptions
from .reported import ReportedHeartbeatRule
from .sanity import MODBUS_SENTINELS, SanityOptions, SensorSanityRule
from .status import DeviceStatusRule, Flag, StatusOptions
from .threshold import Level, ThresholdOptions, ThresholdRule

#: Every generic rule type, in the order the engine evaluates them (gates first anyway).
GENERIC_RULES: tuple[type, ...] = (
    SensorSanityRule,
    ThresholdRule,
    RateOfRiseRule,
    DeviceStatusRule,
    HeartbeatRule,
    MultiDetectorRule,
    DemandFeedbackRule,
)

__all__ = [
    "GENERIC_RULES",
    "MODBUS_SENTINELS",
    "ConfirmOptions",
    "DemandFeedbackRule",
    "DemandOptions",
    "DeviceStatusRule",
    "Flag",
    "HeartbeatOptions",
    "HeartbeatRule",
    "Level",
    "MultiDetectorRule",
    "RateOfRiseRule",
    "RateOptions",
    "ReportedHeartbeatRule",
    "SanityOptions",
    "SensorSanityRule",
    "StatusOptions",
    "ThresholdOptions",
    "ThresholdRule",
]
