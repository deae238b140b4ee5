"""The alarm engine: rules → alarms → escalation and linkage.  See docs/alarms.md."""

from __future__ import annotations

from .engine import DEFAULT_ESCALATION, AlarmConfig, AlarmEngine, RuleConfig
from .linkage import LinkageRule, Match, MqttPublish, Snapshot, WritePoint, make_mqtt_publish_handler
from .model import Alarm, AlarmError, AlarmNotFound, AlarmStatus, Transition, Verdict
from .schema import ALARM_MIGRATIONS

__all__ = [
    "ALARM_MIGRATIONS",
    "DEFAULT_ESCALATION",
    "Alarm",
    "AlarmConfig",
    "AlarmEngine",
    "AlarmError",
    "AlarmNotFound",
    "AlarmStatus",
    "LinkageRule",
    "Match",
    "MqttPublish",
    "RuleConfig",
    "Snapshot",
    "Transition",
    "Verdict",
    "WritePoint",
    "make_mqtt_publish_handler",
]
