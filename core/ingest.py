"""The ingest path: readings in, current state and journal entries out.

Every reading goes through ``Ingest.apply``, from polled and push drivers
alike.  It is synchronous and touches no database on the way (at tens of
thousands of readings a second a round trip per reading is the whole budget):

1. the reading's time: the device's own timestamp when it gives one (it is also
   what makes a redelivered message recognisable), else the time the transport
   received it.  Two guards keep a wrong device clock from freezing a point: a
   timestamp more than ``max_past_s`` behind our clock (a clock reset to 1970)
   is replaced by the receive time; and a point whose state came from a
   timestamp far in the future (a clock glitch) takes a newer-arriving reading
   as current again — at once for an alarm-class point, after
   ``RECOVER_LATE`` late readings over ``RECOVER_AFTER_S`` seconds otherwise;
2. compared with the point's current state, in memory:

   * newer and different: a **change** — a ``StateChanged`` journal entry;
   * newer and the same: a **repeat** — ``last_reported`` moves in memory and a
     live-only ``StateReported`` goes to the subscribers that ask for it; no row;
   * older than the point's newest report (changed or not): **late** — kept as
     history (a ``StateChanged`` marked ``late``), never a change of the present.
     A QoS 1 redelivery after a crash is the common case: the unique (point, time)
     key absorbs the row, and nothing is announced as a change that never happened.
     A late reading that differs from the present and falls after its last change
     shows the newest repeat to have been a change: that repeat is recorded too
     (``reordered``), so the history is not left on the old value;

3. the message's entries go to the writer as one operation, with the caller's
   durable callback (the transport acknowledges upstream only after COMMIT).
   A message that only repeats values is acknowledged at once: nothing of it
   needs to be durable.

Lanes: a change of an alarm-class point (smoke, gas alarm, fault, tamper …,
``firebus.sdk.vocab.is_alarm_class``) or of a reading that came in on the alarm
lane is an alarm-lane entry: it commits ahead of any telemetry batch.

Current state is checkpointed to ``point_state`` with the journal position it
reflects: points whose value changed every ``checkpoint_s``, all of them at stop.
On start the checkpoint is loaded and the journal after it replayed (after a crash,
at most ``checkpoint_s`` of changes), so nothing per reading is written twice.

Readings of *discovered* devices (seen on the wire, never configured by a
person) are stored but reach no subscriber: they are not trusted to raise
alarms until someone commissions them.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Callable

import msgspec

from firebus.sdk.context import Context
from firebus.sdk.driver import PointSpec, Reading
from firebus.sdk.events import Event, Lane, StateChanged, StateReported
from firebus.sdk.vocab import ActorKind

from .bus import EventBus
from .journal.rows import COLUMNS, storable, to_ms
from .registry import DeviceEntry, PointEntry, Registry
from .storage import SQL_STATE, Op, Storage

log = logging.getLogger(__name__)

#: a point stuck on a future timestamp takes the present back after this many late readings …
RECOVER_LATE = 3
#: … that kept arriving for at least this long (a redelivery burst after a restart does not)
RECOVER_AFTER_S = 60.0

#: rows per checkpoint operation (the writer's chunk: an alarm waits for one at most)
CHECKPOINT_ROWS = 500

SQL_STATE_SEQ = "INSERT INTO kv (key, value) VALUES ('point_state_seq', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value"


class PointState(msgspec.Struct, gc=False):
    value: Any = None
    fault: str | None = None
    last_changed: float = 0.0  # the reading's time of the current value
    last_updated: float = 0.0
    last_reported: float = 0.0  # the reading's time of the newest report, changed or not
    received: float = 0.0  # our clock when the newest report arrived
    late_count: int = 0  # late readings in a row (clock-glitch recovery)
    late_since: float = 0.0


class Ingest:
    def __init__(
        self,
        storage: Storage,
        registry: Registry,
        bus: EventBus,
        now: Callable[[], float] = time.time,
        *,
        max_future_s: float = 300.0,
        max_past_s: float = 7 * 86400.0,
        checkpoint_s: float = 5.0,
    ) -> None:
        self.storage = storage
        self.registry = registry
        self.bus = bus
        self.now = now
        self.max_future_s = max_future_s
        self.max_past_s = max_past_s
        self.checkpoint_s = checkpoint_s
        self.states: dict[str, PointState] = {}
        self._dirty: set[str] = set()  # states to write at the next full checkpoint
        self._changed: set[str] = set()  # … of which the value changed (the periodic pass)
        self._saved_seq = 0  # the journal position the last queued checkpoint reflects
        self._contexts: dict[str, Context] = {}
        #: devices whose repeated values a rule wants to hear (the alarm engine keeps it)
        self.report_watch: dict[str, Any] = {}
        self._reported_for = -1
        self._reported_wanted = False
        self.readings_in = 0
        self.changes = 0
        self.repeats = 0
        self.late = 0
        self.redeliveries = 0  # late readings that arrived flagged as redelivered (MQTT DUP)
        self.reordered = 0  # late readings that showed a repeat after them to be a change
        self.clock_skewed = 0
        storage.add_flusher(self.checkpoint)

    # -- start ------------------------------------------------------------------------------

    async def load(self) -> None:
        """The checkpoint, then the journal's state changes committed after it."""
        # A row brings its own copy of the point id: the registry's is kept instead (40,000
        # points at 10,000 devices), and equal timestamps of a row share one float.
        points = getattr(self.registry, "points", None) or {}
        for point_id, value, fault, changed, updated, reported in await self.storage.fetchall(
            "SELECT point_id, value, fault, last_changed, last_updated, last_reported FROM point_state"
        ):
            point = points.get(point_id)
            if point is not None:
                point_id = getattr(point, "id", point_id)
            changed = changed or 0.0
            updated = changed if updated == changed else updated or 0.0
            reported = updated if reported == updated else reported or 0.0
            self.states[point_id] = PointState(value, fault, changed, updated, reported)
        row = await self.storage.fetchone("SELECT value FROM kv WHERE key = 'point_state_seq'")
        after = int(row[0]) if row else 0
        self._saved_seq = after
        replayed = 0
        while True:
            rows = await self.storage.fetchall(
                "SELECT seq, subject, vts, value, fault FROM journal WHERE seq > ? AND type = 'StateChanged' "
                "AND late = 0 ORDER BY seq LIMIT 50000", (after,)
            )
            if not rows:
                break
            for seq, point_id, vts, value, fault in rows:
                ts = vts / 1000
                state = self.states.get(point_id)
                if state is None or ts >= state.last_changed:
                    self.states[point_id] = PointState(value, fault, ts, ts, max(ts, state.last_reported if state else 0))
                    self._dirty.add(point_id)
                    self._changed.add(point_id)
                after = seq
            replayed += len(rows)
        if replayed:
            log.info("ingest: %d state change(s) after the last checkpoint replayed from the journal", replayed)

    # -- the hot path -----------------------------------------------------------------------

    def _context(self, device_id: str) -> Context:
        ctx = self._contexts.get(device_id)
        if ctx is None:
            # One shared, frozen context per device: a state change's lineage id is its seq
            # ("j<seq>", Event.ref); nothing per reading is generated.
            ctx = Context(id="", actor=ActorKind.DEVICE, actor_id=device_id)
            self._contexts[device_id] = ctx
        return ctx

    def apply(
        self,
        device: DeviceEntry,
        readings: list[Reading],
        *,
        lane: Lane = Lane.TELEMETRY,
        received: float | None = None,
        redelivered: bool = False,
        context: Context | None = None,
        on_durable: Callable[[], None] | None = None,
    ) -> int:
        """Apply ``readings`` of ``device``; ``on_durable`` runs once they are committed.

        Returns the number of journal entries queued (0: nothing to commit, and
        ``on_durable`` already ran).
        """
        rx = self.now() if received is None else received
        trusted = not device.discovered
        ctx = context or self._context(device.id)
        events: list[Event] = []
        alarm_lane = False
        reported: list[StateReported] | None = (
            [] if trusted and (device.id in self.report_watch or self._wants_reported()) else None
        )
        states = self.states
        future = rx + self.max_future_s
        min_past = rx - self.max_past_s
        for reading in readings:
            point = self.registry.point(device.id, reading.point_key)
            if point is None:
                point = self._undeclared(device, reading.point_key)
            self.readings_in += 1
            ts = reading.ts
            if ts is None:
                ts = rx
            elif ts < min_past:
                self.clock_skewed += 1
                ts = rx
            elif ts > future:
                self.clock_skewed += 1  # kept (it identifies the message), but counted
            fault = reading.fault
            value = None if fault is not None else storable(reading.value)
            state = states.get(point.id)
            if state is not None and state.last_changed:
                # Late means older than the newest report, not only than the last change: a
                # reading that arrives after a newer one (a broker's redelivery order, a
                # gateway's buffer) must not turn the present back — an old "normal" would
                # clear an alarm the newest reading still shows.
                newest = state.last_reported if state.last_reported > state.last_changed else state.last_changed
                if ts < newest and not self._recovers(state, point, rx, future, newest):
                    # Late: history, not the present (redelivery, buffered upload).  The engine
                    # still evaluates it and records an alarm nobody was told of (补报); an
                    # alarm-class one keeps the alarm lane on the way.
                    self.late += 1
                    late_lane = Lane.ALARM if point.alarm_class or lane is Lane.ALARM else Lane.TELEMETRY
                    alarm_lane = alarm_lane or late_lane is Lane.ALARM
                    if redelivered:
                        self.redeliveries += 1
                    if state.received < rx:
                        state.received = rx
                    if ts > state.last_changed and (value != state.value or fault != state.fault):
                        # It falls between the last change and a later repeat, and differs: that
                        # repeat was a change after all (back to the present value).  Record it,
                        # or the history would hold this old value until the next change.
                        self.reordered += 1
                        state.last_changed = state.last_updated = newest
                        events.append(Event(
                            data=StateChanged(point_id=point.id, device_id=device.id, point_key=point.key,
                                              point_class=point.point_class, ts=newest, new_value=state.value,
                                              fault=state.fault, late=True),
                            context=ctx, time_fired=rx, lane=Lane.TELEMETRY,
                        ))
                        self._dirty.add(point.id)
                        self._changed.add(point.id)
                    events.append(Event(
                        data=StateChanged(point_id=point.id, device_id=device.id, point_key=point.key,
                                          point_class=point.point_class, ts=ts, new_value=value, fault=fault,
                                          late=True),
                        context=ctx, time_fired=rx, lane=late_lane,
                    ))
                    continue
                state.late_count = 0
                if state.value == value and state.fault == fault:
                    self.repeats += 1
                    if ts > state.last_reported:
                        state.last_reported = ts
                    state.received = rx
                    self._dirty.add(point.id)
                    if reported is not None:
                        reported.append(StateReported(point_id=point.id, value=value, ts=ts))
                    continue
            old = state.value if state is not None else None
            states[point.id] = PointState(value, fault, ts, ts, ts, rx)
            self._dirty.add(point.id)
            self._changed.add(point.id)
            self.changes += 1
            urgent = point.alarm_class or lane is Lane.ALARM
            alarm_lane = alarm_lane or urgent
            events.append(Event(
                data=StateChanged(point_id=point.id, device_id=device.id, point_key=point.key,
                                  point_class=point.point_class, ts=ts, old_value=old, new_value=value,
                                  fault=fault),
                context=ctx, time_fired=rx, lane=Lane.ALARM if urgent else Lane.TELEMETRY,
            ))
        if reported:
            self.bus.deliver([Event(data=payload, context=ctx, time_fired=rx) for payload in reported])
        if not events:
            if on_durable is not None:
                on_durable()
            return 0
        op = Op([], events, on_durable, Lane.ALARM if alarm_lane else Lane.TELEMETRY)
        # A discovered device's readings are history only: no subscriber hears of them live
        # (consumers reading the journal check the device's trust themselves).
        op.deliver = trusted
        op.gate = trusted  # acknowledged once evaluated too (flow control; see Storage.ack_gate)
        self.storage.submit(op)
        return len(events)

    async def ingest(
        self,
        device: DeviceEntry,
        readings: list[Reading],
        *,
        context: Context | None = None,
        on_durable: Callable[[], None] | None = None,
        lane: Lane = Lane.TELEMETRY,
    ) -> None:
        """``apply`` for callers that can wait: waits first while the writer is congested."""
        if lane is Lane.TELEMETRY and self.storage.congested:
            await self.storage.wait_room()
        self.apply(device, readings, context=context, on_durable=on_durable, lane=lane)

    def _recovers(self, state: PointState, point: PointEntry, rx: float, future: float, newest: float) -> bool:
        """A late reading, but the state itself came from a clock far ahead of ours: the
        device clock glitched and is back.  Take the present back (alarms at once)."""
        if newest <= future:
            return False
        if point.alarm_class:
            log.warning("ingest: point %s had a timestamp in the future; its clock is back, taking the new value",
                        point.id)
            return True
        if state.late_count == 0:
            state.late_since = rx
        state.late_count += 1
        if state.late_count >= RECOVER_LATE and rx - state.late_since >= RECOVER_AFTER_S:
            log.warning("ingest: point %s had a timestamp in the future; its clock is back, taking new values",
                        point.id)
            return True
        return False

    def _wants_reported(self) -> bool:
        """Someone besides the alarm engine (which says which devices it wants) listens to repeats."""
        version = self.bus.version
        if self._reported_for != version:
            self._reported_for = version
            self._reported_wanted = self.bus.has_subscribers(StateReported, ignore="alarms:reports")
        return self._reported_wanted

    def _undeclared(self, device: DeviceEntry, key: str) -> PointEntry:
        # A key the driver did not declare: keep the data under a generic point.
        log.warning("ingest: %s reported undeclared point %r", device.id, key)
        (point,) = self.registry.ensure_points_now(device.id, [PointSpec(key=key, point_class=key)])
        return point

    # -- checkpoint -------------------------------------------------------------------------

    def checkpoint(self, *, changed_only: bool = False) -> None:
        """Queue states to ``point_state`` with the journal position they include.

        ``changed_only`` is the periodic pass (every ``checkpoint_s``): the points whose
        value changed, which is what keeps the replay after a crash short.  Repeats move
        only ``last_reported``; they wait for a full pass (stop, ``Storage.barrier``), or
        a site reporting every few seconds would rewrite every point that often.
        """
        if not getattr(self.storage, "writer_alive", False):
            return  # kept dirty: written once the writer runs
        # Every change not in these rows was queued after them, so it commits with a larger
        # seq than the last one committed now: replaying from here finds it.
        seq = self.storage.last_seq
        if changed_only:
            todo, self._changed = self._changed, set()
            self._dirty -= todo
        else:
            todo, self._dirty = self._dirty, set()
            self._changed = set()
        if not todo:
            if seq > self._saved_seq:  # nothing changed: the replay may still start later
                self._saved_seq = seq
                self.storage.submit(Op([(SQL_STATE_SEQ, [(str(seq),)])]))
            return
        rows = []
        for point_id in todo:
            s = self.states.get(point_id)
            if s is not None:
                rows.append((point_id, s.value, s.fault, s.last_changed, s.last_updated, s.last_reported))
        # In operations of a writer chunk each: an alarm waits for one, not for 40,000 rows;
        # the position goes with the last (same lane, so it commits after the others).
        chunks = [rows[i:i + CHECKPOINT_ROWS] for i in range(0, len(rows), CHECKPOINT_ROWS)] or [[]]
        ops = [Op([(SQL_STATE, chunk)] if chunk else []) for chunk in chunks[:-1]]
        last: list[tuple[str, list[Any]]] = [(SQL_STATE, chunks[-1])] if chunks[-1] else []
        ops.append(Op([*last, (SQL_STATE_SEQ, [(str(seq),)])]))
        self._saved_seq = seq
        for op in ops:
            self.storage.submit(op)

    async def run_checkpoints(self, sleep: Callable[[float], Any]) -> None:
        """The periodic pass, every ``checkpoint_s`` (``sleep`` is the core's clock)."""
        while True:
            await sleep(self.checkpoint_s)
            self.checkpoint(changed_only=True)

    def state(self, point_id: str) -> PointState | None:
        return self.states.get(point_id)

    def metrics(self) -> dict[str, Any]:
        return {
            "readings": self.readings_in,
            "changes": self.changes,
            "repeats": self.repeats,
            "late": self.late,
            "redeliveries": self.redeliveries,
            "reordered": self.reordered,
            "clock_skewed": self.clock_skewed,
            "points": len(self.states),
        }


__all__ = ["COLUMNS", "Ingest", "PointState", "to_ms"]
