"""The site file's ``alarms`` section: its Structs, their checks, and the rule instances it makes.

Everything here is decided at start-up, before the engine handles an entry.
"""

from __future__ import annotations

from typing import Any, Mapping

import msgspec

from firebus.sdk import AlarmCategory
from firebus.sdk.rule import AlarmRule

from .linkage import LinkageRule

# HA ``alert``'s ``repeat: [1, 5, 15]``: the gaps between reminders, the last one
# repeating until someone acknowledges or silences the alarm.
DEFAULT_ESCALATION = [60.0, 300.0, 900.0]


class RuleConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One configured rule instance (the site file's ``alarms.rules`` entries)."""

    key: str
    type: str
    options: dict[str, Any] = {}
    point_classes: list[str] | None = None


class AlarmConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    #: configured rule instances (site file); None: none beyond the defaults
    rules: list[RuleConfig] | None = None
    #: also run every registered rule type the site does not configure, keyed by its
    #: type_key, with its standard defaults: configuring one custom threshold must not
    #: silently switch off offline detection or two-detector confirmation
    default_rules: bool = True
    linkage: list[LinkageRule] = []
    #: category -> gaps in seconds between escalation reminders (empty: none)
    escalation: dict[AlarmCategory, list[float]] = msgspec.field(
        default_factory=lambda: {
            AlarmCategory.FIRE: DEFAULT_ESCALATION,
            AlarmCategory.GAS: DEFAULT_ESCALATION,
            AlarmCategory.ELECTRICAL_ALARM: DEFAULT_ESCALATION,
        }
    )
    #: minimum seconds between UPDATE events for repeats that change nothing but value/count
    update_interval: float = 10.0
    #: seconds between checkpoints of rule state when no transition forces one
    checkpoint_s: float = 1.0
    #: seconds a transport link (MQTT broker, Modbus gateway, serial line) may be down before
    #: its communication fault (通讯故障) is raised; GB 14287 / GB 16808 practice wants a
    #: communication fault shown within 100 s; reconnects within this are not reported
    link_fault_after: float = 30.0

    def __post_init__(self) -> None:
        for category, gaps in self.escalation.items():
            if any(gap < 1 for gap in gaps):
                raise ValueError(f"escalation gaps for {category} must be at least 1 s, got {gaps}")
        names = [rule.name for rule in self.linkage]
        if len(set(names)) != len(names):
            raise ValueError(f"linkage rule names repeat: {names}")
        if self.checkpoint_s <= 0:
            raise ValueError("checkpoint_s must be > 0")
        if not 0 <= self.link_fault_after <= 100:
            raise ValueError("link_fault_after must be between 0 and 100 s (a communication fault within 100 s)")

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> "AlarmConfig":
        """Validate a site file section; errors name the offending path (``$.linkage[0]…``)."""
        return msgspec.convert(raw, cls, strict=False)


def instantiate_rules(
    types: list[type[AlarmRule]], configs: list[RuleConfig] | None, default_rules: bool = True
) -> list[AlarmRule]:
    """The rule instances a site runs: every registered type not configured (with its
    defaults, unless ``default_rules`` is off), then each configured instance.

    Raises ``ValueError`` (``RuleConfigError`` is one) for a type registered twice, a key
    configured twice, an unknown type or options that do not validate."""
    by_type: dict[str, type[AlarmRule]] = {}
    for cls in types:
        if cls.type_key in by_type and by_type[cls.type_key] is not cls:
            raise ValueError(f"alarm rule type {cls.type_key!r} registered twice: {by_type[cls.type_key]} and {cls}")
        by_type[cls.type_key] = cls
    rules: list[AlarmRule] = []
    seen: set[str] = set()
    configured_types = {cfg.type for cfg in configs or []}
    if default_rules:
        for type_key, cls in by_type.items():
            if type_key not in configured_types:
                rules.append(cls())
                seen.add(type_key)
    for cfg in configs or []:
        if cfg.key in seen:
            raise ValueError(f"alarm rule key {cfg.key!r} is configured twice")
        seen.add(cfg.key)
        cls = by_type.get(cfg.type)
        if cls is None:
            raise ValueError(f"alarm rule {cfg.key!r}: unknown type {cfg.type!r} (known: {sorted(by_type)})")
        cls.check_config(cfg.options, cfg.point_classes, cfg.key)  # RuleConfigError (a ValueError)
        rules.append(cls(cfg.key, cfg.options, cfg.point_classes))
    return rules
