"""The alarm engine: journal entries in, alarms out.

A durable consumer of the journal (``core/journal/consumer.py``): it reads
state changes, availability and link changes and command outcomes from its
cursor, runs every configured rule on every point they concern, and owns what
rules must not: alarm identity and dedup, the lifecycle (active/cleared ×
unacknowledged/acknowledged, silence, verdict), escalation and timers.  Its
outputs are journal entries too (``AlarmEvent``), which notify, linkage, the
panel and the uplink consume.

Why it is exact across crashes:

* Handling is synchronous and in memory — no database read per entry.
* What the engine keeps (rule states with their wake-up times, alarms) is
  checkpointed with the cursor: with every transition (alarm lane, in the same
  transaction as the transition's history row and ``AlarmEvent``) and every
  ``checkpoint_s`` otherwise.  Each checkpoint carries every change not yet
  confirmed on disk, and rows carry the checkpoint's number so an older
  checkpoint committing later (the two lanes may reorder) never overwrites a
  newer one.  So the database always holds the engine as of one cursor, and a
  restart replays exactly the entries after it: nothing re-raised, nothing lost.
* Rule inputs carry the time the entry was made (our clock when the reading
  arrived), not the time it is evaluated: a backlog, or a replay, does not
  shift an on-delay.  A device clock never times anything.

Other rules of the house:

* A rule that raises, or options that do not validate, never stop the engine:
  the former is logged and counted, the latter becomes a visible fault alarm
  ("rule configuration invalid") on the point, so a typo cannot silently disable
  a fire alarm.
* Readings of devices nobody commissioned (discovered) raise nothing.
* Late readings (older than the point's state) are history, not input.
"""

from __future__ import annotations

import logging
from typing import Any, Callable, Iterable, Mapping

import anyio
import msgspec

from firebus.sdk import (
    ActorKind,
    AlarmCategory,
    AlarmEvent,
    AlarmTransition,
    Availability,
    AvailabilityChanged,
    CommandRequested,
    CommandResult,
    ConditionReported,
    Context,
    Event,
    Lane,
    LinkChanged,
    OverflowPolicy,
    PointInfo,
    RegistryUpdated,
    Severity,
    StateChanged,
    StateReported,
    new_id,
)
from firebus.sdk.rule import (
    AlarmRule,
    AvailabilityInput,
    CommandInput,
    Condition,
    Evaluation,
    LinkInput,
    ReportInput,
    RuleConfigError,
    Scope,
    RuleInput,
    Subject,
    TickInput,
    ValueInput,
    is_number,
)

from ..journal.consumer import DurableConsumer  # noqa: F401  (the type of self.consumer)
from ..storage import Op
from ..media import SQL_MEDIA_LINK
from .linkage import ActionHandler, LinkageRule, make_write_point_handler
from .linkage_runner import LinkageRunner
from .model import Alarm, AlarmError, AlarmNotFound, AlarmStatus, Transition, Verdict
from .store import SQL_ALARM, SQL_HISTORY, SQL_RULE_STATE, AlarmStore, alarm_row, history_row, rule_state_row
from .timers import Timer, TimerQueue

log = logging.getLogger(__name__)

# HA ``alert``'s ``repeat: [1, 5, 15]``: the gaps between reminders, the last one
# repeating until someone acknowledges or silences the alarm.
DEFAULT_ESCALATION = [60.0, 300.0, 900.0]

INPUT_TYPES = [StateChanged, AvailabilityChanged, LinkChanged, CommandRequested, CommandResult, ConditionReported]


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


class _RuleState(msgspec.Struct):
    state: dict[str, Any]
    point_id: str
    context_id: str | None = None
    wake_at: float | None = None


def _subject(point: PointInfo, cond: Condition) -> tuple[str, str | None, str | None, str | None]:
    """(subject id, point_id, device_id, location_id) of the alarm a condition belongs to."""
    if cond.subject is Subject.DEVICE:
        return f"device:{point.device_id}", None, point.device_id, point.location_id
    if cond.subject is Subject.LOCATION and point.location_id:
        return f"location:{point.location_id}", None, None, point.location_id
    return point.point_id, point.point_id, point.device_id, point.location_id


#: what caused an evaluation: the journal entry (its id is worked out only if recorded), an id, or none
Cause = Event | str | None
_NO_STATE: dict[str, Any] = {}


def _ref(cause: Cause) -> str | None:
    return cause.ref if isinstance(cause, Event) else cause


def _merge(conditions: Iterable[Condition]) -> list[Condition]:
    """Conditions of one (subject, group, category) make one alarm: any active → active."""
    merged: dict[tuple[str, str, str], Condition] = {}
    for cond in conditions:
        key = (str(cond.subject), cond.group, str(cond.category))
        have = merged.get(key)
        if have is None:
            merged[key] = cond
        elif cond.active and (not have.active or cond.severity > have.severity):
            merged[key] = cond
        elif not cond.active and not have.active and cond.severity > have.severity:
            merged[key] = cond
    return list(merged.values())


def _worse(cond: Condition, value: Any, peak: Any) -> bool:
    if not is_number(value):
        return False
    if not is_number(peak):
        return True
    return value < peak if cond.lower_is_worse else value > peak


