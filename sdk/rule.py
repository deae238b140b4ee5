"""Alarm rules: the contract between a rule type and the alarm engine.

A rule is *pure*: ``evaluate(point, options, input, state) -> Evaluation``.  It
does no I/O and never reads a clock; the engine hands it the time in the input,
keeps its state (and persists it, so an on-delay survives a restart), and acts
on the conditions it returns.  That keeps every rule testable as a function and
lets the engine own the hard parts (dedup, lifecycle, timers, persistence).

A rule type is a class with a ``type_key`` and an ``Options`` msgspec Struct.
Options for one point are resolved from three layers, later wins:

1. ``defaults[point_class]`` on the class (standards-based, with a source comment),
2. the options of the configured rule instance (site file),
3. the point's user overrides: ``point.overrides["rules"][<rule key or type_key>]``.

Plugins return rule classes from ``firebus_register_rules``; the generic ones in
``firebus.sdk.rules`` are meant to be configured or subclassed by vendors.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from enum import StrEnum
from typing import Any, ClassVar, Iterable, Mapping

import msgspec

from .core_api import PointInfo
from .extension import NoOptions
from .vocab import AlarmCategory, Severity


class RuleConfigError(ValueError):
    """Options for a rule (site file or a point's override) do not validate."""


class Subject(StrEnum):
    """What an alarm is about.  One alarm per (subject, rule, category) while active."""

    POINT = "point"
    DEVICE = "device"  # offline: one alarm per device, not one per point
    LOCATION = "location"  # confirmed fire: two detectors in one room


class Scope(StrEnum):
    """Which state a rule keeps: per point, per device or per location."""

    POINT = "point"
    DEVICE = "device"
    LOCATION = "location"


# -- inputs -----------------------------------------------------------------------------


class RuleInput(msgspec.Struct, frozen=True, kw_only=True, tag=True):
    """Something happened that a rule may care about.  ``ts`` is the engine clock's time."""

    ts: float


class ValueInput(RuleInput, frozen=True, kw_only=True):
    """A new value of ``key`` (the rule's own point, or a related point of the same device)."""

    key: str
    value: Any = None
    fault: str | None = None  # the device (or a gate rule) flagged the value invalid
    point_id: str = ""
    point_class: str = ""
    value_ts: float | None = None  # the reading's own timestamp


class ReportInput(RuleInput, frozen=True, kw_only=True):
    """The same value was reported again: the device is alive, nothing changed."""

    key: str
    point_id: str = ""
    fault: str | None = None  # the repeated value is the invalid one reported before
    value_ts: float | None = None  # the repeated reading's own timestamp


class TickInput(RuleInput, frozen=True, kw_only=True):
    """The time a rule asked for (``Evaluation.wake_at``) has come.

    ``last_report`` is when the rule's subject (its point, or its device for a
    device-scoped rule) was last heard from, changed value or not, on the engine's
    clock.  Repeated identical values are not delivered to rules one by one (at
    tens of thousands a second that would be most of the work); a liveness rule
    asks at its deadline instead.
    """

    last_report: float | None = None


class AvailabilityInput(RuleInput, frozen=True, kw_only=True):
    """The driver or transport says the device is (un)reachable."""

    available: bool
    reason: str = ""


class LinkInput(RuleInput, frozen=True, kw_only=True):
    """The transport the rule's device is on (a broker, a gateway's TCP link, a serial line)
    went down (``up`` False) or came back.  While it is down nothing is heard from any
    device on it, so silence then says nothing about a device."""

    transport: str
    up: bool
    reason: str = ""


class CommandInput(RuleInput, frozen=True, kw_only=True):
    """A command to ``key`` on the rule's device was requested (``ok is None``) or finished."""

    key: str
    value: Any = None
    command_id: str = ""
    ok: bool | None = None
    error: str = ""


# -- outputs ----------------------------------------------------------------------------


class Condition(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """What a rule says about one alarm-able condition, now.

    Conditions sharing (subject, group, category) form one alarm: while any of
    them is active the alarm is active, at the highest severity among them (gas
    level 1 → level 2 updates one gas alarm instead of raising a second one).
    A condition a rule does not return is left as it was.
    """

    category: AlarmCategory
    severity: Severity
    active: bool
    value: Any = None
    message: str = ""
    message_zh: str = ""  # the same in Chinese (the panel shows the reader's language)
    group: str = ""  # sub-identity within a rule, e.g. a status bit's name
    subject: Subject = Subject.POINT
    lower_is_worse: bool = False  # peak tracking for low-pressure style alarms


class Evaluation(msgspec.Struct, kw_only=True):
    """A rule's answer: its new state, the conditions it decided, when to wake it."""

    state: dict[str, Any] = msgspec.field(default_factory=dict)
    conditions: list[Condition] = msgspec.field(default_factory=list)
    wake_at: float | None = None  # ask for a TickInput then; None cancels any earlier ask
    #: a gate rule (sensor sanity) sets this to make the value a fault for the other rules
    invalid: str | None = None
    #: hear every repeated identical value of the subject's device (``ReportInput``) until
    #: an evaluation says otherwise — e.g. a liveness rule while its device is offline, so
    #: the first sign of life clears the alarm at once.  Otherwise repeats are not
    #: delivered one by one; ``TickInput.last_report`` says when the device was last heard.
    wants_reports: bool = False
    #: a promise about the next values of the rule's own point: while a valid (un-faulted)
    #: number strictly between ``steady[0]`` and ``steady[1]`` arrives, this rule would
    #: return the same state, no active condition and no new wake-up, so the engine may
    #: skip it (a threshold far from its settings, a sanity range).  Anything else — a value
    #: outside, a fault, a tick, another input — is evaluated as usual.  None: no promise.
    steady: tuple[float, float] | None = None


# -- the base class ---------------------------------------------------------------------


def _merge(base: dict[str, Any], extra: Mapping[str, Any] | None) -> dict[str, Any]:
    if extra:
        base.update(extra)
    return base


class AlarmRule(ABC):
    """A rule type.  One instance per configured rule (``key``), evaluated per point.

    Subclasses set ``type_key``, ``Options`` and usually ``defaults`` (point class →
    option values, each with the standard it comes from) and implement ``evaluate``.
    """

    type_key: ClassVar[str]
    Options: ClassVar[type[msgspec.Struct]] = NoOptions
    #: point class -> option values; the rule applies to these classes unless configured otherwise
    defaults: ClassVar[Mapping[str, Mapping[str, Any]]] = {}
    #: whose state the rule keeps (and whose inputs it sees together)
    scope: ClassVar[Scope] = Scope.POINT
    #: gate rules run first; if one says ``invalid`` the value reaches the others as a fault
    gate: ClassVar[bool] = False
    #: an overdue wake-up found at start-up is pushed back by the engine's downtime
    #: (heartbeats: silence while firebus itself was down says nothing about a device)
    pause_while_down: ClassVar[bool] = False

    def __init__(
        self,
        key: str | None = None,
        options: Mapping[str, Any] | None = None,
        point_classes: Iterable[str] | None = None,
    ) -> None:
        self.key = key or self.type_key
        self.options = dict(options or {})
        self.point_classes = frozenset(point_classes) if point_classes is not None else None
        self._cache: dict[str, tuple[PointInfo, Any, msgspec.Struct]] = {}
        self._by_raw: dict[bytes, msgspec.Struct] = {}

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.key!r}>"

    # -- which points, which options ------------------------------------------------------

    def point_override(self, point: PointInfo) -> Mapping[str, Any] | None:
        if not point.overrides:
            return None  # the common case, asked for every rule of every point: no isinstance
        rules = point.overrides.get("rules")
        if rules is None or not (type(rules) is dict or isinstance(rules, Mapping)):
            return None
        found = rules.get(self.key)
        if found is None:
            found = rules.get(self.type_key)
        if found is not None and type(found) is not dict and not isinstance(found, Mapping):
            raise RuleConfigError(
                f"rule {self.key!r}: override for point {point.point_id} must be a mapping, got {found!r}"
            )
        return found

    def applies_to(self, point: PointInfo) -> bool:
        override = self.point_override(point)
        if override is not None and override.get("enabled") is False:
            return False
        if self.point_classes is not None:
            return point.point_class in self.point_classes
        return point.point_class in self.defaults or override is not None

    def merge_options(self, point: PointInfo) -> dict[str, Any]:
        """The raw option values for ``point`` (class defaults < rule < point override)."""
        merged = _merge({}, self.defaults.get(point.point_class))
        _merge(merged, self.options)
        override = dict(self.point_override(point) or {})
        override.pop("enabled", None)
        return _merge(merged, override)

    def options_for(self, point: PointInfo) -> msgspec.Struct:
        """Validated options for ``point``; raises ``RuleConfigError`` naming the point.

        Cached per point: a ``PointInfo`` is immutable and replaced when anything about
        the point changes (overrides), so the same object means the same options.
        """
        cached = self._cache.get(point.point_id)
        if cached is not None and cached[0] is point:
            return cached[2]
        raw = self.merge_options(point)
        if cached is not None and cached[1] == raw:
            self._cache[point.point_id] = (point, raw, cached[2])
            return cached[2]
        # Thousands of points share a handful of option sets: validate each set once.
        key = _options_key(raw)
        opts = self._by_raw.get(key) if key is not None else None
        if opts is None:
            try:
                opts = msgspec.convert(_severity_names(raw), self.Options, strict=False)
            except msgspec.ValidationError as exc:
                raise RuleConfigError(
                    f"rule {self.key!r} on point {point.point_id} ({point.point_class}): {exc}") from exc
            self.check_options(opts)
            if key is not None:
                self._by_raw[key] = opts
        self._cache[point.point_id] = (point, raw, opts)
        return opts

    @classmethod
    def check_config(
        cls, options: Mapping[str, Any] | None = None, point_classes: Iterable[str] | None = None, key: str | None = None
    ) -> None:
        """Validate a configured instance as it will be used: merged with each point
        class's defaults (options alone need not be complete: a pump's ``demand_key``
        comes from the class defaults).  Raises ``RuleConfigError`` naming the class."""
        rule = cls(key, options, point_classes)
        classes = list(point_classes) if point_classes is not None else list(cls.defaults)
        for point_class in classes or [""]:
            probe = PointInfo(point_id=f"<{point_class or 'any'} point>", device_id="", key="", point_class=point_class)
            rule.options_for(probe)

    def check_options(self, opts: Any) -> None:
        """Cross-field validation; raise ``RuleConfigError``."""

    def related_keys(self, point: PointInfo, opts: Any) -> tuple[str, ...]:
        """Other point keys of the same device whose values/commands this rule needs."""
        return ()

    def scope_of(self, point: PointInfo) -> str:
        if self.scope is Scope.DEVICE:
            return f"device:{point.device_id}"
        if self.scope is Scope.LOCATION and point.location_id:
            return f"location:{point.location_id}"
        return point.point_id

    # -- the rule itself ------------------------------------------------------------------

    @abstractmethod
    def evaluate(self, point: PointInfo, opts: Any, inp: RuleInput, state: Mapping[str, Any]) -> Evaluation:
        """Decide.  Must not mutate ``state``; return the new state in the ``Evaluation``."""


def _severity_names(raw: Any) -> Any:
    """Let site files write ``severity: alarm`` instead of ``severity: 50``."""
    if isinstance(raw, dict):
        out = {}
        for k, v in raw.items():
            if isinstance(k, str) and k.endswith("severity") and isinstance(v, str) and not v.isdigit():
                try:
                    v = Severity[v.upper()]
                except KeyError:
                    raise RuleConfigError(f"unknown severity {v!r} (one of {[s.name.lower() for s in Severity]})") from None
            out[k] = _severity_names(v)
        return out
    if isinstance(raw, list):
        return [_severity_names(v) for v in raw]
    return raw


_key_encoder = msgspec.json.Encoder(order="sorted")


def _options_key(raw: Any) -> bytes | None:
    try:
        return _key_encoder.encode(raw)
    except (TypeError, msgspec.EncodeError):
        return None


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value == value


def truthy(value: Any) -> bool:
    """Device booleans arrive as bool, 0/1, "1", "true", "on", "alarm" …"""
    if isinstance(value, str):
        return value.strip().lower() in {"1", "true", "on", "yes", "alarm", "active", "fire"}
    return bool(value)
