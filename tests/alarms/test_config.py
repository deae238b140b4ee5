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