class AlarmEngine:
    """Runs rules on points and owns alarms.  ``core`` is a ``firebus.sdk.CoreAPI`` with a journal."""

    def __init__(
        self,
        core: Any,
        rule_types: Iterable[type[AlarmRule]],
        config: AlarmConfig | None = None,
        handlers: Mapping[str, ActionHandler] | None = None,
    ) -> None:
        self.core = core
        self.clock = core.clock
        self.config = config or AlarmConfig()
        self.store = AlarmStore(core.storage)
        self.rules = self._instantiate(list(rule_types), self.config.rules, self.config.default_rules)
        self._by_key = {rule.key: rule for rule in self.rules}
        self._gates = [r for r in self.rules if r.gate]
        self._others = [r for r in self.rules if not r.gate]
        self._has_related = any(type(r).related_keys is not AlarmRule.related_keys for r in self.rules)
        self.timers = TimerQueue(self.clock)
        self._open: dict[str, Alarm] = {}  # id -> alarm still on the board
        self._closed: dict[str, Alarm] = {}  # left the board, row not yet confirmed on disk
        self._active: dict[str, Alarm] = {}  # dedup_key -> active alarm
        self._states: dict[tuple[str, str], _RuleState] = {}
        self._last_update_pub: dict[str, float] = {}
        self._config_errors: set[tuple[str, str]] = set()
        self._invalid: dict[str, str] = {}  # point id -> why its current value is not a measurement
        self._rules_for: dict[str, tuple[list[AlarmRule], list[AlarmRule]]] = {}  # point id -> (gates, others)
        self._related_for: dict[str, list[tuple[AlarmRule, PointInfo]]] = {}
        self._plans: dict[str, tuple[list[tuple[AlarmRule, str]], list[tuple[AlarmRule, str]]]] = {}
        #: point id -> rule key -> (lo, hi): its values strictly inside need no evaluation (Evaluation.steady)
        self._guards: dict[str, dict[str, tuple[float, float]]] = {}
        self._heard: dict[str, float] = {}  # device id -> when its last state change arrived
        self.skipped = 0
        #: device id -> keys of the rules that asked to hear its repeated values (Evaluation.wants_reports;
        #: "*": every rule, while the device has an active alarm)
        self.report_watch: dict[str, set[str]] = {}
        self._alarming: dict[str, int] = {}
        self._devices: dict[str, Any] = {}
        self._active_subjects: dict[str, int] = {}  # subject -> active alarms (skip clears of nothing)
        self._links_down: dict[str, tuple[float, str, str]] = {}  # transport -> (since, reason, cause)
        self._unsubscribe_reports: Callable[[], None] | None = None
        self._unsubscribe_registry: Callable[[], None] | None = None
        # checkpointing: what changed since the last checkpoint confirmed on disk
        self._version = 0
        self._dirty_rules: dict[tuple[str, str], int] = {}
        self._dirty_alarms: dict[str, int] = {}
        # The version of each dirty item already handed to the writer: the writer commits
        # what it was given, in order, so a later checkpoint need not carry it again (at
        # 10,000 open alarms re-sending every unconfirmed row with every flush was O(n²)).
        self._sent_rules: dict[tuple[str, str], int] = {}
        self._sent_alarms: dict[str, int] = {}
        self._history: list[tuple[Any, ...]] = []
        # Media rows (core/media.py): stills offered with the reading that raised an alarm,
        # attached in the transaction of its ``new`` transition.
        self._media_links: list[tuple[Any, ...]] = []
        self._last_claim: tuple[str, float, list[str]] = ("", 0.0, [])
        # Flushes submitted but not yet durable: history() waits for them so a reader
        # who saw an alarm in memory also finds its transitions on disk.
        self._inflight: set[anyio.Event] = set()
        self._outbox: list[Event] = []
        self._waiters: list[anyio.Event] = []
        all_handlers: dict[str, ActionHandler] = {"write_point": make_write_point_handler(core)}
        all_handlers.update(handlers or {})
        self.linkage = LinkageRunner(core, self.store, self.config.linkage, all_handlers, self.clock, self)
        self.consumer: DurableConsumer | None = None
        self._timer_scope: anyio.CancelScope | None = None
        self._timer_stopped = anyio.Event()
        self.rule_errors = 0
        self.evaluated = 0
        self.started = False

    @staticmethod
    def _instantiate(
        types: list[type[AlarmRule]], configs: list[RuleConfig] | None, default_rules: bool = True
    ) -> list[AlarmRule]:
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

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Reload alarms and rule state, replay the journal after the checkpoint, then follow it."""
        # Checkpoint numbers go on rising across restarts (a row never loses to an older one).
        self._version = await self.store.max_checkpoint()
        for alarm in await self.store.open_alarms():
            self._open[alarm.id] = alarm
            if alarm.active:
                self._activate(alarm)
        now = self.clock.time()
        for rule_key, scope, point_id, context_id, state, wake_at in await self.store.rule_states():
            self._states[(rule_key, scope)] = _RuleState(state, point_id, context_id, wake_at)
            if wake_at is not None:
                rule = self._by_key.get(rule_key)
                if rule is not None and rule.pause_while_down and wake_at < now and "armed_at" in state:
                    # A heartbeat missed while *we* were down proves nothing about the device:
                    # give it one full period from now.
                    wake_at = now + (wake_at - state["armed_at"])
                self.timers.set(Timer(key=f"rule:{rule_key}:{scope}", kind="rule", due=wake_at,
                                      data={"rule": rule_key, "scope": scope}))
        for alarm in self._open.values():
            if alarm.escalation_due is not None:
                due = alarm.escalation_due
                if due <= now:  # back after an outage: one reminder now-ish, not a burst
                    due = now
                self.timers.set(Timer(key=f"esc:{alarm.id}", kind="escalation", due=due,
                                      data={"alarm_id": alarm.id, "step": alarm.escalation_step + 1}))
        orphans = {a.rule.split(":", 1)[0] for a in self._active.values()} - set(self._by_key)
        if orphans:
            # Kept, not cleared: dropping a fire rule by mistake must not silently end its alarms.
            log.warning("alarms: active alarms of rules no longer configured: %s (clear them by hand)", sorted(orphans))
        log.info(
            "alarms: resumed %d open alarms, %d rule states, %d timers",
            len(self._open), len(self._states), len(self.timers),
        )
        self._devices = getattr(self.core.registry, "devices", None) or {}
        self.consumer = self.core.journal.subscribe(
            "alarms", self._on_batch, INPUT_TYPES, provisional=True,
            checkpoint_s=self.config.checkpoint_s, checkpoint_parts=self._checkpoint_parts,
        )
        with anyio.fail_after(600):
            await self.consumer.caught_up.wait()
        if self.consumer.replayed:
            log.info("alarms: evaluated %d journal entr%s committed after the last checkpoint",
                     self.consumer.replayed, "y" if self.consumer.replayed == 1 else "ies")
        self._seed_liveness()
        self._flush()
        _, self._unsubscribe_reports = self.core.bus.subscribe_batch(
            "alarms:reports", self._on_reports, [StateReported], overflow=OverflowPolicy.DROP_OLDEST,
        )
        self._unsubscribe_registry = self.core.bus.subscribe(
            "alarms:registry", self._on_registry, [RegistryUpdated], overflow=OverflowPolicy.UNBOUNDED,
        )
        ingest = getattr(self.core, "ingest", None)
        if ingest is not None:
            ingest.report_watch = self.report_watch
        self.core.start_task(self._run_timers, name="alarms:timers")
        await self.linkage.start()
        self.started = True

    def _activate(self, alarm: Alarm) -> None:
        self._active[alarm.dedup_key] = alarm
        self._active_subjects[alarm.subject] = self._active_subjects.get(alarm.subject, 0) + 1
        self._watch_alarming(alarm, True)

    def _watch_alarming(self, alarm: Alarm, active: bool) -> None:
        """While a device has an active alarm, its repeated values reach its rules (counts,
        peaks); otherwise repeats cost nothing here."""
        device_id = alarm.device_id
        if device_id is None and alarm.point_id is not None:
            point = self.core.registry.point_info(alarm.point_id)
            device_id = point.device_id if point is not None else None
        if device_id is None:
            return
        keys = self.report_watch.setdefault(device_id, set())
        count = self._alarming.get(device_id, 0) + (1 if active else -1)
        if count > 0:
            self._alarming[device_id] = count
            keys.add("*")
        else:
            self._alarming.pop(device_id, None)
            keys.discard("*")
            if not keys:
                self.report_watch.pop(device_id, None)

    def _seed_liveness(self) -> None:
        """Liveness rules watch every device from the start, heard from or not ("never reported")."""
        rules = [r for r in self._others if r.pause_while_down]
        if not rules:
            return
        now = self.clock.time()
        registry = self.core.registry
        devices = getattr(registry, "devices", None)
        if devices is None:
            return
        for device in list(devices.values()):
            if device.orphaned_at is not None or device.discovered:
                continue
            points = self._siblings(device.id)
            if not points:
                continue
            for rule in rules:
                point = next((p for p in points if rule in self._rules_of(p)[1]), None)
                if point is None or (rule.key, rule.scope_of(point)) in self._states:
                    continue
                self._run(rule, point, TickInput(ts=now, last_report=self._last_report(rule, point)), None,
                          observation=False)

    def _on_registry(self, event: Event) -> None:
        """Overrides and new points change which rules apply: forget what was worked out."""
        data = event.data
        if data.registry == "point":
            self.invalidate(data.entry_id)
        elif data.registry == "device":
            for point in self._siblings(data.entry_id):
                self.invalidate(point.point_id)
        else:
            self.invalidate()

    def _on_reports(self, events: list[Event]) -> None:
        """Repeated identical values, for the devices whose rules asked to hear them."""
        watch = self.report_watch
        if not watch:
            return
        for event in events:
            data = event.data
            point = self.core.registry.point_info(data.point_id)
            if point is None:
                continue
            keys = watch.get(point.device_id)
            if not keys:
                continue
            inp = ReportInput(ts=event.time_fired, key=point.key, point_id=point.point_id,
                              fault=self._invalid.get(point.point_id))
            every = "*" in keys
            for rule in self._rules_of(point)[1]:
                if every or rule.key in keys:
                    self._run(rule, point, inp, event, observation=True)
        self._flush()

    async def stop(self) -> None:
        if self._unsubscribe_reports is not None:
            self._unsubscribe_reports()
            self._unsubscribe_reports = None
        if self._unsubscribe_registry is not None:
            self._unsubscribe_registry()
            self._unsubscribe_registry = None
        if self._timer_scope is not None:
            self._timer_scope.cancel()
            await self._timer_stopped.wait()
        await self.linkage.stop()
        if self.consumer is not None:
            self.consumer.stop()
            self.consumer.save(Lane.ALARM)
        await self.store.flush()
        self.started = False

    async def _run_timers(self) -> None:
        try:
            with anyio.CancelScope() as scope:
                self._timer_scope = scope
                await self.timers.run(self._fire_timer)
        finally:
            self._timer_stopped.set()

    # -- checkpoints ---------------------------------------------------------------------------

    def _touch_rule(self, skey: tuple[str, str]) -> None:
        self._version += 1
        self._dirty_rules[skey] = self._version

    def _touch_alarm(self, alarm: Alarm) -> None:
        self._version += 1
        self._dirty_alarms[alarm.id] = self._version

    def _checkpoint_parts(self) -> tuple[list[tuple[str, list[tuple[Any, ...]]]], Callable[[], None] | None]:
        """Rows of every change not yet confirmed on disk, stamped with this checkpoint's number."""
        version = self._version
        parts: list[tuple[str, list[tuple[Any, ...]]]] = []
        rules: dict[tuple[str, str], int] = {}
        alarms: dict[str, int] = {}
        sent_rules, sent_alarms = self._sent_rules, self._sent_alarms
        if self._dirty_rules:
            rows = []
            for skey, v in self._dirty_rules.items():
                if sent_rules.get(skey) == v:
                    continue
                sent_rules[skey] = rules[skey] = v
                entry = self._states.get(skey)
                if entry is not None:
                    rows.append(rule_state_row(skey[0], skey[1], entry.point_id, entry.context_id, entry.state,
                                               entry.wake_at, version))
            if rows:
                parts.append((SQL_RULE_STATE, rows))
        if self._dirty_alarms:
            rows = []
            for alarm_id, v in self._dirty_alarms.items():
                if sent_alarms.get(alarm_id) == v:
                    continue
                sent_alarms[alarm_id] = alarms[alarm_id] = v
                alarm = self._open.get(alarm_id) or self._closed.get(alarm_id)
                if alarm is not None:
                    rows.append(alarm_row(alarm, version))
            if rows:
                parts.append((SQL_ALARM, rows))
        if not rules and not alarms:
            return parts, None

        def confirmed() -> None:
            for skey, v in rules.items():
                if self._dirty_rules.get(skey) == v:
                    del self._dirty_rules[skey]
                    sent_rules.pop(skey, None)
            for alarm_id, v in alarms.items():
                if self._dirty_alarms.get(alarm_id) == v:
                    del self._dirty_alarms[alarm_id]
                    sent_alarms.pop(alarm_id, None)
                    if alarm_id in self._closed and alarm_id not in self._open:
                        del self._closed[alarm_id]

        return parts, confirmed

    def _flush(self, upto: Event | None = None) -> anyio.Event | None:
        """Commit the transitions made so far, with a checkpoint, in the alarm lane."""
        if not self._outbox and not self._history:
            return None
        assert self.consumer is not None
        parts, confirmed = self._checkpoint_parts()
        if self._history:
            parts.insert(0, (SQL_HISTORY, self._history))
        if self._media_links:
            parts.append((SQL_MEDIA_LINK, self._media_links))
            self._media_links = []
        cursor, ahead = self.consumer.position(upto=upto)
        parts.append(self.consumer.cursor_part(cursor, ahead))
        events, self._outbox, self._history = self._outbox, [], []
        done = anyio.Event()
        self._inflight.add(done)

        def durable() -> None:
            if confirmed is not None:
                confirmed()
            self._inflight.discard(done)
            done.set()

        self.core.storage.submit(Op(parts, events, durable, Lane.ALARM))
        return done

    # -- journal input -------------------------------------------------------------------------

    def _on_batch(self, events: list[Event]) -> None:
        for event in events:
            try:
                self._handle(event)
            except Exception:
                self.rule_errors += 1
                log.exception("alarms: handling %s failed", event.type)
        self._flush(upto=events[-1])

    def _handle(self, event: Event) -> None:
        data = event.data
        ts = event.time_fired
        if isinstance(data, StateChanged):
            if data.late:
                return
            device = self._devices.get(data.device_id)
            if device is not None and device.discovered:
                return  # not trusted to raise alarms until commissioned
            self._on_state(data, ts, event)
        elif isinstance(data, AvailabilityChanged):
            inp = AvailabilityInput(ts=ts, available=data.availability is Availability.AVAILABLE, reason=data.reason)
            self._device_input(data.device_id, inp, event, related_only=None)
        elif isinstance(data, LinkChanged):
            self._link_input(data, ts, event.ref)
        elif isinstance(data, (CommandRequested, CommandResult)):
            ok = data.ok if isinstance(data, CommandResult) else None
            inp = CommandInput(
                ts=ts,
                key=data.point_key,
                value=getattr(data, "value", None),
                command_id=data.command_id,
                ok=ok,
                error=getattr(data, "error", ""),
            )
            self._device_input(data.device_id, inp, event, related_only=data.point_key)
        elif isinstance(data, ConditionReported):
            self._on_condition(data, ts, event.ref)

    def _on_condition(self, data: ConditionReported, now: float, cause: str) -> None:
        """A plugin's own condition (``firebus.sdk.ConditionReported``): raise or clear its alarm."""
        subject = f"{data.source}:{data.subject}"
        dedup = f"{subject}|{data.key}|{data.category}"
        alarm = self._active.get(dedup)
        name = f"{data.source}.{data.key}"
        if not data.active:
            if alarm is not None:
                ctx = Context(parent_id=cause, actor=ActorKind.PLUGIN, actor_id=data.source)
                self._clear(alarm, ctx, now, by=f"plugin:{data.source}", detail={"value": data.value})
            return
        if alarm is not None:
            return  # already on the board
        alarm = Alarm(
            id=new_id(), dedup_key=dedup, subject=subject, rule=name, rule_type=name,
            category=data.category, severity=data.severity, peak_severity=data.severity,
            location_id=data.location_id, unit_id=data.unit_id, message=data.message, message_zh=data.message_zh,
            first_value=data.value, last_value=data.value, peak_value=data.value, start_ts=now, last_ts=now,
            context_id=new_id(), parent_context_id=cause,
        )
        self._open[alarm.id] = alarm
        self._activate(alarm)
        ctx = Context(id=alarm.context_id, parent_id=cause, actor=ActorKind.PLUGIN, actor_id=data.source)
        self._schedule_escalation(alarm, now, step=1)
        self._transition(alarm, AlarmTransition.NEW, ctx, now, {"value": data.value})

    def _rules_of(self, point: PointInfo) -> tuple[list[AlarmRule], list[AlarmRule]]:
        cached = self._rules_for.get(point.point_id)
        if cached is None:
            others = [r for r in self._others if self._applies(r, point)]
            # One liveness rule per device: where a plugin's subclass of a liveness rule applies
            # (smoke detectors' reported heartbeat), the generic base gives way — one offline
            # alarm per dead device, not two.
            live = [r for r in others if r.pause_while_down]
            if len(live) > 1:
                others = [r for r in others if not (r.pause_while_down and any(
                    type(o) is not type(r) and isinstance(o, type(r)) for o in live))]
            cached = ([r for r in self._gates if self._applies(r, point)], others)
            self._rules_for[point.point_id] = cached
        return cached

    def _related_to(self, point: PointInfo) -> list[tuple[AlarmRule, PointInfo]]:
        """(rule, sibling point) pairs whose rule also needs this point's values (gas feedback…)."""
        pairs = self._related_for.get(point.point_id)
        if pairs is None:
            pairs = [
                (rule, sibling)
                for sibling in self._siblings(point.device_id) if sibling.point_id != point.point_id
                for rule in self._rules_of(sibling)[1] if point.key in self._related(rule, sibling)
            ]
            self._related_for[point.point_id] = pairs
        return pairs

    def invalidate(self, point_id: str | None = None) -> None:
        """The registry changed (overrides, new points): recompute which rules apply."""
        if point_id is None:
            self._rules_for.clear()
            self._related_for.clear()
            self._plans.clear()
            self._guards.clear()
            return
        self._rules_for.pop(point_id, None)
        self._plans.pop(point_id, None)
        self._guards.pop(point_id, None)
        if self._has_related and self._related_for:
            self._related_for.clear()  # a sibling's change counts too

    def _plan(self, point: PointInfo) -> tuple[list[tuple[AlarmRule, str]], list[tuple[AlarmRule, str]]]:
        """The point's (gate, scope) and (rule, scope) pairs, worked out once per point."""
        plan = self._plans.get(point.point_id)
        if plan is None:
            gates, others = self._rules_of(point)
            plan = ([(r, r.scope_of(point)) for r in gates], [(r, r.scope_of(point)) for r in others])
            self._plans[point.point_id] = plan
        return plan

    def _on_state(self, data: StateChanged, ts: float, cause: Cause) -> None:
        point = self.core.registry.point_info(data.point_id) or PointInfo(
            point_id=data.point_id, device_id=data.device_id, key=data.point_key, point_class=data.point_class
        )
        self.evaluated += 1
        self._heard[point.device_id] = ts
        value = data.new_value
        # Rules that promised steadiness (Evaluation.steady) for this value are skipped.
        numeric = (type(value) is float or type(value) is int) and data.fault is None
        guards = self._guards
        gates, others = self._plan(point)
        inp: ValueInput | None = None
        invalid = None
        mine = guards.get(point.point_id) if numeric else None
        for rule, scope in gates:
            if mine:
                bounds = mine.get(rule.key)
                if bounds is not None and bounds[0] < value < bounds[1]:
                    self.skipped += 1
                    continue
            if inp is None:
                inp = ValueInput(ts=ts, key=point.key, value=value, fault=data.fault, point_id=point.point_id,
                                 point_class=point.point_class, value_ts=data.ts)
            ev = self._run(rule, point, inp, cause, observation=True, scope=scope)
            if ev is not None and ev.invalid:
                invalid = ev.invalid
        if invalid is not None and data.fault is None:
            numeric = False
            inp = ValueInput(ts=ts, key=point.key, value=value, fault=invalid, point_id=point.point_id,
                             point_class=point.point_class, value_ts=data.ts)
        fault = invalid if invalid is not None else data.fault
        if fault is not None:  # identical re-reports of it are no measurement either
            self._invalid[point.point_id] = fault
        elif self._invalid:
            self._invalid.pop(point.point_id, None)
        if not numeric:
            mine = None
        for rule, scope in others:
            if mine:
                bounds = mine.get(rule.key)
                if bounds is not None and bounds[0] < value < bounds[1]:
                    self.skipped += 1
                    continue
            if inp is None:
                inp = ValueInput(ts=ts, key=point.key, value=value, fault=data.fault, point_id=point.point_id,
                                 point_class=point.point_class, value_ts=data.ts)
            self._run(rule, point, inp, cause, observation=True, scope=scope)
        if self._has_related:
            related = self._related_to(point)
            if related:
                if inp is None:
                    inp = ValueInput(ts=ts, key=point.key, value=value, fault=data.fault, point_id=point.point_id,
                                     point_class=point.point_class, value_ts=data.ts)
                for rule, sibling in related:
                    self._run(rule, sibling, inp, cause, observation=True)

    def _device_input(self, device_id: str, inp: RuleInput, cause: Cause, related_only: str | None) -> None:
        done: set[tuple[str, str]] = set()
        for point in self._siblings(device_id):
            for rule in self._rules_of(point)[1]:
                if related_only is not None and related_only not in self._related(rule, point):
                    continue
                key = (rule.key, rule.scope_of(point))
                if key in done:  # a device-scoped rule hears about its device once
                    continue
                done.add(key)
                self._run(rule, point, inp, cause, observation=True)

    def _link_input(self, data: LinkChanged, ts: float, cause: str) -> None:
        """A transport link went down or came back: its own fault, and its devices' rules hear of it."""
        key = f"link:{data.transport}"
        if data.up:
            self._links_down.pop(data.transport, None)
            self._arm(key, "link", None, {})
            alarm = self._active.get(self._link_dedup(data.transport))
            if alarm is not None:
                ctx = Context(parent_id=cause, actor=ActorKind.SYSTEM, actor_id=f"transport:{data.transport}")
                self._clear(alarm, ctx, ts, by=f"transport:{data.transport}", detail={"reason": "link up"})
        else:
            self._links_down[data.transport] = (ts, data.reason, cause)
            self._arm(key, "link", ts + self.config.link_fault_after, {"transport": data.transport})
        inp = LinkInput(ts=ts, transport=data.transport, up=data.up, reason=data.reason)
        devices = getattr(self.core.registry, "devices", {})
        for device in list(devices.values()):
            if device.transport == data.transport and device.orphaned_at is None and not device.discovered:
                self._device_input(device.id, inp, cause, related_only=None)

    def _siblings(self, device_id: str) -> list[PointInfo]:
        try:
            return list(self.core.registry.points_of_device(device_id))
        except Exception:
            log.exception("alarms: registry lookup of device %s failed", device_id)
            return []

    def _applies(self, rule: AlarmRule, point: PointInfo) -> bool:
        try:
            return rule.applies_to(point)
        except RuleConfigError:
            return True  # _run turns the bad options into a visible fault

    def _related(self, rule: AlarmRule, point: PointInfo) -> tuple[str, ...]:
        try:
            return rule.related_keys(point, rule.options_for(point))
        except RuleConfigError:
            return ()

    def _last_report(self, rule: AlarmRule, point: PointInfo) -> float | None:
        """When the rule's subject was last heard from (any report, changed or not)."""
        ingest = getattr(self.core, "ingest", None)
        if ingest is None:
            return self._heard.get(point.device_id)
        from firebus.sdk.rule import Scope

        if rule.scope is Scope.DEVICE:
            points = [p.point_id for p in self._siblings(point.device_id)]
        else:
            points = [point.point_id]
        seen = [s.received for p in points if (s := ingest.states.get(p)) is not None and s.received]
        heard = self._heard.get(point.device_id)
        if heard is not None:
            seen.append(heard)
        return max(seen) if seen else None

    # -- running one rule ------------------------------------------------------------------

    def _run(
        self, rule: AlarmRule, point: PointInfo, inp: RuleInput, cause: Cause, *, observation: bool,
        scope: str | None = None,
    ) -> Evaluation | None:
        """Evaluate ``rule`` on ``point`` for ``inp`` and act on what it says.

        The hot path of the engine (every state change, every rule that applies): nothing
        is built that is not needed — the cause's id only when something is recorded, the
        rule state only when it changed, timers only when the wake-up moved.
        """
        try:
            opts = rule.options_for(point)
        except RuleConfigError as exc:
            self._config_fault(rule, point, str(exc), cause, inp.ts)
            return None
        if self._config_errors and (rule.key, point.point_id) in self._config_errors:
            self._config_fault(rule, point, None, cause, inp.ts)
        if scope is None:
            scope = rule.scope_of(point)
        skey = (rule.key, scope)
        entry = self._states.get(skey)
        old = entry.state if entry is not None else _NO_STATE
        try:
            ev = rule.evaluate(point, opts, inp, old)
        except Exception:
            self.rule_errors += 1
            log.exception("alarms: rule %r raised on point %s", rule.key, point.point_id)
            return None
        tick = type(inp) is TickInput
        # Steadiness is promised per point; a device- or place-scoped rule that stops being
        # steady (the device went offline) takes the promise back for every point it covers.
        guards = self._guards.get(point.point_id)
        if ev.steady is not None:
            if type(inp) is ValueInput and inp.point_id == point.point_id:
                if guards is None:
                    self._guards[point.point_id] = {rule.key: ev.steady}
                else:
                    guards[rule.key] = ev.steady
        elif rule.scope is Scope.POINT:
            if guards is not None and rule.key in guards:
                del guards[rule.key]
        elif self._guards:
            covered = (self._siblings(point.device_id) if rule.scope is Scope.DEVICE
                       else self.core.registry.points_at_location(point.location_id or ""))
            for other in covered:
                g = self._guards.get(other.point_id)
                if g is not None:
                    g.pop(rule.key, None)
        wake = ev.wake_at
        state = ev.state
        before = entry.wake_at if entry is not None else None
        if rule.pause_while_down and wake is not None:
            if wake != before:
                state = {**state, "armed_at": inp.ts}
            elif entry is not None and "armed_at" in entry.state and "armed_at" not in state:
                state = {**state, "armed_at": entry.state["armed_at"]}
        if entry is None or wake != before or state != entry.state:
            # The input that changed the state is the parent of an alarm a timer raises later.
            parent = (entry.context_id if entry is not None else None) if tick else _ref(cause)
            self._states[skey] = _RuleState(state=state, point_id=point.point_id, context_id=parent, wake_at=wake)
            self._touch_rule(skey)
        if wake != before or (wake is not None and tick):
            self._arm_rule(rule.key, scope, wake)
        watching = self.report_watch.get(point.device_id)
        if ev.wants_reports:
            if watching is None:
                self.report_watch[point.device_id] = {rule.key}
            else:
                watching.add(rule.key)
        elif watching is not None and rule.key in watching:
            watching.discard(rule.key)
            if not watching:
                del self.report_watch[point.device_id]
        conditions = ev.conditions
        if conditions:
            if tick:
                cause = entry.context_id if entry is not None else None
            for cond in _merge(conditions) if len(conditions) > 1 else conditions:
                self._apply(rule, point, cond, cause, inp.ts, observation=observation and not tick)
        return ev

    def _arm_rule(self, rule_key: str, scope: str, due: float | None) -> None:
        self._arm(f"rule:{rule_key}:{scope}", "rule", due, {"rule": rule_key, "scope": scope} if due else {})

    def _arm(self, key: str, kind: str, due: float | None, data: dict[str, Any]) -> None:
        current = self.timers.get(key)
        if due is None:
            if current is not None:
                self.timers.cancel(key)
            return
        if current is not None and current.due == due:
            return
        self.timers.set(Timer(key=key, kind=kind, due=due, data=data))

    async def _fire_timer(self, timer: Timer) -> None:
        if self.timers.get(timer.key) is not None:
            return  # re-armed for later
        now = self.clock.time()
        if timer.kind == "rule":
            rule = self._by_key.get(timer.data.get("rule", ""))
            entry = self._states.get((timer.data.get("rule", ""), timer.data.get("scope", "")))
            if rule is None or entry is None:
                return  # the rule was removed from the configuration
            point = self.core.registry.point_info(entry.point_id)
            if point is None:
                return
            self._run(rule, point, TickInput(ts=now, last_report=self._last_report(rule, point)), None,
                      observation=False)
        elif timer.kind == "escalation":
            self._escalate(timer, now)
        elif timer.kind == "link":
            self._link_fault(timer.data.get("transport", ""), now)
        self._flush()

    # -- transport links ---------------------------------------------------------------------

    @staticmethod
    def _link_dedup(transport: str) -> str:
        return f"transport:{transport}|link|{AlarmCategory.OFFLINE}"

    def _link_fault(self, transport: str, now: float) -> None:
        """The link stayed down for ``link_fault_after``: one communication fault for the transport."""
        down = self._links_down.get(transport)
        dedup = self._link_dedup(transport)
        if down is None or dedup in self._active:
            return
        since, reason, cause = down
        devices = [d for d in getattr(self.core.registry, "devices", {}).values()
                   if d.transport == transport and d.orphaned_at is None and not d.discovered]
        n = len(devices)
        alarm = Alarm(
            id=new_id(), dedup_key=dedup, subject=f"transport:{transport}", rule="link", rule_type="link",
            category=AlarmCategory.OFFLINE, severity=Severity.FAULT, peak_severity=Severity.FAULT,
            message=f"transport {transport} link down (communication fault) for {now - since:.0f} s: {reason}; "
                    f"{n} device(s) unreachable",
            message_zh=f"通讯链路 {transport} 中断 {now - since:.0f} 秒（通讯故障）：{reason}；{n} 台设备无法通讯",
            first_value=n, last_value=n, peak_value=n, start_ts=now, last_ts=now,
            context_id=new_id(), parent_context_id=cause,
        )
        self._open[alarm.id] = alarm
        self._activate(alarm)
        ctx = Context(id=alarm.context_id, parent_id=cause, actor=ActorKind.SYSTEM, actor_id=f"transport:{transport}")
        self._transition(alarm, AlarmTransition.NEW, ctx, now, {"reason": reason, "devices": n})

    # -- conditions -> alarms ------------------------------------------------------------------

    def _apply(
        self, rule: AlarmRule, point: PointInfo, cond: Condition, cause: Cause, now: float, *,
        observation: bool,
    ) -> None:
        subject, point_id, device_id, location_id = _subject(point, cond)
        if not cond.active and subject not in self._active_subjects:
            return  # nothing to clear (most readings of most points)
        parent_id = _ref(cause)
        name = f"{rule.key}:{cond.group}" if cond.group else rule.key
        dedup = f"{subject}|{name}|{cond.category}"
        alarm = self._active.get(dedup)
        if cond.active and alarm is None:
            alarm = Alarm(
                id=new_id(),
                dedup_key=dedup,
                subject=subject,
                rule=name,
                rule_type=rule.type_key,
                category=cond.category,
                severity=cond.severity,
                peak_severity=cond.severity,
                point_id=point_id,
                device_id=device_id,
                location_id=location_id,
                unit_id=point.unit_id,
                message=cond.message,
                message_zh=cond.message_zh,
                first_value=cond.value,
                last_value=cond.value,
                peak_value=cond.value,
                start_ts=now,
                last_ts=now,
                context_id=new_id(),
                parent_context_id=parent_id,
            )
            self._open[alarm.id] = alarm
            self._activate(alarm)
            ctx = Context(id=alarm.context_id, parent_id=parent_id, actor=ActorKind.RULE, actor_id=name)
            self._schedule_escalation(alarm, now, step=1)
            self._attach_media(alarm, point.point_id, now)
            self._transition(alarm, AlarmTransition.NEW, ctx, now, {"value": cond.value})
        elif cond.active and alarm is not None:
            rose = cond.severity > alarm.severity
            changed = cond.severity != alarm.severity
            if observation:
                alarm.count += 1
            alarm.last_value = cond.value
            alarm.last_ts = now
            if _worse(cond, cond.value, alarm.peak_value):
                alarm.peak_value = cond.value
            if cond.message:
                alarm.message = cond.message
                alarm.message_zh = cond.message_zh
            if changed:
                before = alarm.severity
                alarm.severity = cond.severity
                alarm.peak_severity = max(alarm.peak_severity, cond.severity)
                if rose and alarm.silenced:  # a worse alarm sounds again (sounder linkage)
                    alarm.silenced = False
                if rose and not alarm.acknowledged:
                    self._schedule_escalation(alarm, now, step=alarm.escalation_step + 1, first_gap=True)
                ctx = Context(parent_id=parent_id, actor=ActorKind.RULE, actor_id=name)
                self._transition(
                    alarm, AlarmTransition.UPDATE, ctx, now, {"severity": int(cond.severity), "from": int(before)}
                )
            elif now - self._last_update_pub.get(alarm.id, alarm.start_ts) >= self.config.update_interval:
                ctx = Context(parent_id=parent_id, actor=ActorKind.RULE, actor_id=name)
                self._last_update_pub[alarm.id] = now
                self._touch_alarm(alarm)
                self._outbox.append(Event(data=self._payload(alarm, AlarmTransition.UPDATE, now), context=ctx,
                                          time_fired=now))
            else:
                self._touch_alarm(alarm)
        elif not cond.active and alarm is not None:
            ctx = Context(parent_id=parent_id, actor=ActorKind.RULE, actor_id=name)
            self._clear(alarm, ctx, now, by=f"rule:{name}", detail={"value": cond.value})

    def _attach_media(self, alarm: Alarm, point_id: str, now: float) -> None:
        """Stills offered with this point's reading (``Reading.media``) go with the new alarm.

        One reading can raise two alarms at once (the single-detector alarm on the point
        and the confirmed fire on its place): both show the same still.
        """
        media = getattr(self.core, "media", None)
        if media is None:
            return
        last_point, last_now, last_ids = self._last_claim
        if last_point == point_id and last_now == now:
            ids = last_ids
        else:
            ids = media.claim(point_id, now)
            self._last_claim = (point_id, now, ids)
        for mid in ids:
            self._media_links.append((alarm.id, mid, now))

    def _clear(self, alarm: Alarm, ctx: Context, now: float, by: str, detail: dict[str, Any]) -> None:
        alarm.active = False
        alarm.clear_ts = now
        alarm.cleared_by = by
        if self._active.pop(alarm.dedup_key, None) is not None:
            self._watch_alarming(alarm, False)
            left = self._active_subjects.get(alarm.subject, 0) - 1
            if left > 0:
                self._active_subjects[alarm.subject] = left
            else:
                self._active_subjects.pop(alarm.subject, None)
        self._set_escalation(alarm, None)
        self._transition(alarm, AlarmTransition.CLEARED, ctx, now, detail)

    def _transition(
        self, alarm: Alarm, transition: AlarmTransition, ctx: Context, now: float,
        detail: dict[str, Any] | None = None,
    ) -> None:
        """Record the transition: its history row and ``AlarmEvent`` commit with the next flush.

        Nothing outside the engine (notify, linkage, the panel) hears of a transition
        before it is on disk: the ``AlarmEvent`` is a journal entry, delivered once
        committed, in the same transaction as the alarm's row and the checkpoint.
        """
        alarm.refresh_status()
        self._touch_alarm(alarm)
        if not alarm.open:
            self._open.pop(alarm.id, None)
            self._closed[alarm.id] = alarm
            self._last_update_pub.pop(alarm.id, None)
        self._history.append(history_row(Transition(
            alarm_id=alarm.id,
            ts=now,
            transition=str(transition),
            actor_kind=str(ctx.actor),
            actor=ctx.actor_id or "",
            detail=detail or {},
            context_id=ctx.id,
            parent_id=ctx.parent_id,
        )))
        self._outbox.append(Event(data=self._payload(alarm, transition, now), context=ctx, time_fired=now))

    def _payload(self, alarm: Alarm, transition: AlarmTransition, now: float) -> AlarmEvent:
        return AlarmEvent(
            alarm_id=alarm.id,
            transition=transition,
            category=alarm.category,
            severity=alarm.severity,
            rule=alarm.rule,
            device_id=alarm.device_id,
            point_id=alarm.point_id,
            unit_id=alarm.unit_id,
            location_id=alarm.location_id,
            value=alarm.last_value,
            message=alarm.message,
            message_zh=alarm.message_zh,
            status=str(alarm.status),
            count=alarm.count,
            escalation_step=alarm.escalation_step,
            ts=now,
        )

    def _config_fault(self, rule: AlarmRule, point: PointInfo, error: str | None, cause: Cause,
                      now: float) -> None:
        """Bad options on a point: a fault alarm people can see, cleared once they are fixed."""
        key = (rule.key, point.point_id)
        if error is not None and key not in self._config_errors:
            log.error("alarms: %s", error)
            self._config_errors.add(key)
        elif error is None:
            self._config_errors.discard(key)
        cond = Condition(
            category=AlarmCategory.FAULT,
            severity=Severity.FAULT,
            active=error is not None,
            group="config",
            message=f"rule configuration invalid: {error}" if error else "",
            message_zh=f"报警规则配置无效：{error}" if error else "",
        )
        self._apply(rule, point, cond, cause, now, observation=False)

    # -- escalation ----------------------------------------------------------------------------

    def _gaps(self, alarm: Alarm) -> list[float]:
        return list(self.config.escalation.get(str(alarm.category), []))

    def _set_escalation(self, alarm: Alarm, due: float | None, step: int = 0) -> None:
        alarm.escalation_due = due
        self._touch_alarm(alarm)
        self._arm(f"esc:{alarm.id}", "escalation", due, {"alarm_id": alarm.id, "step": step})

    def _schedule_escalation(self, alarm: Alarm, after: float, step: int, first_gap: bool = False) -> None:
        """Arm reminder ``step``; ``first_gap`` (a severity rise) uses the schedule's first gap."""
        gaps = self._gaps(alarm)
        if not gaps or alarm.acknowledged or not alarm.active:
            return
        gap = gaps[0] if first_gap else gaps[min(step - 1, len(gaps) - 1)]
        due = after + gap
        now = self.clock.time()
        if due <= now:  # back after an outage: one reminder now-ish, not a burst
            due = now + gap
        self._set_escalation(alarm, due, step)

    def _escalate(self, timer: Timer, now: float) -> None:
        alarm = self._open.get(timer.data.get("alarm_id", ""))
        if alarm is None or not alarm.active or alarm.acknowledged:
            return
        step = int(timer.data.get("step", 1))
        alarm.escalation_step = step
        ctx = Context(parent_id=alarm.context_id, actor=ActorKind.SYSTEM, actor_id="escalation")
        # The next reminder counts from when this one was due, so the schedule does not drift.
        alarm.escalation_due = None
        self._schedule_escalation(alarm, timer.due, step + 1)
        self._transition(alarm, AlarmTransition.ESCALATE, ctx, now, {"step": step, "due": timer.due})

    # -- operator actions (panel / API) ----------------------------------------------------------

    def _user_ctx(self, alarm: Alarm, actor: str, context: Context | None) -> Context:
        if not actor:
            raise AlarmError("an operator action needs an actor (who did it)")
        if context is not None:
            return context
        return Context(parent_id=alarm.context_id, actor=ActorKind.USER, actor_id=actor)

    async def _commit(self) -> None:
        """Commit the action's transition; return once it is durable (and announced)."""
        done = self._flush()
        if done is not None:
            await done.wait()

    async def acknowledge(self, alarm_id: str, actor: str, *, note: str = "", context: Context | None = None) -> Alarm:
        """Acknowledge: stops escalation; a cleared alarm then leaves the board."""
        alarm = await self._get_open(alarm_id)
        if alarm.acknowledged:
            raise AlarmError(f"alarm {alarm_id} was already acknowledged by {alarm.ack_by} at {alarm.ack_ts}")
        ctx = self._user_ctx(alarm, actor, context)
        now = self.clock.time()
        alarm.acknowledged = True
        alarm.ack_ts = now
        alarm.ack_by = actor
        self._set_escalation(alarm, None)
        self._transition(alarm, AlarmTransition.ACKNOWLEDGED, ctx, now, {"note": note} if note else {})
        snapshot = msgspec.structs.replace(alarm)
        await self._commit()
        return snapshot

    async def silence(self, alarm_id: str, actor: str, *, note: str = "", context: Context | None = None) -> Alarm:
        """Mute sounders without clearing or acknowledging.

        Reminders go on: muting a buzzer is not taking charge; only an
        acknowledgement is (the notify plugin reads SILENCED the same way).
        """
        alarm = await self._get_open(alarm_id)
        if not alarm.active:
            raise AlarmError(f"alarm {alarm_id} is cleared; there is nothing to silence")
        if alarm.silenced:
            raise AlarmError(f"alarm {alarm_id} was already silenced by {alarm.silenced_by}")
        ctx = self._user_ctx(alarm, actor, context)
        now = self.clock.time()
        alarm.silenced = True
        alarm.silence_ts = now
        alarm.silenced_by = actor
        self._transition(alarm, AlarmTransition.SILENCED, ctx, now, {"note": note} if note else {})
        snapshot = msgspec.structs.replace(alarm)
        await self._commit()
        return snapshot

    async def clear(self, alarm_id: str, actor: str, *, note: str = "", context: Context | None = None) -> Alarm:
        """Operator reset.  If the condition still holds, the next reading raises a new alarm."""
        alarm = await self._get_open(alarm_id)
        if not alarm.active:
            raise AlarmError(f"alarm {alarm_id} is already cleared")
        ctx = self._user_ctx(alarm, actor, context)
        self._clear(alarm, ctx, self.clock.time(), by=f"user:{actor}", detail={"note": note} if note else {})
        snapshot = msgspec.structs.replace(alarm)
        await self._commit()
        return snapshot

    async def set_verdict(
        self, alarm_id: str, verdict: Verdict | str, actor: str, *, note: str = "", context: Context | None = None
    ) -> Alarm:
        """Record what a fire alarm was: real fire, false alarm (误报) or test.  May be revised."""
        try:
            verdict = Verdict(verdict)
        except ValueError:
            raise AlarmError(f"unknown verdict {verdict!r} (one of {[v.value for v in Verdict]})") from None
        alarm = self._open.get(alarm_id) or self._closed.get(alarm_id) or await self.store.get_alarm(alarm_id)
        if alarm is None:
            raise AlarmNotFound(f"no alarm {alarm_id}")
        if alarm.category is not AlarmCategory.FIRE:
            raise AlarmError(f"a verdict applies to fire alarms; alarm {alarm_id} is {alarm.category}")
        ctx = self._user_ctx(alarm, actor, context)
        now = self.clock.time()
        before = alarm.verdict
        alarm.verdict = verdict
        alarm.verdict_ts = now
        alarm.verdict_by = actor
        alarm.verdict_note = note
        detail = {"verdict": str(verdict), "note": note}
        if before is not None:
            detail["previous"] = str(before)
        if alarm.id not in self._open:
            self._closed[alarm.id] = alarm
        self._transition(alarm, AlarmTransition.VERDICT, ctx, now, detail)
        snapshot = msgspec.structs.replace(alarm)
        await self._commit()
        return snapshot

    async def _get_open(self, alarm_id: str) -> Alarm:
        alarm = self._open.get(alarm_id)
        if alarm is not None:
            return alarm
        closed = self._closed.get(alarm_id) or await self.store.get_alarm(alarm_id)
        if closed is None:
            raise AlarmNotFound(f"no alarm {alarm_id}")
        raise AlarmError(f"alarm {alarm_id} is closed (cleared and acknowledged)")

    # -- queries -------------------------------------------------------------------------------

    async def list_alarms(
        self,
        status: AlarmStatus | str | Iterable[AlarmStatus | str] | None = None,
        *,
        unit_id: str | None = None,
        category: AlarmCategory | str | None = None,
        device_id: str | None = None,
        limit: int = 500,
        offset: int = 0,
    ) -> list[Alarm]:
        """Alarms, most urgent first (active, then severity, then newest).

        Reads what is committed (every operator action returns only once its
        transition is), through the readers: never through the writer's queue.
        """
        statuses = None
        if status is not None:
            statuses = [AlarmStatus(status)] if isinstance(status, str) else [AlarmStatus(s) for s in status]
        stored = await self.store.query_alarms(
            statuses, unit_id=unit_id, category=category, device_id=device_id, limit=limit, offset=offset
        )
        return self.freshest(stored)

    def freshest(self, stored: list[Alarm]) -> list[Alarm]:
        """Stored alarms with the engine's own copies where it has one: counts and last values
        of open alarms are checkpointed, not written per reading (transitions always are)."""
        live = self._open
        return [msgspec.structs.replace(live[a.id]) if a.id in live else a for a in stored]

    async def get(self, alarm_id: str) -> Alarm | None:
        return self._open.get(alarm_id) or self._closed.get(alarm_id) or await self.store.get_alarm(alarm_id)

    async def history(self, alarm_id: str) -> list[Transition]:
        if self._history or self._outbox:
            self._flush()
        with anyio.move_on_after(5):  # alarm-lane commits; a refusing disk must not hang a reader
            for done in list(self._inflight):
                await done.wait()
        return await self.store.history(alarm_id)

    async def linkage_log(self, alarm_id: str | None = None) -> list[Any]:
        return await self.store.linkage(alarm_id)

    @property
    def busy(self) -> bool:
        """Work queued or in hand: journal entries not yet handled, transitions not yet committed."""
        sub = getattr(self.consumer, "_sub", None)
        return bool(self._outbox or self._history or (sub is not None and not sub.idle))

    def open_alarms(self) -> list[Alarm]:
        return sorted(self._open.values(), key=lambda a: (not a.active, -a.severity, -a.start_ts))

    def metrics(self) -> dict[str, Any]:
        return {
            "open": len(self._open),
            "active": len(self._active),
            "timers": len(self.timers),
            "timers_fired": self.timers.fired,
            "timer_errors": self.timers.errors,
            "rule_errors": self.rule_errors,
            "config_errors": len(self._config_errors),
            "evaluated": self.evaluated,
            "skipped_steady": self.skipped,
            "unconfirmed_rule_states": len(self._dirty_rules),
            "journal": self.consumer.metrics() if self.consumer else {},
            "linkage": self.linkage.metrics(),
        }
