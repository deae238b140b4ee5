"""The alarm engine: readings in, alarms out, alarms into actions.

It subscribes to point and device events on the bus, runs every configured rule
on every point it applies to, and owns what rules must not: alarm identity and
dedup, the lifecycle (active/cleared × unacknowledged/acknowledged, silence,
verdict), escalation, linkage, timers and persistence.

Ordering and safety:

* One lock serialises event handling, timer firing and operator actions, so an
  acknowledgement can never interleave with the reading that clears the alarm.
* An alarm transition is committed to SQLite before its ``AlarmEvent`` is
  published: anything a notifier sent survives a restart.
* A rule that raises, or options that do not validate, never stop the engine:
  the former is logged and counted, the latter becomes a visible fault alarm
  ("rule configuration invalid") on the point, so a typo cannot silently disable
  a fire alarm.
* Rule timing uses the engine's clock, not the reading's timestamp: a device
  whose clock is off by minutes must not shorten an on-delay.
"""

from __future__ import annotations

import logging
from typing import Any, Iterable, Mapping

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
    Context,
    Event,
    OverflowPolicy,
    PointInfo,
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
    ReportInput,
    RuleConfigError,
    RuleInput,
    Subject,
    TickInput,
    ValueInput,
    is_number,
)

from .linkage import ActionHandler, LinkageRule, make_write_point_handler
from .linkage_runner import LinkageRunner
from .model import Alarm, AlarmError, AlarmNotFound, AlarmStatus, Transition, Verdict
from .store import AlarmStore
from .timers import Timer, TimerQueue

log = logging.getLogger(__name__)

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

    def __post_init__(self) -> None:
        for category, gaps in self.escalation.items():
            if any(gap < 1 for gap in gaps):
                raise ValueError(f"escalation gaps for {category} must be at least 1 s, got {gaps}")
        names = [rule.name for rule in self.linkage]
        if len(set(names)) != len(names):
            raise ValueError(f"linkage rule names repeat: {names}")

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> "AlarmConfig":
        """Validate a site file section; errors name the offending path (``$.linkage[0]…``)."""
        return msgspec.convert(raw, cls, strict=False)


class _RuleState(msgspec.Struct):
    state: dict[str, Any]
    point_id: str
    context_id: str | None = None


