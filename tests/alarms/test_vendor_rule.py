"""A vendor rule: subclass a generic one with its own type_key and point-class defaults."""

import pytest

from firebus.sdk import AlarmCategory, PointInfo, Severity, hookimpl
from firebus.sdk.rules import GENERIC_RULES, ThresholdRule

from .harness import running

pytestmark = pytest.mark.anyio


class ArcHalfCycles(ThresholdRule):
    """Arc-fault half-cycles counted per second by a (hypothetical) detector."""

    type_key = "acme.arc_half_cycles"
    # GB 50166-2019 4.8.6: ≤ 9 arcing half-cycles in 1 s → no alarm; ≥ 14 → alarm.
    defaults = {
        "acme.arc_half_cycles": {
            "levels": [{"name": "alarm", "value": 14, "category": "electrical_alarm", "severity": "alarm"}]
        }
    }


class AcmePlugin:
    @hookimpl
    def firebus_register_rules(self, core):
        return [ArcHalfCycles]


async def test_vendor_subclass_registered_by_hook_runs_with_its_defaults(tmp_path):
    rule_types = [*GENERIC_RULES, *AcmePlugin().firebus_register_rules(None)]
    p = PointInfo(point_id="arc", device_id="acme1", key="arc", point_class="acme.arc_half_cycles")
    async with running(tmp_path / "db.sqlite", [p], rule_types=rule_types) as h:
        for value in (9, 13):
            await h.value("arc", value)
        assert not h.alarm_events()
        await h.value("arc", 14)
        [new] = h.alarm_events("new")
        assert (new.rule, new.category, new.severity) == ("acme.arc_half_cycles", AlarmCategory.ELECTRICAL_ALARM, Severity.ALARM)
