"""Alarm configuration from a site-file section: validated, with errors that say where."""

import msgspec
import pytest

from firebus.core.alarms import AlarmConfig, AlarmEngine, WritePoint
from firebus.sdk import AlarmCategory
from firebus.sdk.rules import GENERIC_RULES

from .harness import running
from .points import rc

SECTION = {
    "rules": [
        {"key": "leakage", "type": "threshold", "options": {"on_delay": "10"}, "point_classes": ["residual_current"]},
    ],
    "escalation": {"fire": [60, 300, 900], "gas": []},
    "linkage": [
        {
            "name": "kitchen-gas",
            "when": {"categories": ["gas"], "min_severity": 50},
            "actions": [{"type": "write_point", "point_key": "valve_close", "value": 1}, {"type": "snapshot", "camera": "c1"}],
        }
    ],
}


def test_a_site_section_converts_to_typed_config():
    config = AlarmConfig.from_dict(SECTION)
    assert config.escalation[AlarmCategory.FIRE] == [60, 300, 900]
    assert config.linkage[0].actions[0] == WritePoint(point_key="valve_close", value=1)


@pytest.mark.parametrize(
    "patch, message",
    [
        ({"escalation": {"fires": [60]}}, "Invalid enum value 'fires'"),
        ({"escalation": {"fire": [0]}}, "at least 1 s"),
        ({"linkage": [{"name": "x", "when": {}, "actions": [{"type": "sms"}]}]}, "Invalid value 'sms'"),
        ({"linkage": [{"name": "x", "when": {}, "actions": [{"type": "write_point"}]}]}, "missing required field `point_key`"),
    ],
)
def test_bad_sections_are_refused_with_the_reason(patch, message):
    with pytest.raises(msgspec.ValidationError, match=message):
        AlarmConfig.from_dict({**SECTION, **patch})


def test_unknown_or_duplicate_rules_fail_at_construction():
    with pytest.raises(ValueError, match="unknown type 'thresold'"):
        AlarmEngine._instantiate(list(GENERIC_RULES), AlarmConfig.from_dict({"rules": [{"key": "a", "type": "thresold"}]}).rules)
    with pytest.raises(ValueError, match="configured twice"):
        AlarmEngine._instantiate(
            list(GENERIC_RULES),
            AlarmConfig.from_dict({"rules": [{"key": "a", "type": "threshold"}, {"key": "a", "type": "heartbeat"}]}).rules,
        )


@pytest.mark.anyio
async def test_repeats_publish_at_most_one_update_per_interval(tmp_path):
    async with running(tmp_path / "db.sqlite", [rc()]) as h:
        await h.value("rc1", 310.0)
        for value in (311.0, 312.0, 313.0):  # same instant: counted, not published
            await h.value("rc1", value)
        assert not h.alarm_events("update")
        await h.advance(10)
        await h.value("rc1", 314.0)
        [update] = h.alarm_events("update", category=AlarmCategory.ELECTRICAL_ALARM)
        assert (update.count, update.value) == (5, 314.0)


@pytest.mark.parametrize(
    "rule_type, options, point_classes",
    [
        ("threshold", {"alarm": 400, "on_delay": 10}, ["residual_current"]),  # level shorthand
        ("demand_feedback", {"timeout": 90}, ["pump_state"]),  # demand_key from the class defaults
        ("rate_of_rise", {"window": 30}, None),  # rise from the residual-current defaults
        ("heartbeat", {"interval": 86400, "grace": 3600}, None),
    ],
)
def test_partial_options_validate_against_the_class_defaults(rule_type, options, point_classes):
    from firebus.sdk.rules import GENERIC_RULES

    cls = {c.type_key: c for c in GENERIC_RULES}[rule_type]
    cls.check_config(options, point_classes)


@pytest.mark.parametrize(
    "rule_type, options, point_classes, message",
    [
        ("threshold", {"alarm": "high"}, ["residual_current"], "level 'alarm' must be a number"),
        ("threshold", {"on_delay": -1}, None, "must not be negative"),
        ("demand_feedback", {"timeout": 90}, ["status"], "missing required field `demand_key`"),
        ("two_detector", {"required": 0}, None, "required ≥ 1"),
        ("device_status", {"flags": [{"name": "x", "mask": 1, "category": "fire", "severity": "loud"}]}, ["status"],
         "unknown severity 'loud'"),
    ],
)
def test_bad_rule_options_are_refused_at_start_up(rule_type, options, point_classes, message):
    from firebus.sdk.rule import RuleConfigError
    from firebus.sdk.rules import GENERIC_RULES

    cls = {c.type_key: c for c in GENERIC_RULES}[rule_type]
    with pytest.raises(RuleConfigError, match=message):
        cls.check_config(options, point_classes)
    config = AlarmConfig.from_dict({"rules": [{"key": "r", "type": rule_type, "options": options,
                                               "point_classes": point_classes}]})
    with pytest.raises(ValueError, match=message):
        AlarmEngine._instantiate(list(GENERIC_RULES), config.rules)