def _subject(point: PointInfo, cond: Condition) -> tuple[str, str | None, str | None, str | None]:
    """(subject id, point_id, device_id, location_id) of the alarm a condition belongs to."""
    if cond.subject is Subject.DEVICE:
        return f"device:{point.device_id}", None, point.device_id, point.location_id
    if cond.subject is Subject.LOCATION and point.location_id:
        return f"location:{point.location_id}", None, None, point.location_id
    return point.point_id, point.point_id, point.device_id, point.location_id


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
    """Runs rules on points and owns alarms.  ``core`` is a ``firebus.sdk.CoreAPI``."""

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
        self._lock = anyio.Lock()
        self._open: dict[str, Alarm] = {}  # id -> alarm still on the board
        self._active: dict[str, Alarm] = {}  # dedup_key -> active alarm
        self._states: dict[tuple[str, str], _RuleState] = {}
        self._last_update_pub: dict[str, float] = {}
        self._config_errors: set[tuple[str, str]] = set()
        self._invalid: dict[str, str] = {}  # point id -> why its current value is not a measurement
        all_handlers: dict[str, ActionHandler] = {"write_point": make_write_point_handler(core)}
        all_handlers.update(handlers or {})
        self.linkage = LinkageRunner(core, self.store, self.config.linkage, all_handlers, self.clock)
        self._unsubscribe: Any = None
        self._timer_scope: anyio.CancelScope | None = None
        self._timer_stopped = anyio.Event()
        self.rule_errors = 0
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
        """Reload open alarms, rule state and timers; then subscribe and run timers."""
        for alarm in await self.store.open_alarms():
            self._open[alarm.id] = alarm
            if alarm.active:
                self._active[alarm.dedup_key] = alarm
        for rule, scope, point_id, context_id, state in await self.store.rule_states():
            self._states[(rule, scope)] = _RuleState(state=state, point_id=point_id, context_id=context_id)
        now = self.clock.time()
        for key, kind, due, data in await self.store.timers():
            rule = self._by_key.get(data.get("rule", "")) if kind == "rule" else None
            if rule is not None and rule.pause_while_down and due < now and "armed_at" in data:
                # A heartbeat missed while *we* were down proves nothing about the device:
                # give it one full period from now.
                due = now + (due - data["armed_at"])
            self.timers.set(Timer(key=key, kind=kind, due=due, data=data))
        orphans = {a.rule.split(":", 1)[0] for a in self._active.values()} - set(self._by_key)
        if orphans:
            # Kept, not cleared: dropping a fire rule by mistake must not silently end its alarms.
            log.warning("alarms: active alarms of rules no longer configured: %s (clear them by hand)", sorted(orphans))
        log.info(
            "alarms: resumed %d open alarms, %d rule states, %d timers",
            len(self._open), len(self._states), len(self.timers),
        )
        await self._replay_unevaluated()
        self._unsubscribe = self.core.bus.subscribe(
            "alarms",
            self._on_event,
            types=[StateChanged, StateReported, AvailabilityChanged, CommandRequested, CommandResult],
            overflow=OverflowPolicy.UNBOUNDED,  # a reading an alarm depends on is never shed
        )
        self.core.start_task(self._run_timers, name="alarms:timers")
        await self.linkage.resume()
        self.started = True

    async def _replay_unevaluated(self) -> None:
        """Evaluate readings that were committed (and acknowledged upstream) but not evaluated.

        The transport acknowledges a reading once *it* is durable; the rules run later
        from the bus.  A crash in between would otherwise lose the alarm of an
        acknowledged reading.  Replay is idempotent: an active alarm is updated, not re-raised.
        """
        rows = await self.store.unevaluated_readings()
        if not rows:
            return
        devices = getattr(self.core.registry, "devices", {})
        replayed = 0
        ctx = Context(actor=ActorKind.SYSTEM, actor_id="alarms:replay")
        for point_id, ts_ms, value, fault in rows:
            point = self.core.registry.point_info(point_id)
            if point is None:
                continue
            device = devices.get(point.device_id)
            if device is not None and getattr(device, "discovered", False):
                continue  # not trusted to raise alarms until commissioned
            data = StateChanged(
                point_id=point_id, device_id=point.device_id, point_key=point.key,
                point_class=point.point_class, ts=ts_ms / 1000, new_value=value, fault=fault,
            )
            async with self._lock:
                await self._on_state(data, ctx)
            replayed += 1
        log.info("alarms: evaluated %d reading(s) committed before the last stop but not yet evaluated", replayed)

    async def stop(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        if self._timer_scope is not None:
            self._timer_scope.cancel()
            await self._timer_stopped.wait()
        await self.linkage.stop()
        await self.store.flush()
        self.started = False

    async def _run_timers(self) -> None:
        try:
            with anyio.CancelScope() as scope:
                self._timer_scope = scope
                await self.timers.run(self._fire_timer)
        finally:
            self._timer_stopped.set()

    # -- bus input ---------------------------------------------------------------------------

    async def _on_event(self, event: Event) -> None:
        async with self._lock:
            await self._handle(event)

    async def _handle(self, event: Event) -> None:
        data = event.data
        if isinstance(data, StateChanged):
            await self._on_state(data, event.context)
        elif isinstance(data, StateReported):
            point = self.core.registry.point_info(data.point_id)
            if point is not None:
                inp = ReportInput(
                    ts=self.clock.time(), key=point.key, point_id=point.point_id, fault=self._invalid.get(point.point_id)
                )
                for rule in self._others:
                    if self._applies(rule, point):
                        await self._run(rule, point, inp, event.context.id, observation=True)
        elif isinstance(data, AvailabilityChanged):
            inp = AvailabilityInput(
                ts=self.clock.time(), available=data.availability is Availability.AVAILABLE, reason=data.reason
            )
            await self._device_input(data.device_id, inp, event.context.id, related_only=None)
        elif isinstance(data, (CommandRequested, CommandResult)):
            ok = data.ok if isinstance(data, CommandResult) else None
            inp = CommandInput(
                ts=self.clock.time(),
                key=data.point_key,
                value=getattr(data, "value", None),
                command_id=data.command_id,
                ok=ok,
                error=getattr(data, "error", ""),
            )
            await self._device_input(data.device_id, inp, event.context.id, related_only=data.point_key)

    async def _on_state(self, data: StateChanged, context: Context) -> None:
        point = self.core.registry.point_info(data.point_id) or PointInfo(
            point_id=data.point_id, device_id=data.device_id, key=data.point_key, point_class=data.point_class
        )
        inp = ValueInput(
            ts=self.clock.time(),
            key=point.key,
            value=data.new_value,
            fault=data.fault,
            point_id=point.point_id,
            point_class=point.point_class,
            value_ts=data.ts,
        )
        invalid = None
        for rule in self._gates:
            if self._applies(rule, point):
                ev = await self._run(rule, point, inp, context.id, observation=True)
                if ev is not None and ev.invalid:
                    invalid = ev.invalid
        if invalid is not None and inp.fault is None:
            inp = msgspec.structs.replace(inp, fault=invalid)
        if inp.fault is not None:  # identical re-reports of it are no measurement either
            self._invalid[point.point_id] = inp.fault
        else:
            self._invalid.pop(point.point_id, None)
        for rule in self._others:
            if self._applies(rule, point):
                await self._run(rule, point, inp, context.id, observation=True)
        if self._has_related:
            for sibling in self._siblings(point.device_id):
                if sibling.point_id == point.point_id:
                    continue
                for rule in self._others:
                    if self._applies(rule, sibling) and point.key in self._related(rule, sibling):
                        await self._run(rule, sibling, inp, context.id, observation=True)
        # Everything this reading caused is queued before the watermark, so a crash before
        # it commits means the reading is evaluated again on start (see _replay_unevaluated).
        await self.store.save_watermark(point.point_id, int(round(data.ts * 1000)))

    async def _device_input(self, device_id: str, inp: RuleInput, context_id: str, related_only: str | None) -> None:
        done: set[tuple[str, str]] = set()
        for point in self._siblings(device_id):
            for rule in self._others:
                if not self._applies(rule, point):
                    continue
                if related_only is not None and related_only not in self._related(rule, point):
                    continue
                key = (rule.key, rule.scope_of(point))
                if key in done:  # a device-scoped rule hears about its device once
                    continue
                done.add(key)
                await self._run(rule, point, inp, context_id, observation=True)

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

    # -- running one rule ------------------------------------------------------------------

    async def _run(
        self, rule: AlarmRule, point: PointInfo, inp: RuleInput, context_id: str | None, *, observation: bool
    ) -> Evaluation | None:
        try:
            opts = rule.options_for(point)
        except RuleConfigError as exc:
            await self._config_fault(rule, point, str(exc), context_id)
            return None
        if (rule.key, point.point_id) in self._config_errors:
            await self._config_fault(rule, point, None, context_id)
        scope = rule.scope_of(point)
        skey = (rule.key, scope)
        entry = self._states.get(skey)
        old = entry.state if entry else {}
        try:
            ev = rule.evaluate(point, opts, inp, old)
        except Exception:
            self.rule_errors += 1
            log.exception("alarms: rule %r raised on point %s", rule.key, point.point_id)
            return None
        parent = context_id if not isinstance(inp, TickInput) else (entry.context_id if entry else None)
        if ev.state != old or entry is None or parent != entry.context_id:
            self._states[skey] = _RuleState(state=ev.state, point_id=point.point_id, context_id=parent)
            await self.store.save_rule_state(rule.key, scope, point.point_id, parent, ev.state)
        await self._arm(f"rule:{rule.key}:{scope}", "rule", ev.wake_at, {"rule": rule.key, "scope": scope})
        for cond in _merge(ev.conditions):
            await self._apply(rule, point, cond, parent, observation=observation and not isinstance(inp, TickInput))
        return ev

    async def _arm(self, key: str, kind: str, due: float | None, data: dict[str, Any]) -> None:
        current = self.timers.get(key)
        if due is None:
            if current is not None:
                self.timers.cancel(key)
                await self.store.save_timer(key, kind, None, data)
            return
        if current is not None and current.due == due:
            return
        data = {**data, "armed_at": self.clock.time()}
        self.timers.set(Timer(key=key, kind=kind, due=due, data=data))
        await self.store.save_timer(key, kind, due, data)

    async def _fire_timer(self, timer: Timer) -> None:
        async with self._lock:
            if self.timers.get(timer.key) is not None:
                return  # re-armed for later while we waited for the lock
            await self.store.save_timer(timer.key, timer.kind, None, timer.data)
            if timer.kind == "rule":
                rule = self._by_key.get(timer.data.get("rule", ""))
                entry = self._states.get((timer.data.get("rule", ""), timer.data.get("scope", "")))
                if rule is None or entry is None:
                    return  # the rule was removed from the configuration
                point = self.core.registry.point_info(entry.point_id)
                if point is None:
                    return
                await self._run(rule, point, TickInput(ts=self.clock.time()), None, observation=False)
            elif timer.kind == "escalation":
                await self._escalate(timer)

    # -- conditions -> alarms ------------------------------------------------------------------

    async def _apply(
        self, rule: AlarmRule, point: PointInfo, cond: Condition, parent_id: str | None, *, observation: bool
    ) -> None:
        subject, point_id, device_id, location_id = _subject(point, cond)
        name = f"{rule.key}:{cond.group}" if cond.group else rule.key
        dedup = f"{subject}|{name}|{cond.category}"
        alarm = self._active.get(dedup)
        now = self.clock.time()
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
                first_value=cond.value,
                last_value=cond.value,
                peak_value=cond.value,
                start_ts=now,
                last_ts=now,
                context_id=new_id(),
                parent_context_id=parent_id,
            )
            self._open[alarm.id] = alarm
            self._active[dedup] = alarm
            ctx = Context(id=alarm.context_id, parent_id=parent_id, actor=ActorKind.RULE, actor_id=name)
            # Armed before the transition's commit, so a crash right after the NEW event
            # cannot leave an alarm without its reminders.
            await self._schedule_escalation(alarm, now, step=1)
            await self._transition(alarm, AlarmTransition.NEW, ctx, {"value": cond.value})
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
            if changed:
                before = alarm.severity
                alarm.severity = cond.severity
                alarm.peak_severity = max(alarm.peak_severity, cond.severity)
                if rose and alarm.silenced:  # a worse alarm sounds again (sounder linkage)
                    alarm.silenced = False
                if rose and not alarm.acknowledged:
                    await self._schedule_escalation(alarm, now, step=alarm.escalation_step + 1, first_gap=True)
                ctx = Context(parent_id=parent_id, actor=ActorKind.RULE, actor_id=name)
                await self._transition(
                    alarm, AlarmTransition.UPDATE, ctx, {"severity": int(cond.severity), "from": int(before)}
                )
            elif now - self._last_update_pub.get(alarm.id, alarm.start_ts) >= self.config.update_interval:
                ctx = Context(parent_id=parent_id, actor=ActorKind.RULE, actor_id=name)
                self._last_update_pub[alarm.id] = now
                payload = self._payload(alarm, AlarmTransition.UPDATE)
                await self.store.save_alarm(alarm, on_durable=lambda: self.core.bus.publish(payload, ctx))
            else:
                await self.store.save_alarm(alarm)
        elif not cond.active and alarm is not None:
            ctx = Context(parent_id=parent_id, actor=ActorKind.RULE, actor_id=name)
            await self._clear(alarm, ctx, by=f"rule:{name}", detail={"value": cond.value})

    async def _clear(self, alarm: Alarm, ctx: Context, by: str, detail: dict[str, Any]) -> None:
        alarm.active = False
        alarm.clear_ts = self.clock.time()
        alarm.cleared_by = by
        self._active.pop(alarm.dedup_key, None)
        await self._arm(f"esc:{alarm.id}", "escalation", None, {"alarm_id": alarm.id})
        await self._transition(alarm, AlarmTransition.CLEARED, ctx, detail)

    async def _transition(
        self, alarm: Alarm, transition: AlarmTransition, ctx: Context, detail: dict[str, Any] | None = None
    ) -> None:
        """Record and persist; publish and start linkage once the writer has committed.

        Nothing outside the engine (bus, notifiers, linkage) hears of a transition
        before it is on disk, yet the engine never waits for a commit per event: the
        writer batches an alarm storm into a few transactions and fires the callbacks
        in order.  Every earlier write (rule state, timers) is in the same or an
        earlier commit, so what was announced is exactly what a restart finds.
        """
        alarm.refresh_status()
        if not alarm.open:
            self._open.pop(alarm.id, None)
            self._last_update_pub.pop(alarm.id, None)
        snapshot = msgspec.structs.replace(alarm)  # as of this transition
        payload = self._payload(snapshot, transition)
        await self.store.save_alarm(alarm)
        await self.store.add_transition(
            Transition(
                alarm_id=alarm.id,
                ts=self.clock.time(),
                transition=str(transition),
                actor_kind=str(ctx.actor),
                actor=ctx.actor_id or "",
                detail=detail or {},
                context_id=ctx.id,
                parent_id=ctx.parent_id,
            ),
            on_durable=lambda: self._announce(snapshot, transition, payload, ctx),
        )

    def _announce(self, alarm: Alarm, transition: AlarmTransition, payload: AlarmEvent, ctx: Context) -> None:
        event = self.core.bus.publish(payload, ctx)
        self.linkage.on_transition(alarm, transition, event)

    def _payload(self, alarm: Alarm, transition: AlarmTransition) -> AlarmEvent:
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
            status=str(alarm.status),
            count=alarm.count,
            escalation_step=alarm.escalation_step,
            ts=self.clock.time(),
        )

    async def _config_fault(self, rule: AlarmRule, point: PointInfo, error: str | None, context_id: str | None) -> None:
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
        )
        await self._apply(rule, point, cond, context_id, observation=False)

    # -- escalation ----------------------------------------------------------------------------

    def _gaps(self, alarm: Alarm) -> list[float]:
        return list(self.config.escalation.get(str(alarm.category), []))

    async def _schedule_escalation(self, alarm: Alarm, after: float, step: int, first_gap: bool = False) -> None:
        """Arm reminder ``step``; ``first_gap`` (a severity rise) uses the schedule's first gap."""
        gaps = self._gaps(alarm)
        if not gaps or alarm.acknowledged or not alarm.active:
            return
        gap = gaps[0] if first_gap else gaps[min(step - 1, len(gaps) - 1)]
        due = after + gap
        if due <= self.clock.time():  # back after an outage: one reminder now-ish, not a burst
            due = self.clock.time() + gap
        await self._arm(f"esc:{alarm.id}", "escalation", due, {"alarm_id": alarm.id, "step": step})

    async def _escalate(self, timer: Timer) -> None:
        alarm = self._open.get(timer.data.get("alarm_id", ""))
        if alarm is None or not alarm.active or alarm.acknowledged:
            return
        step = int(timer.data.get("step", 1))
        alarm.escalation_step = step
        ctx = Context(parent_id=alarm.context_id, actor=ActorKind.SYSTEM, actor_id="escalation")
        # The next reminder counts from when this one was due, so the schedule does not
        # drift; it is armed before this one is committed, so a crash cannot end the series.
        await self._schedule_escalation(alarm, timer.due, step + 1)
        await self._transition(alarm, AlarmTransition.ESCALATE, ctx, {"step": step, "due": timer.due})

    # -- operator actions (panel / API) ----------------------------------------------------------

    def _user_ctx(self, alarm: Alarm, actor: str, context: Context | None) -> Context:
        if not actor:
            raise AlarmError("an operator action needs an actor (who did it)")
        if context is not None:
            return context
        return Context(parent_id=alarm.context_id, actor=ActorKind.USER, actor_id=actor)

    async def acknowledge(self, alarm_id: str, actor: str, *, note: str = "", context: Context | None = None) -> Alarm:
        """Acknowledge: stops escalation; a cleared alarm then leaves the board."""
        async with self._lock:
            alarm = await self._get_open(alarm_id)
            if alarm.acknowledged:
                raise AlarmError(f"alarm {alarm_id} was already acknowledged by {alarm.ack_by} at {alarm.ack_ts}")
            ctx = self._user_ctx(alarm, actor, context)
            alarm.acknowledged = True
            alarm.ack_ts = self.clock.time()
            alarm.ack_by = actor
            await self._arm(f"esc:{alarm.id}", "escalation", None, {"alarm_id": alarm.id})
            await self._transition(alarm, AlarmTransition.ACKNOWLEDGED, ctx, {"note": note} if note else {})
            await self.store.flush()  # durable and announced when we return
            return msgspec.structs.replace(alarm)

    async def silence(self, alarm_id: str, actor: str, *, note: str = "", context: Context | None = None) -> Alarm:
        """Mute sounders without clearing or acknowledging.

        Reminders go on: muting a buzzer is not taking charge; only an
        acknowledgement is (the notify plugin reads SILENCED the same way).
        """
        async with self._lock:
            alarm = await self._get_open(alarm_id)
            if not alarm.active:
                raise AlarmError(f"alarm {alarm_id} is cleared; there is nothing to silence")
            if alarm.silenced:
                raise AlarmError(f"alarm {alarm_id} was already silenced by {alarm.silenced_by}")
            ctx = self._user_ctx(alarm, actor, context)
            alarm.silenced = True
            alarm.silence_ts = self.clock.time()
            alarm.silenced_by = actor
            await self._transition(alarm, AlarmTransition.SILENCED, ctx, {"note": note} if note else {})
            await self.store.flush()  # durable and announced when we return
            return msgspec.structs.replace(alarm)

    async def clear(self, alarm_id: str, actor: str, *, note: str = "", context: Context | None = None) -> Alarm:
        """Operator reset.  If the condition still holds, the next reading raises a new alarm."""
        async with self._lock:
            alarm = await self._get_open(alarm_id)
            if not alarm.active:
                raise AlarmError(f"alarm {alarm_id} is already cleared")
            ctx = self._user_ctx(alarm, actor, context)
            await self._clear(alarm, ctx, by=f"user:{actor}", detail={"note": note} if note else {})
            await self.store.flush()  # durable and announced when we return
            return msgspec.structs.replace(alarm)

    async def set_verdict(
        self, alarm_id: str, verdict: Verdict | str, actor: str, *, note: str = "", context: Context | None = None
    ) -> Alarm:
        """Record what a fire alarm was: real fire, false alarm (误报) or test.  May be revised."""
        try:
            verdict = Verdict(verdict)
        except ValueError:
            raise AlarmError(f"unknown verdict {verdict!r} (one of {[v.value for v in Verdict]})") from None
        async with self._lock:
            alarm = self._open.get(alarm_id) or await self.store.get_alarm(alarm_id)
            if alarm is None:
                raise AlarmNotFound(f"no alarm {alarm_id}")
            if alarm.category is not AlarmCategory.FIRE:
                raise AlarmError(f"a verdict applies to fire alarms; alarm {alarm_id} is {alarm.category}")
            ctx = self._user_ctx(alarm, actor, context)
            before = alarm.verdict
            alarm.verdict = verdict
            alarm.verdict_ts = self.clock.time()
            alarm.verdict_by = actor
            alarm.verdict_note = note
            detail = {"verdict": str(verdict), "note": note}
            if before is not None:
                detail["previous"] = str(before)
            await self._transition(alarm, AlarmTransition.VERDICT, ctx, detail)
            await self.store.flush()  # durable and announced when we return
            return msgspec.structs.replace(alarm)

    async def _get_open(self, alarm_id: str) -> Alarm:
        alarm = self._open.get(alarm_id)
        if alarm is not None:
            return alarm
        closed = await self.store.get_alarm(alarm_id)
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
        """Alarms, most urgent first (active, then severity, then newest)."""
        statuses = None
        if status is not None:
            statuses = [AlarmStatus(status)] if isinstance(status, str) else [AlarmStatus(s) for s in status]
        await self.store.flush()
        return await self.store.query_alarms(
            statuses, unit_id=unit_id, category=category, device_id=device_id, limit=limit, offset=offset
        )

    async def get(self, alarm_id: str) -> Alarm | None:
        return self._open.get(alarm_id) or await self.store.get_alarm(alarm_id)

    async def history(self, alarm_id: str) -> list[Transition]:
        await self.store.flush()
        return await self.store.history(alarm_id)

    async def linkage_log(self, alarm_id: str | None = None) -> list[Any]:
        await self.store.flush()
        return await self.store.linkage(alarm_id)

    @property
    def busy(self) -> bool:
        """Handling an event, a timer or an operator action right now."""
        return self._lock.locked()

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
            "linkage": self.linkage.metrics(),
        }
