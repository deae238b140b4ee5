"""The ``notify:`` section of the site file, as msgspec Structs.

The core hands the section over as a plain dict; ``load_config`` validates it
with ``msgspec.convert`` and re-raises every problem as ``NotifyConfigError``
whose message starts with the path into the site file
(``notify.people[2].contacts``), so an installer can find the line.
Cross-references (a route naming a channel that does not exist, a person
with no way to be reached) are checked here too: a typo must stop start-up,
not silently leave a fire alarm unannounced.
"""

from __future__ import annotations

import datetime as dt
import re
from enum import StrEnum
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec

from firebus.sdk.durations import parse_duration
from firebus.sdk import AlarmCategory, Severity


class NotifyConfigError(ValueError):
    """The ``notify:`` section is invalid; the message names the path."""


class Role(StrEnum):
    DUTY_OFFICER = "duty_officer"  # 值班员: control-room operator, first to be told
    UNIT_MANAGER = "unit_manager"  # 安全管理人: the unit's fire-safety manager
    SUPERVISOR = "supervisor"  # 监督员: fire-brigade / authority supervisor
    MAINTENANCE = "maintenance"  # integrator / maintenance company (faults, offline)


class Language(StrEnum):
    ZH = "zh"
    EN = "en"


class Strict(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    pass


class QuietHours(Strict):
    """A daily window (local time of ``notify.timezone``) in which non-urgent messages wait.

    ``start`` > ``end`` spans midnight (``22:00``–``07:00``).  ``days`` are ISO
    weekdays (1 = Monday) the window *starts* on; empty means every day.
    """

    start: str
    end: str
    days: list[int] = []


class Person(Strict):
    name: str
    roles: list[Role]
    units: list[str] = []  # empty: every unit (a district supervisor, the control room)
    contacts: dict[str, str] = {}  # channel key → address (e-mail, mobile, user id, ntfy topic …)
    # The firebus user this person signs in as (panel, app, ntfy app); default: ``name``.
    # Only that user (or an admin) may read the person's ntfy topic or register web push for them.
    user: str | None = None
    language: Language | None = None
    quiet_hours: list[QuietHours] = []


class Step(Strict):
    """One escalation step: who is told, and when (minutes after the alarm started)."""

    roles: list[Role]
    after_minutes: float = 0.0


def _default_steps() -> list[Step]:
    return [
        Step(roles=[Role.DUTY_OFFICER], after_minutes=0),
        Step(roles=[Role.UNIT_MANAGER], after_minutes=5),
        Step(roles=[Role.SUPERVISOR], after_minutes=15),
    ]


class Escalation(Strict):
    steps: list[Step] = msgspec.field(default_factory=_default_steps)
    # After the last step, repeat it every N minutes until acknowledged (0: do not repeat).
    repeat_minutes: float = 0.0
    max_repeats: int = 10
    # Escalate on our own timer when no ESCALATE event has come from the alarm engine
    # by a step's due time.  Off: only the engine's ESCALATE events move an alarm on.
    own_timer: bool = True


class Route(Strict):
    name: str
    channels: list[str]
    units: list[str] = []  # empty: any unit
    categories: list[AlarmCategory] = []  # empty: any category
    min_severity: str | int = "info"
    escalation: Escalation = msgspec.field(default_factory=Escalation)
    notify_cleared: bool = True
    # Tell everyone already told that someone acknowledged (so the supervisor can stand down).
    notify_acknowledged: bool = False


class ChannelConfig(Strict):
    key: str
    type: str
    options: dict[str, Any] = {}
    language: Language | None = None  # for group channels (robots, webhooks)
    # Consecutive failed deliveries after which the channel shows as down.
    down_after: int = 3
    # This channel's own per-recipient limit instead of notify.rate_limit (a vendor's limit
    # applies on top: WeCom app 30/min per member, DingTalk work notices, Feishu).
    rate_limit: "RateLimit | None" = None
    # Requests this channel may make (every message, a WeCom image too), paced rather than
    # digested: rows wait for room.  None: the channel type's own (robots: 20 a minute).
    send_limit: "list[SendLimit] | None" = None
    enabled: bool = True


class SendLimit(Strict):
    """At most ``count`` requests in any ``window_s`` seconds."""

    count: Annotated[int, msgspec.Meta(ge=1)]
    window_s: Annotated[float, msgspec.Meta(gt=0)]


class TemplateOverride(Strict):
    """Replaces a built-in template.  Unset selectors match anything; the most specific wins."""

    kind: str  # new | escalate | cleared | acknowledged | digest
    body: str
    title: str | None = None
    channel: str | None = None
    category: AlarmCategory | None = None
    language: Language | None = None


class RateLimit(Strict):
    """Per recipient and channel: at most ``burst`` messages per ``window_s``; the rest go into a digest."""

    burst: int = 5
    window_s: float = 300.0
    # New-alarm messages of these categories are never held back (every fire alarm is told at once).
    exempt_categories: list[AlarmCategory] = msgspec.field(default_factory=lambda: [AlarmCategory.FIRE])


class OutboxConfig(Strict):
    base_backoff_s: float = 5.0
    max_backoff_s: float = 600.0
    # Give up (status ``failed``) only after this long; an hour-long outage is nothing.
    max_age_s: float = 86_400.0
    send_timeout_s: float = 30.0
    # Sends of one channel in flight at once.  One at a time, a webhook 50 ms away carries
    # 20 messages/s: a building's detectors going off together would be told in tens of
    # seconds.  Rows still start in priority order (fire first).
    concurrency: Annotated[int, msgspec.Meta(ge=1, le=64)] = 8
    # Finished rows (sent, failed, digested, cancelled) are kept this long for the panel and audits.
    retention_days: float = 180.0


class Links(Strict):
    """Signed links to the alarm in the app (``{base_url}/-/plugins/app/a/<token>``).

    Without ``base_url`` messages carry no link (firebus cannot guess the address
    phones reach it at: behind NAT, a reverse proxy or a domain of the site's own).
    """

    base_url: str | None = None  # e.g. https://fire.example.org (scheme and host the phones reach)
    ttl: str | float = "24h"  # how long a link opens the alarm

    @property
    def ttl_s(self) -> float:
        return parse_duration(self.ttl)


class MediaOptions(Strict):
    """The still of an alarm (``core.media``) in its messages (docs/plugins/notify.md, "Images").

    A video alarm whose still is not attached yet waits at most ``grace`` before its first
    message goes; every other alarm never waits.  An image over ``max_attachment_bytes`` is not
    attached (it is still linked).
    """

    grace: str | float = "2s"
    max_attachment_bytes: Annotated[int, msgspec.Meta(ge=0)] = 2 * 1024 * 1024
    max_images: Annotated[int, msgspec.Meta(ge=0, le=10)] = 3  # stills per message
    # Drivers whose alarms are video alarms (their still may be attached just after the alarm).
    video_drivers: list[str] = msgspec.field(default_factory=lambda: ["video.camera"])

    @property
    def grace_s(self) -> float:
        if str(self.grace).strip() in ("0", "0.0", "0s"):
            return 0.0  # no waiting at all
        return parse_duration(self.grace)


class NotifyConfig(Strict):
    language: Language = Language.ZH
    timezone: str = "Asia/Shanghai"
    channels: list[ChannelConfig] = []
    people: list[Person] = []
    routes: list[Route] = []
    templates: list[TemplateOverride] = []
    rate_limit: RateLimit = msgspec.field(default_factory=RateLimit)
    outbox: OutboxConfig = msgspec.field(default_factory=OutboxConfig)
    links: Links = msgspec.field(default_factory=Links)
    media: MediaOptions = msgspec.field(default_factory=MediaOptions)
    # Categories whose messages ignore quiet hours (GB 50116 keeps fire and gas apart; both are life safety).
    urgent_categories: list[AlarmCategory] = msgspec.field(
        default_factory=lambda: [AlarmCategory.FIRE, AlarmCategory.GAS]
    )

    @property
    def tz(self) -> dt.tzinfo:
        return ZoneInfo(self.timezone)


_HHMM = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")
KINDS = ("new", "escalate", "cleared", "acknowledged", "digest")


def parse_severity(value: str | int) -> Severity:
    if isinstance(value, int):
        return Severity(value)
    try:
        return Severity[value.strip().upper()]
    except KeyError:
        names = ", ".join(s.name.lower() for s in Severity)
        raise ValueError(f"unknown severity {value!r} (one of {names})") from None


def parse_hhmm(text: str) -> dt.time:
    match = _HHMM.match(text.strip())
    if not match:
        raise ValueError(f"expected HH:MM, got {text!r}")
    return dt.time(int(match.group(1)), int(match.group(2)))


def _path(msgspec_path: str) -> str:
    # msgspec says "$.people[0].name"; the site file calls it "notify.people[0].name".
    return "notify" + msgspec_path[1:] if msgspec_path.startswith("$") else f"notify.{msgspec_path}"


def load_config(section: dict[str, Any] | None, notifier_types: dict[str, type] | None = None) -> NotifyConfig:
    """Validate the ``notify:`` section; ``notifier_types`` maps type_key → Notifier class.

    Channel ``options`` are validated against the channel type's ``Options``.
    """
    try:
        cfg = msgspec.convert(section or {}, NotifyConfig, strict=False)
    except msgspec.ValidationError as exc:
        message = str(exc)
        match = re.search(r"- at `([^`]*)`$", message)
        if match:
            raise NotifyConfigError(f"{_path(match.group(1))}: {message[: match.start()].strip(' -')}") from None
        raise NotifyConfigError(f"notify: {message}") from None
    _check(cfg, notifier_types)
    return cfg


def channel_options(cfg: ChannelConfig, index: int, cls: type) -> Any:
    try:
        return msgspec.convert(cfg.options, cls.Options, strict=False)
    except msgspec.ValidationError as exc:
        message = str(exc)
        match = re.search(r"- at `\$([^`]*)`$", message)
        where = f"notify.channels[{index}].options{match.group(1) if match else ''}"
        text = message[: match.start()].strip(" -") if match else message
        raise NotifyConfigError(f"{where}: {text}") from None


def _check(cfg: NotifyConfig, notifier_types: dict[str, type] | None) -> None:
    try:
        _ = cfg.tz  # the property resolves the zone: an unknown name raises here, not at 3 a.m.
    except (ZoneInfoNotFoundError, ValueError):
        raise NotifyConfigError(f"notify.timezone: unknown time zone {cfg.timezone!r}") from None
    keys: dict[str, int] = {}
    for i, ch in enumerate(cfg.channels):
        if ch.key in keys:
            raise NotifyConfigError(f"notify.channels[{i}].key: {ch.key!r} is also channels[{keys[ch.key]}]")
        keys[ch.key] = i
        if ch.down_after < 1:
            raise NotifyConfigError(f"notify.channels[{i}].down_after: must be at least 1")
        if notifier_types is not None:
            cls = notifier_types.get(ch.type)
            if cls is None:
                known = ", ".join(sorted(notifier_types)) or "none"
                raise NotifyConfigError(f"notify.channels[{i}].type: unknown channel type {ch.type!r} (known: {known})")
            channel_options(ch, i, cls)
    names: set[str] = set()
    for i, person in enumerate(cfg.people):
        if person.name in names:
            raise NotifyConfigError(f"notify.people[{i}].name: {person.name!r} appears twice")
        names.add(person.name)
        if not person.roles:
            raise NotifyConfigError(f"notify.people[{i}].roles: a person needs at least one role")
        for key in person.contacts:
            if key not in keys:
                raise NotifyConfigError(f"notify.people[{i}].contacts.{key}: no channel with key {key!r}")
        for j, qh in enumerate(person.quiet_hours):
            for field in ("start", "end"):
                try:
                    parse_hhmm(getattr(qh, field))
                except ValueError as exc:
                    raise NotifyConfigError(f"notify.people[{i}].quiet_hours[{j}].{field}: {exc}") from None
            for d in qh.days:
                if not 1 <= d <= 7:
                    raise NotifyConfigError(f"notify.people[{i}].quiet_hours[{j}].days: {d} is not an ISO weekday (1-7)")
    route_names: set[str] = set()
    for i, route in enumerate(cfg.routes):
        if route.name in route_names:
            raise NotifyConfigError(f"notify.routes[{i}].name: {route.name!r} appears twice")
        route_names.add(route.name)
        if not route.channels:
            raise NotifyConfigError(f"notify.routes[{i}].channels: a route needs at least one channel")
        for j, key in enumerate(route.channels):
            if key not in keys:
                raise NotifyConfigError(f"notify.routes[{i}].channels[{j}]: no channel with key {key!r}")
        try:
            parse_severity(route.min_severity)
        except ValueError as exc:
            raise NotifyConfigError(f"notify.routes[{i}].min_severity: {exc}") from None
        steps = route.escalation.steps
        if not steps:
            raise NotifyConfigError(f"notify.routes[{i}].escalation.steps: at least one step is needed")
        last = -1.0
        for j, step in enumerate(steps):
            if step.after_minutes < last:
                raise NotifyConfigError(
                    f"notify.routes[{i}].escalation.steps[{j}].after_minutes: steps must not go back in time"
                )
            last = step.after_minutes
        if route.escalation.repeat_minutes < 0:
            raise NotifyConfigError(f"notify.routes[{i}].escalation.repeat_minutes: must not be negative")
    for i, tpl in enumerate(cfg.templates):
        if tpl.kind not in KINDS:
            raise NotifyConfigError(f"notify.templates[{i}].kind: {tpl.kind!r} is not one of {', '.join(KINDS)}")
        if tpl.channel is not None and tpl.channel not in keys:
            raise NotifyConfigError(f"notify.templates[{i}].channel: no channel with key {tpl.channel!r}")
    if cfg.links.base_url is not None:
        if not re.match(r"^https?://[^/\s]+", cfg.links.base_url):
            raise NotifyConfigError(f"notify.links.base_url: {cfg.links.base_url!r} is not an http(s) URL "
                                    "(e.g. https://fire.example.org)")
    try:
        _ = cfg.links.ttl_s  # parses the duration
    except ValueError as exc:
        raise NotifyConfigError(f"notify.links.ttl: {exc}") from None
    try:
        grace = cfg.media.grace_s
    except ValueError as exc:
        raise NotifyConfigError(f"notify.media.grace: {exc}") from None
    if not 0 <= grace <= 10:
        # The grace delays a fire alarm's first message: seconds, never minutes.
        raise NotifyConfigError(f"notify.media.grace: {grace:g}s is outside 0 to 10 s")
    users: dict[str, str] = {}
    for i, person in enumerate(cfg.people):
        user = person.user or person.name
        if user in users:
            raise NotifyConfigError(f"notify.people[{i}].user: {user!r} is also the user of {users[user]!r}")
        users[user] = person.name
    _check_topics(cfg)
    if cfg.rate_limit.burst < 1:
        raise NotifyConfigError("notify.rate_limit.burst: must be at least 1 (the first message always goes)")
    if cfg.rate_limit.window_s <= 0:
        raise NotifyConfigError("notify.rate_limit.window_s: must be positive")


_TOPIC = re.compile(r"^[-_A-Za-z0-9]{1,64}$")  # ntfy's topic rule


def _check_topics(cfg: NotifyConfig) -> None:
    """An ntfy topic is the address of one person: it must be valid and no one else's."""
    ntfy = {ch.key for ch in cfg.channels if ch.type == "ntfy"}
    owners: dict[str, str] = {}
    for i, person in enumerate(cfg.people):
        for key, topic in person.contacts.items():
            if key not in ntfy:
                continue
            if not _TOPIC.match(topic):
                raise NotifyConfigError(f"notify.people[{i}].contacts.{key}: {topic!r} is not an ntfy topic "
                                        "(letters, digits, - and _, at most 64)")
            if topic in owners and owners[topic] != person.name:
                raise NotifyConfigError(f"notify.people[{i}].contacts.{key}: topic {topic!r} is also "
                                        f"{owners[topic]!r}'s (a topic is read by one person)")
            owners[topic] = person.name
