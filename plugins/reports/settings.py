"""A point's alarm and pre-alarm settings, resolved as the alarm engine resolves them.

The engine runs the site file's ``alarms.rules`` entries plus (``default_rules``)
every rule type the site does not configure, keyed by its type.  For the
threshold rule a point's options are its class defaults < the rule's options <
the point's override (``rules: {threshold: {alarm: 400}}``), see
``firebus.sdk.rules.threshold``.  When several threshold rules apply to a point
the most sensitive level wins (the lowest high-direction value).
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping

import msgspec

from firebus.sdk import AlarmCategory, PointInfo, RuleConfigError
from firebus.sdk.rules.threshold import ThresholdOptions, ThresholdRule


class RuleSpec(msgspec.Struct, frozen=True):
    """One ``alarms.rules`` entry of the site file (only threshold ones matter here)."""

    key: str
    type: str
    options: dict[str, Any] = {}
    point_classes: list[str] | None = None


class ThresholdSettings:
    def __init__(self, rules: Iterable[RuleSpec] = (), default_rules: bool = True) -> None:
        specs = [r for r in rules if r.type == ThresholdRule.type_key]
        self.rules = [ThresholdRule(r.key, r.options, r.point_classes) for r in specs]
        if default_rules and not any(r.key == ThresholdRule.type_key for r in specs):
            self.rules.append(ThresholdRule())
        self.problems: list[str] = []

    @classmethod
    def from_alarms_section(cls, alarms: Mapping[str, Any] | None) -> "ThresholdSettings":
        alarms = alarms or {}
        rules = msgspec.convert(alarms.get("rules") or [], list[RuleSpec], strict=False)
        return cls(rules, bool(alarms.get("default_rules", True)))

    def for_point(self, point: PointInfo) -> tuple[float | None, float | None]:
        """(alarm setting, pre-alarm setting) for ``point``; None where no level applies."""
        alarm: float | None = None
        pre: float | None = None
        for rule in self.rules:
            if not rule.applies_to(point):
                continue
            try:
                opts = rule.options_for(point)
            except RuleConfigError as exc:  # the engine refuses it too; say so in the report
                self.problems.append(str(exc))
                continue
            assert isinstance(opts, ThresholdOptions)
            for level in opts.levels:
                if level.direction != "high":
                    continue
                if level.category == AlarmCategory.ELECTRICAL_ALARM or level.name == "alarm":
                    alarm = level.value if alarm is None else min(alarm, level.value)
                elif level.category == AlarmCategory.ELECTRICAL_PRE_ALARM or level.name == "pre_alarm":
                    pre = level.value if pre is None else min(pre, level.value)
        return alarm, pre
