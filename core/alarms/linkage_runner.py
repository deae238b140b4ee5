"""Runs linkage actions in the background and records every outcome."""

from __future__ import annotations

import logging
from typing import Any, Mapping

import anyio
import msgspec

from firebus.sdk import ActorKind, AlarmTransition, Context, Event, new_id

from .linkage import Action, ActionHandler, LinkageRule
from .model import Alarm, LinkageRecord
from .store import AlarmStore

log = logging.getLogger(__name__)


def action_type(action: Any) -> str:
    return str(action.__struct_config__.tag)


class LinkageRunner:
    def __init__(
        self,
        core: Any,
        store: AlarmStore,
        rules: list[LinkageRule],
        handlers: Mapping[str, ActionHandler],
        clock: Any,
    ) -> None:
        self.core = core
        self.store = store
        self.rules = [r for r in rules if r.enabled]
        self.handlers = dict(handlers)
        self.clock = clock
        self.started = 0
        self.succeeded = 0
        self.failed = 0
        self.running = 0

    def on_transition(self, alarm: Alarm, transition: AlarmTransition, event: Event) -> None:
        """Start every matching action (called once the transition is committed)."""
        for rule in self.rules:
            if not rule.when.matches(alarm, transition):
                continue
            for action in rule.actions:
                record = LinkageRecord(
                    id=new_id(),
                    alarm_id=alarm.id,
                    rule=rule.name,
                    action=msgspec.to_builtins(action),
                    transition=str(transition),
                    ts=self.clock.time(),
                    context_id=new_id(),
                    parent_id=event.context.id,  # the AlarmEvent: reading → alarm → action
                )
                self._start(record, action, alarm, new=True)

    def _start(self, record: LinkageRecord, action: Any, alarm: Alarm, new: bool = False) -> None:
        self.started += 1
        self.running += 1
        self.core.start_task(self._execute, record, action, alarm, new, name=f"linkage:{record.rule}")

    async def _execute(self, record: LinkageRecord, action: Any, alarm: Alarm, new: bool) -> None:
        if new:  # on disk as pending before it runs: a crash mid-action re-runs it
            await self.store.save_linkage(record)
            await self.store.flush()
        kind = action_type(action)
        ctx = Context(
            id=record.context_id, parent_id=record.parent_id, actor=ActorKind.RULE, actor_id=f"linkage:{record.rule}"
        )
        record.attempts += 1
        try:
            handler = self.handlers.get(kind)
            if handler is None:
                raise LookupError(f"no handler for {kind!r} actions is installed")
            with anyio.fail_after(action.timeout):
                await handler(action, alarm, ctx)
        except anyio.get_cancelled_exc_class():
            self.running -= 1
            raise  # stays pending: run again after a restart
        except TimeoutError:
            record.ok, record.error = False, f"timed out after {action.timeout:g} s"
        except Exception as exc:  # any failure is an outcome to record, never a crash
            record.ok, record.error = False, f"{type(exc).__name__}: {exc}"
        else:
            record.ok = True
        self.running -= 1
        record.done_ts = self.clock.time()
        if record.ok:
            self.succeeded += 1
        else:
            self.failed += 1
            log.warning("alarms: linkage %s %s for alarm %s failed: %s", record.rule, kind, record.alarm_id, record.error)
        try:
            await self.store.save_linkage(record)
            await self.store.flush()
        except Exception:
            log.exception("alarms: could not record the outcome of linkage %s", record.id)

    async def resume(self) -> None:
        """Run again what was pending when the process stopped."""
        for record in await self.store.linkage(pending_only=True):
            alarm = await self.store.get_alarm(record.alarm_id)
            try:
                action = msgspec.convert(record.action, Action)
            except msgspec.ValidationError as exc:
                record.ok, record.error = False, f"stored action no longer valid: {exc}"
                await self.store.save_linkage(record)
                continue
            if alarm is None:
                continue
            log.info("alarms: re-running linkage %s (%s) interrupted by a restart", record.rule, record.id)
            self._start(record, action, alarm)

    async def stop(self) -> None:
        pass  # running actions belong to the core's task group; unfinished ones stay pending

    def metrics(self) -> dict[str, int]:
        return {"started": self.started, "ok": self.succeeded, "failed": self.failed, "running": self.running}
