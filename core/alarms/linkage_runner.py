"""Runs linkage actions for alarm transitions read from the journal, and records every outcome.

A durable consumer of ``AlarmEvent`` entries: after a crash the transitions
since its cursor come again, and the record id (entry seq, rule, action index)
makes that harmless — an action already recorded is not started twice.  Each
run is on disk as *pending* before it starts; a run still pending at start-up
(the process died mid-action) is run again: safety actions are idempotent
writes ("close the valve" twice leaves it closed).

Filters may name devices and places by their site-file keys (what people write)
or by registry ids; keys are resolved when the engine starts.
"""

from __future__ import annotations

import logging
from typing import Any, Mapping

import anyio
import msgspec

from firebus.sdk import ActorKind, AlarmEvent, AlarmTransition, Context, Event

from ..journal.consumer import DurableConsumer
from .linkage import Action, ActionHandler, LinkageRule, Match
from .model import Alarm, LinkageRecord
from .store import AlarmStore

log = logging.getLogger(__name__)


def action_type(action: Any) -> str:
    return str(action.__struct_config__.tag)


def resolve_match(match: Match, device_ids: Mapping[str, str], place_id: Any, below: Any = None) -> Match:
    """The filter with site keys turned into registry ids (ids given as such are kept).

    A place stands for itself and everything inside it: ``locations: [building-a]``
    matches an alarm in any room of building A (``below(place_id)`` lists those).
    """

    def devices(values: list[str]) -> list[str]:
        return [device_ids.get(v, v) for v in values]

    def places(values: list[str]) -> list[str]:
        out: list[str] = []
        for v in values:
            found = place_id(v) or v
            out.append(found)
            if below is not None:
                out.extend(below(found))
        return out

    return msgspec.structs.replace(
        match, devices=devices(match.devices), locations=places(match.locations), units=places(match.units)
    )


class LinkageRunner:
    def __init__(
        self,
        core: Any,
        store: AlarmStore,
        rules: list[LinkageRule],
        handlers: Mapping[str, ActionHandler],
        clock: Any,
        engine: Any = None,
    ) -> None:
        self.core = core
        self.store = store
        self.configured = [r for r in rules if r.enabled]
        self.rules = list(self.configured)
        self.handlers = dict(handlers)
        self.clock = clock
        self.engine = engine
        self.consumer: DurableConsumer | None = None
        self._device_ids: Mapping[str, str] = {}
        self._resolved_with = 0
        self._resolve: Any = lambda rule: rule
        self.started = 0
        self.succeeded = 0
        self.failed = 0
        self.running = 0

    async def start(self) -> None:
        registry = getattr(self.core, "registry", None)
        # The core's key → id map: filled as devices start, read when a filter is resolved.
        device_ids = getattr(self.core, "device_ids", None)
        if device_ids is None:
            device_ids = {}
        self._device_ids = device_ids

        def place_id(key: str) -> str | None:
            find = getattr(registry, "place_by_key", None)
            place = find(key) if find is not None else None
            return place.id if place is not None else None

        def below(place_id: str) -> list[str]:
            places = getattr(registry, "places", {}) or {}
            out, todo = [], [place_id]
            while todo:
                parent = todo.pop()
                kids = [p.id for p in places.values() if p.parent_id == parent]
                out.extend(kids)
                todo.extend(kids)
            return out

        self._resolve = lambda rule: msgspec.structs.replace(
            rule, when=resolve_match(rule.when, self._device_ids, place_id, below))
        self.rules = [self._resolve(rule) for rule in self.configured]
        self._resolved_with = len(self._device_ids)
        await self.resume()
        if not self.rules:
            return
        self.consumer = self.core.journal.subscribe("linkage", self._on_batch, [AlarmEvent])
        with anyio.fail_after(600):
            await self.consumer.caught_up.wait()

    async def _on_batch(self, events: list[Event]) -> None:
        if len(self._device_ids) != self._resolved_with:  # devices started since: keys resolve now
            self.rules = [self._resolve(rule) for rule in self.configured]
            self._resolved_with = len(self._device_ids)
        planned: list[tuple[LinkageRecord, Any, AlarmEvent]] = []
        for event in events:
            data = event.data
            if not isinstance(data, AlarmEvent):
                continue
            for rule in self.rules:
                if not rule.when.matches(data, data.transition):
                    continue
                for index, action in enumerate(rule.actions):
                    planned.append((LinkageRecord(
                        id=f"{event.seq}:{rule.name}:{index}",
                        alarm_id=data.alarm_id,
                        rule=rule.name,
                        action=msgspec.to_builtins(action),
                        transition=str(data.transition),
                        ts=self.clock.time(),
                        context_id=f"{event.ref}:{rule.name}:{index}",
                        parent_id=event.ref,  # the AlarmEvent: reading → alarm → action
                    ), action, data))
        if not planned:
            return
        ids = [record.id for record, _, _ in planned]
        known = {r[0] for r in await self.core.storage.fetchall(
            f"SELECT id FROM alarm_linkage WHERE id IN ({', '.join('?' * len(ids))})", ids)}
        for record, action, data in planned:
            if record.id in known:
                continue  # started before a restart: its own record says how it went
            alarm = await self._alarm(data)
            # On disk as pending before it runs: a crash mid-action runs it again.
            self.store.save_linkage(record, new=True,
                                    on_durable=lambda r=record, a=action, al=alarm: self._start(r, a, al))

    async def _alarm(self, data: AlarmEvent) -> Alarm:
        if self.engine is not None:
            alarm = await self.engine.get(data.alarm_id)
            if alarm is not None:
                return msgspec.structs.replace(alarm)
        return Alarm(
            id=data.alarm_id, dedup_key="", subject=data.point_id or data.device_id or "", rule=data.rule,
            rule_type="", category=data.category, severity=data.severity, peak_severity=data.severity,
            point_id=data.point_id, device_id=data.device_id, location_id=data.location_id, unit_id=data.unit_id,
            message=data.message, last_value=data.value,
        )

    def _start(self, record: LinkageRecord, action: Any, alarm: Alarm) -> None:
        self.started += 1
        self.running += 1
        self.core.start_task(self._execute, record, action, alarm, name=f"linkage:{record.rule}")

    async def _execute(self, record: LinkageRecord, action: Any, alarm: Alarm) -> None:
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
            self.store.save_linkage(record)
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
                self.store.save_linkage(record)
                continue
            if alarm is None:
                continue
            log.info("alarms: re-running linkage %s (%s) interrupted by a restart", record.rule, record.id)
            self._start(record, action, alarm)

    async def stop(self) -> None:
        # Running actions belong to the core's task group; unfinished ones stay pending.
        if self.consumer is not None:
            self.consumer.stop()

    def metrics(self) -> dict[str, Any]:
        return {"started": self.started, "succeeded": self.succeeded, "failed": self.failed,
                "running": self.running}


__all__ = ["AlarmTransition", "LinkageRunner", "action_type", "resolve_match"]
