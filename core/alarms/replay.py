"""Start-up and shut-down: reload from the last checkpoint, replay the journal after it, follow.

At start the engine reloads its open alarms and rule states, re-arms their timers
(a wake-up or reminder missed while firebus was down fires once, soon, not as a
burst), replays the journal entries committed after the checkpoint, then follows the
live tail.  Stopping saves the cursor.
"""

from __future__ import annotations

import anyio

from firebus.sdk import Lane, OverflowPolicy, RegistryUpdated, StateReported
from firebus.sdk.rule import AlarmRule, Scope, TickInput

from .dispatch import INPUT_TYPES, Dispatch
from .state import LATE_KEEP, log, _RuleState
from .timers import Timer


class Replay(Dispatch):
    """Bring the engine up from disk, and down again."""

    async def start(self) -> None:
        """Reload alarms and rule state, replay the journal after the checkpoint, then follow it."""
        # Checkpoint numbers go on rising across restarts (a row never loses to an older one).
        self._version = await self.store.max_checkpoint()
        for alarm in await self.store.open_alarms():
            self._open[alarm.id] = alarm
            if alarm.active:
                self._activate(alarm)
        # Episodes already over: a device re-uploading its buffer after our restart must not
        # raise them again as late alarms (late.py).
        for dedup, episode in await self.store.recent_episodes(LATE_KEEP):
            self._remember_window(dedup, episode)
        now = self.clock.time()
        # Each row brings its own copy of every string: ids are taken from the registry's
        # entries and repeated ones shared (40,000 rule states at 10,000 devices).
        points = getattr(self.core.registry, "points", None) or {}
        shared: dict[str, str] = {key: key for key in self._by_key}
        for rule_key, scope, point_id, context_id, state, wake_at in await self.store.rule_states():
            point = points.get(point_id)
            if point is not None:
                point_id = getattr(point, "id", point_id)  # the registry's PointEntry
            if scope == point_id:
                scope = point_id
            rule_key = shared.setdefault(rule_key, rule_key)
            if context_id is not None:
                context_id = shared.setdefault(context_id, context_id)
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
        # A device-scoped rule's state is keyed by the device alone: where it exists (every
        # restart after the first), neither the device's points nor their rules are needed.
        by_device = [(r, r.scope is Scope.DEVICE and type(r).scope_of is AlarmRule.scope_of) for r in rules]
        states = self._states
        for device in list(devices.values()):
            if device.orphaned_at is not None or device.discovered:
                continue
            scope = f"device:{device.id}"
            pending = [r for r, keyed_by_device in by_device if not (keyed_by_device and (r.key, scope) in states)]
            if not pending:
                continue
            points = self._siblings(device.id)
            if not points:
                continue
            for rule in pending:
                # applies_to first: the whole selection of a point only where this rule applies
                # (a vendor's liveness rule of other drivers applies to none of the points).
                point = next((p for p in points if self._applies(rule, p) and rule in self._rules_of(p)[1]), None)
                if point is None or (rule.key, rule.scope_of(point)) in self._states:
                    continue
                self._run(rule, point, TickInput(ts=now, last_report=self._last_report(rule, point)), None,
                          observation=False)

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
